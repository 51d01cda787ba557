/**
 * Differential test of the compiled rule expressions against the reference evaluator: the same
 * expression on the same input gives the same result (`undefined` and missing fields included) or,
 * where the reference raises an error, the compiled code hands the evaluation over to it.
 *
 * Corpus: every expression of the shipped rule files (rules/), of the rule files in docs/ and of
 * the rule files written by the tests, on realistic events; and a generated corpus — seeded,
 * reproducible — of expressions over randomized inputs (objects, arrays of 0, 1 or n items,
 * missing fields, wrong types, numbers at the edges).
 */
import { describe, it, expect } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { parseAllDocuments } from 'yaml'
import { Expression } from '../src/rules/expression.js'
import { expressionInput } from '../src/rules/engine.js'
import { rng } from './helpers/rng.js'

const ROOT = resolve(import.meta.dirname, '..')
const SEED = 20261201
const GENERATED = 4000
const INPUTS_PER_EXPRESSION = 6
const BUDGET = { timeoutMs: 1000, maxDepth: 500 }


/** Plain data, sequences as plain arrays, keys in order: what a consumer of the result sees. */
function plain (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).map(k => [k, plain((v as Record<string, unknown>)[k])]))
  return v
}

/** Every JSONata expression of a rule file's text (decoders, conditions, downlinks, publications). */
function ruleExpressions (text: string): string[] {
  const out: string[] = []
  for (const doc of parseAllDocuments(text)) {
    const v = doc.toJS() as { decoders?: Array<{ decode?: unknown }>, rules?: Array<Record<string, unknown>> } | null
    if (v === null || typeof v !== 'object') continue
    for (const d of v.decoders ?? []) if (typeof d?.decode === 'string') out.push(d.decode)
    for (const r of v.rules ?? []) {
      for (const k of ['if', 'downlink']) if (typeof r?.[k] === 'string') out.push(r[k] as string)
      const p = r?.publish as { topic?: unknown, payload?: unknown } | undefined
      if (typeof p?.topic === 'string') out.push(p.topic)
      if (typeof p?.payload === 'string') out.push(p.payload)
    }
  }
  return out
}

function shippedCorpus (): string[] {
  const texts: string[] = []
  for (const f of readdirSync(join(ROOT, 'rules'))) texts.push(readFileSync(join(ROOT, 'rules', f), 'utf8'))
  for (const f of readdirSync(join(ROOT, 'docs')).filter(f => f.endsWith('.md'))) {
    for (const m of readFileSync(join(ROOT, 'docs', f), 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g)) texts.push(m[1]!)
  }
  // Rule files the tests write: template literals that hold a decoders: or rules: document.
  const tests = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap(e => e.isDirectory() ? tests(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
  for (const f of tests(join(ROOT, 'test'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/`((?:decoders|rules):\n[^`]*)`/g)) if (!m[1]!.includes('${')) texts.push(m[1]!)
  }
  const out = new Set<string>()
  for (const t of texts) { try { for (const e of ruleExpressions(t)) out.add(e) } catch { /* not YAML */ } }
  return [...out]
}

function uplink (r: () => number): Record<string, unknown> {
  const bytes = Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * 256))
  const event: Record<string, unknown> = {
    id: 'f1d8a3b4-1c2d-8e3f-9a4b-5c6d7e8f9a0b', app: r() < 0.7 ? 'farm' : 'default', devEui: '0018b20000000b20', receivedAt: '2026-12-01T07:00:00.000Z',
    network: r() < 0.5 ? { type: 'multitech', transport: 'mqtt', protocol: '1.1', gateway: '5a1f00d2-7c4e-4b39-9f0a-22c3e1d4b6a8' } : { type: 'thingpark', connection: 'tp' },
    fPort: [1, 2, 3, 85][Math.floor(r() * 4)], fCnt: Math.floor(r() * 70000), hex: Buffer.from(bytes).toString('hex'), data: Buffer.from(bytes).toString('base64'),
    gateways: Array.from({ length: Math.floor(r() * 3) }, (_, i) => ({ id: `gw-${i}`, rssi: -40 - Math.floor(r() * 80), snr: Math.round((r() * 20 - 10) * 10) / 10 })),
  }
  if (r() < 0.6) event.decoded = { level: Math.floor(r() * 120), battery: Math.round(r() * 40) / 10, temperature: Math.round((r() * 60 - 20) * 10) / 10, open: r() < 0.5 }
  if (r() < 0.3) event.reason = ['no-route', 'gateway-offline', 'expired'][Math.floor(r() * 3)]
  return expressionInput(event)
}

// ------------------------------------------------------------ the generated corpus

const FIELDS = ['a', 'b', 'c', 'items', 'n', 's', 'o']

function value (r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 2 ? 8 : 11))
  switch (k) {
    case 0: return [0, -1, 1, 2, 1.5, -0.5, 255, 65535, 2 ** 31, -(2 ** 31), 1e21, 0.1 + 0.2, Number.MAX_SAFE_INTEGER][Math.floor(r() * 13)]
    case 1: return ['', 'abc', '10', 'Hello World', ' x ', 'ünï', 'a,b,c', '2026-12-01T07:00:00Z'][Math.floor(r() * 8)]
    case 2: return r() < 0.5
    case 3: return null
    case 4: case 5: return Math.floor(r() * 100) - 20
    case 6: return ['x', 'y', 'z'][Math.floor(r() * 3)]
    case 7: return undefined
    case 8: return Array.from({ length: [0, 1, 1, 2, 3, 5][Math.floor(r() * 6)]! }, () => value(r, depth + 1))
    case 9: return object(r, depth + 1)
    default: return Array.from({ length: [0, 1, 3][Math.floor(r() * 3)]! }, () => object(r, depth + 1))
  }
}

function object (r: () => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  for (const f of FIELDS) if (r() < 0.55) { const v = value(r, depth); if (v !== undefined) o[f] = v }
  return o
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!

function path (r: () => number): string {
  const steps = [pick(r, FIELDS)]
  while (r() < 0.35) steps.push(pick(r, FIELDS))
  let p = steps.join('.')
  if (r() < 0.2) p = `$.${p}`
  if (r() < 0.1) p = `$$.${p}`
  if (r() < 0.15) p += `[${pick(r, ['0', '1', '-1', '$ > 2', 'n > 1', 's = "x"', 'a', '[0, 1]'])}]`
  if (r() < 0.08) p += '[]'
  if (r() < 0.05) p = `${pick(r, FIELDS)}.*`
  if (r() < 0.03) p = `**.${pick(r, FIELDS)}`
  return p
}

const UNARY_FUNCTIONS = ['$string', '$number', '$length', '$exists', '$count', '$sum', '$max', '$min', '$round', '$floor', '$ceil', '$abs', '$boolean', '$not',
  '$lowercase', '$uppercase', '$trim', '$keys', '$type', '$reverse', '$distinct', '$average', '$append', '$join', '$merge', '$spread', '$sqrt']

function expr (r: () => number, depth: number): string {
  if (depth > 3) return r() < 0.6 ? path(r) : literal(r)
  switch (Math.floor(r() * 14)) {
    case 0: case 1: case 2: return path(r)
    case 3: return literal(r)
    case 4: return `${expr(r, depth + 1)} ${pick(r, ['+', '-', '*', '/', '%'])} ${expr(r, depth + 1)}`
    case 5: return `${expr(r, depth + 1)} ${pick(r, ['=', '!=', '<', '<=', '>', '>='])} ${expr(r, depth + 1)}`
    case 6: return `(${expr(r, depth + 1)} ${pick(r, ['and', 'or'])} ${expr(r, depth + 1)})`
    case 7: return `${expr(r, depth + 1)} & ${expr(r, depth + 1)}`
    case 8: return `(${expr(r, depth + 1)} ? ${expr(r, depth + 1)} : ${expr(r, depth + 1)})`
    case 9: {
      const f = pick(r, UNARY_FUNCTIONS)
      return f === '$round' && r() < 0.5 ? `$round(${expr(r, depth + 1)}, ${pick(r, ['0', '1', '2', '-1'])})` : `${f}(${expr(r, depth + 1)})`
    }
    case 10: return pick(r, [
      `$substring(${expr(r, depth + 1)}, ${pick(r, ['0', '1', '-2'])}${r() < 0.5 ? ', 2' : ''})`,
      `$split(${expr(r, depth + 1)}, ",")`, `$contains(${expr(r, depth + 1)}, "a")`, `$join(${expr(r, depth + 1)}, "-")`,
      `$lookup(${expr(r, depth + 1)}, "${pick(r, FIELDS)}")`, `$pad(${expr(r, depth + 1)}, ${pick(r, ['5', '-5'])})`,
      `$formatNumber(${expr(r, depth + 1)}, "#,##0.00")`, `$string(${expr(r, depth + 1)}, true)`, `${expr(r, depth + 1)} in [1, "x", true]`,
      `[${pick(r, ['1', '0', '-2'])}..${pick(r, ['3', '0', '5'])}]`, `$u8(${expr(r, depth + 1)}, 0)`, `$hex(${expr(r, depth + 1)})`,
    ])
    case 11: return `{ "${pick(r, FIELDS)}": ${expr(r, depth + 1)}, "${pick(r, FIELDS)}": ${expr(r, depth + 1)} }`
    case 12: return `[${expr(r, depth + 1)}, ${expr(r, depth + 1)}]`
    default: return `($v := ${expr(r, depth + 1)}; ${pick(r, ['$v', '$v + 1', '[$v]', '{ "v": $v }', '$count($v)'])})`
  }
}

function literal (r: () => number): string {
  return pick(r, ['1', '0', '-3', '2.5', '"x"', '""', '"10"', 'true', 'false', 'null', '[]', '[1, 2]', '{}', '$', '$$'])
}

interface Outcome { compared: number, handedOver: number, notCompiled: number, mismatches: string[] }

async function compare (source: string, inputs: unknown[], o: Outcome): Promise<void> {
  const c = Expression.compile(source)
  if (!c.ok) return
  if (c.expression.engine.kind === 'reference') { o.notCompiled++; return }
  for (const input of inputs) {
    let ref: { result: unknown } | { error: string }
    try { ref = { result: plain(await c.expression.reference(input, BUDGET)) } } catch (err) { ref = { error: String((err as { code?: string }).code ?? err) } }
    const got = c.expression.evaluateCompiled(input, BUDGET)
    if (got.bailed) { o.handedOver++; continue }
    o.compared++
    const ok = 'result' in ref && isDeepStrictEqual(plain(got.result), ref.result)
    if (!ok && o.mismatches.length < 20) o.mismatches.push(`${source}  on ${JSON.stringify(input)?.slice(0, 200)}: compiled ${JSON.stringify(plain(got.result))?.slice(0, 120)}, reference ${JSON.stringify(ref)?.slice(0, 120)}`)
  }
}

describe('compiled rule expressions agree with the reference evaluator', () => {
  it('on every expression of rules/, docs/ and the tests, on realistic events', async () => {
    const corpus = shippedCorpus()
    expect(corpus.length).toBeGreaterThan(15)
    const r = rng(SEED)
    const o: Outcome = { compared: 0, handedOver: 0, notCompiled: 0, mismatches: [] }
    for (const e of corpus) await compare(e, Array.from({ length: 20 }, () => uplink(r)), o)
    process.stdout.write(`differential (rule files): ${corpus.length} expressions, ${o.compared} evaluations compared, ${o.handedOver} handed to the reference, ${o.notCompiled} expressions not compiled\n`)
    expect(o.mismatches).toEqual([])
    expect(o.compared).toBeGreaterThan(corpus.length * 10)
  })

  it(`on ${GENERATED} generated expressions × ${INPUTS_PER_EXPRESSION} random inputs (seed ${SEED})`, async () => {
    const r = rng(SEED)
    const o: Outcome = { compared: 0, handedOver: 0, notCompiled: 0, mismatches: [] }
    for (let i = 0; i < GENERATED; i++) {
      const e = expr(r, 0)
      await compare(e, Array.from({ length: INPUTS_PER_EXPRESSION }, () => r() < 0.1 ? value(r, 1) : object(r, 0)), o)
    }
    process.stdout.write(`differential (generated, seed ${SEED}): ${GENERATED} expressions, ${o.compared} evaluations compared, ${o.handedOver} handed to the reference, ${o.notCompiled} expressions not compiled\n`)
    expect(o.mismatches).toEqual([])
    expect(o.compared).toBeGreaterThan(GENERATED * INPUTS_PER_EXPRESSION * 0.5)
  })
})
