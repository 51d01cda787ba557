/**
 * Codec examples as The Things Network's device repository writes them (docs/codecs.md): either a
 * top-level `examples:` list whose entries name their `type` (uplink, downlink-encode,
 * downlink-decode), or the repository's `uplinkDecoder` / `downlinkEncoder` / `downlinkDecoder`
 * sections, each with its own `examples:`. Each example runs through the codec and its output is
 * compared with the expected one.
 */
import { isDeepStrictEqual } from 'node:util'
import { parse } from 'yaml'
import type { Codec, CodecResult } from './codec.js'

export type ExampleType = 'uplink' | 'downlink-encode' | 'downlink-decode'

export interface Example { description: string, type: ExampleType, input: Record<string, unknown>, output: Record<string, unknown> }

export interface ExampleOutcome { example: Example, pass: boolean, mismatches: string[], actual: Record<string, unknown>, logs: string[] }

const SECTIONS: Array<[string, ExampleType]> = [['uplinkDecoder', 'uplink'], ['downlinkEncoder', 'downlink-encode'], ['downlinkDecoder', 'downlink-decode']]
const TYPES = new Set<string>(['uplink', 'downlink-encode', 'downlink-decode'])

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Reads an examples file; throws an Error naming the first entry that is not an example. */
export function parseExamples (text: string): Example[] {
  const doc = parse(text) as unknown
  if (!isObject(doc)) throw new Error('the examples file must be a YAML mapping with examples:')
  const found: Array<{ raw: unknown, type: unknown, where: string }> = []
  if (Array.isArray(doc.examples)) doc.examples.forEach((raw, i) => found.push({ raw, type: isObject(raw) ? raw.type : undefined, where: `examples[${i}]` }))
  for (const [section, type] of SECTIONS) {
    const s = doc[section]
    if (isObject(s) && Array.isArray(s.examples)) s.examples.forEach((raw, i) => found.push({ raw, type: isObject(raw) && raw.type !== undefined ? raw.type : type, where: `${section}.examples[${i}]` }))
  }
  if (found.length === 0) throw new Error('no examples found (expected examples:, or uplinkDecoder/downlinkEncoder/downlinkDecoder with examples:)')
  return found.map(({ raw, type, where }) => {
    if (!isObject(raw)) throw new Error(`${where} is not a mapping`)
    if (typeof type !== 'string' || !TYPES.has(type)) throw new Error(`${where}: type must be uplink, downlink-encode or downlink-decode`)
    if (!isObject(raw.input)) throw new Error(`${where}: input must be a mapping`)
    if (!isObject(raw.output)) throw new Error(`${where}: output must be a mapping`)
    return { description: typeof raw.description === 'string' ? raw.description : where, type: type as ExampleType, input: raw.input, output: raw.output }
  })
}

function bytesOf (v: unknown, what: string): number[] {
  if (typeof v === 'string' && /^(?:[0-9a-fA-F]{2})*$/.test(v)) return [...Buffer.from(v, 'hex')]
  if (Array.isArray(v) && v.every(x => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 255)) return v as number[]
  throw new Error(`${what} must be an array of bytes (or a hex string)`)
}

/** The example's result in TS013's shape: what the expected output is compared with. */
function actualOf (r: CodecResult<unknown>, shape: (v: unknown) => Record<string, unknown>, logs: string[]): Record<string, unknown> {
  logs.push(...r.logs)
  if (r.ok) return { ...shape(r.value), warnings: r.warnings, errors: [] }
  return { errors: r.errors, warnings: r.warnings }
}

export async function runExample (codec: Codec, example: Example): Promise<ExampleOutcome> {
  const { input, output } = example
  let actual: Record<string, unknown>
  const logs: string[] = []
  try {
    for (let ready = codec.ready(); ready !== undefined; ready = codec.ready()) await ready
    if (example.type === 'uplink') {
      const recv = typeof input.recvTime === 'string' ? new Date(input.recvTime) : new Date()
      actual = actualOf(codec.decodeUplink(bytesOf(input.bytes, 'input.bytes'), Number(input.fPort ?? 0), recv), v => ({ data: v }), logs)
    } else if (example.type === 'downlink-decode') {
      actual = actualOf(codec.decodeDownlink(bytesOf(input.bytes, 'input.bytes'), Number(input.fPort ?? 0)), v => ({ data: v }), logs)
    } else {
      actual = actualOf(codec.encodeDownlink(input.data, typeof input.fPort === 'number' ? input.fPort : undefined), v => {
        const e = v as { bytes: number[], fPort: number | undefined }
        return { bytes: e.bytes, ...(e.fPort !== undefined ? { fPort: e.fPort } : {}) }
      }, logs)
    }
  } catch (err) {
    return { example, pass: false, mismatches: [(err as Error).message], actual: {}, logs }
  }
  // What the example states is compared; what it leaves out is not (TTN's examples often omit warnings).
  const mismatches: string[] = []
  const expected: Record<string, unknown> = { ...output }
  if (expected.bytes !== undefined) expected.bytes = bytesOf(expected.bytes, 'output.bytes')
  if (expected.errors === undefined) expected.errors = []
  for (const key of Object.keys(expected)) {
    const want = expected[key]
    const got = actual[key]
    if (!isDeepStrictEqual(JSON.parse(JSON.stringify(want ?? null)), JSON.parse(JSON.stringify(got ?? null)))) mismatches.push(`${key}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`)
  }
  return { example, pass: mismatches.length === 0, mismatches, actual, logs }
}

/** A plain-text table: one line per example, and what differed under each failure. */
export function formatTable (outcomes: ExampleOutcome[]): string {
  const rows = outcomes.map((o, i) => [String(i + 1), o.example.type, o.example.description, o.pass ? 'pass' : 'FAIL'])
  const head = ['#', 'type', 'description', 'result']
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map(r => r[c]!.length)))
  const line = (cells: string[]): string => cells.map((x, c) => x.padEnd(widths[c]!)).join('  ').trimEnd()
  const out = [line(head), line(widths.map(w => '-'.repeat(w)))]
  outcomes.forEach((o, i) => {
    out.push(line(rows[i]!))
    for (const m of o.mismatches) out.push(`    ${m}`)
  })
  const passed = outcomes.filter(o => o.pass).length
  out.push('', `${passed} of ${outcomes.length} example${outcomes.length === 1 ? '' : 's'} passed`)
  return out.join('\n') + '\n'
}
