/**
 * Rule files (PRODUCT.md §4): YAML validated against a schema, every JSONata expression compiled
 * on load, and every problem reported with file, line and column — for a JSONata error, the line
 * and column of the offending token inside the expression (STYLE §5).
 */
import { readFile, realpath } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { LineCounter, parseDocument, isMap, isScalar, type Document } from 'yaml'
import { formatPointer } from '../config/issues.js'
import type { EventKind } from '../model/events.js'
import { Expression } from './expression.js'
import { parseDuration } from './duration.js'
import { explain, type Schema } from './schema-errors.js'
import { Codec, CodecError, DEFAULT_CODEC_LIMITS, type CodecLimits } from '../codecs/codec.js'

export const EVENT_KINDS: EventKind[] = ['up', 'join', 'status', 'location', 'down/queued', 'down/sent', 'down/failed', 'down/acked']

// `noun` and `description` word the validation messages (schema-errors.ts).
const OneOrMany = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Array(t, { minItems: 1 })])
const Kind = Type.Union(EVENT_KINDS.map(k => Type.Literal(k)), { noun: 'event kind' })
const Network = Type.Union([Type.Literal('multitech'), Type.Literal('thingpark')], { noun: 'network' })

const Filter = Type.Object({
  app: Type.Optional(OneOrMany(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'an application name (lower-case letters, digits, "_" and "-")' }))),
  devEui: Type.Optional(OneOrMany(Type.String({ pattern: '^[0-9a-fA-F*?:-]+$', description: 'a DevEUI or a glob of them (hex digits, "-", ":", "*" and "?")' }))),
  fPort: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 255 }), Type.Array(Type.Integer({ minimum: 0, maximum: 255 }), { minItems: 1 })])),
  network: Type.Optional(Type.Union([...Network.anyOf, Type.Array(Network, { minItems: 1 })], { noun: 'network' })),
}, { additionalProperties: false, noun: '"when"' })

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9 ._-]*$', maxLength: 100, description: 'a name (letters, digits, spaces, ".", "_" and "-", starting with a letter or digit)' })

const DecoderDef = Type.Object({
  name: Name,
  when: Type.Optional(Filter),
  decode: Type.Optional(Type.String({ minLength: 1 })),
  codec: Type.Optional(Type.String({ minLength: 1, description: 'a JavaScript codec file, relative to the rules directory' })),
}, { additionalProperties: false, noun: 'a decoder' })

const RuleDef = Type.Object({
  name: Name,
  on: Type.Optional(Type.Union([Kind, Type.Array(Kind, { minItems: 1 })])),
  when: Type.Optional(Filter),
  if: Type.Optional(Type.String({ minLength: 1 })),
  cooldown: Type.Optional(Type.String({ description: 'a duration (e.g. 500ms, 30s, 10m, 2h)' })),
  enabled: Type.Optional(Type.Boolean()),
  downlink: Type.Optional(Type.String({ minLength: 1 })),
  publish: Type.Optional(Type.Object({
    topic: Type.String({ minLength: 1 }),
    payload: Type.String({ minLength: 1 }),
    qos: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1)], { noun: 'QoS' })),
    retain: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false, noun: '"publish"' })),
}, { additionalProperties: false, noun: 'a rule' })

const RuleFileDef = Type.Object({
  decoders: Type.Optional(Type.Array(DecoderDef)),
  rules: Type.Optional(Type.Array(RuleDef)),
}, { additionalProperties: false, noun: 'a rule file' })

type FilterDef = Static<typeof Filter>
const validate = new Ajv({ allErrors: true, strict: false }).compile(RuleFileDef)

export interface RuleError {
  file: string
  /** e.g. `rules[1].if` */
  path: string
  line: number
  column: number
  message: string
  code: 'LB_ERR_RULE_FILE' | 'LB_ERR_RULE_COMPILE' | 'LB_ERR_CODEC_LOAD'
  /** JSONata's own error code, position (in the expression) and token. */
  jsonata?: { code?: string | undefined, position?: number | undefined, token?: string | undefined }
}

export interface CompiledFilter {
  apps: Set<string> | undefined
  devEuis: RegExp[] | undefined
  fPorts: Set<number> | undefined
  networks: Set<string> | undefined
}

/**
 * A decoder's codec file: `path` as the rule file wrote it, `at` where (for load errors). `codec`
 * is set by compileRuleFile; a file compiled from text alone leaves it unloaded.
 */
export interface CodecRef { path: string, absolute: string, at: { line: number, column: number }, codec: Codec | undefined }

/** Exactly one of `decode` (JSONata) and `codec` (JavaScript). */
export interface CompiledDecoder { id: string, file: string, name: string, when: CompiledFilter, decode: Expression | undefined, codec: CodecRef | undefined }

export interface CompiledRule {
  id: string
  file: string
  name: string
  on: Set<EventKind>
  when: CompiledFilter
  condition: Expression | undefined
  cooldownMs: number | undefined
  downlink: Expression | undefined
  publish: { topic: Expression, payload: Expression, qos: 0 | 1, retain: boolean } | undefined
}

export interface CompiledFile { file: string, decoders: CompiledDecoder[], rules: CompiledRule[] }

/** `codecFiles`: the codec files the rule file names (their changes reload it), whether or not it compiled. */
export type CompileResult = { ok: true, compiled: CompiledFile, codecFiles: string[] } | { ok: false, errors: RuleError[], codecFiles: string[] }

const list = <T>(v: T | T[] | undefined): T[] | undefined => v === undefined ? undefined : Array.isArray(v) ? v : [v]

function glob (pattern: string): RegExp {
  const bare = pattern.replace(/[-:]/g, '').toLowerCase()
  return new RegExp('^' + bare.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
}

function compileFilter (f: FilterDef | undefined): CompiledFilter {
  return {
    apps: list(f?.app) !== undefined ? new Set(list(f?.app)) : undefined,
    devEuis: list(f?.devEui)?.map(glob),
    fPorts: list(f?.fPort) !== undefined ? new Set(list(f?.fPort)) : undefined,
    networks: list(f?.network) !== undefined ? new Set(list(f?.network)) : undefined,
  }
}

/**
 * Where a path's value starts in the file, and a function that maps an offset inside the value (a
 * JSONata position) to the file's line and column: in a block scalar (`|`) line by line, in a
 * plain or quoted scalar from its start. It keeps only the value's text, not the document.
 */
function place (doc: Document, lc: LineCounter, text: string, path: Array<string | number>): (position?: number) => { line: number, column: number } {
  let node = doc.getIn(path, true) as unknown
  // For a key that is missing or wrong, point at the nearest parent that exists.
  for (let p = path.slice(0, -1); node === undefined && p.length >= 0; p = p.slice(0, -1)) {
    node = p.length === 0 ? doc.contents : doc.getIn(p, true)
    if (p.length === 0) break
  }
  const range = (node as { range?: [number, number, number] } | undefined)?.range
  if (range === undefined) return () => ({ line: 1, column: 1 })
  const start = lc.linePos(range[0])
  const at = { line: start.line, column: start.col }
  if (!isScalar(node)) return () => at
  const source = String(node.value)
  const block = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED'
  // The content starts on the line after the `|` indicator, at the block's indentation (that of
  // its first line); deeper indentation of later lines is part of the expression itself.
  const firstLine = block ? text.split('\n', start.line + 1)[start.line] ?? '' : ''
  const indent = firstLine.length - firstLine.trimStart().length
  const quote = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? 1 : 0
  // Plain and quoted values are found in the file's text (escapes and folded lines differ from
  // the value), once, when a position is first asked for (an error's).
  const raw = block ? '' : text.slice(range[0] + quote, range[1])
  let offsets: number[] | undefined
  return position => {
    if (position === undefined) return at
    const before = source.slice(0, Math.max(0, position - 1))
    if (block) {
      const exprLine = before.split('\n').length - 1
      const exprCol = before.length - (before.lastIndexOf('\n') + 1) + 1
      return { line: start.line + 1 + exprLine, column: indent + exprCol }
    }
    offsets ??= alignValue(source, raw)
    const i = Math.min(before.length, source.length)
    const offset = i < source.length ? offsets[i]! : (offsets[source.length - 1] ?? -1) + 1
    const pos = lc.linePos(range[0] + quote + offset)
    return { line: pos.line, column: pos.col }
  }
}

/**
 * For each character of a plain or quoted scalar's value, its offset in the text as written. The
 * value is the text less quotes, escape characters and folded line breaks (with their indentation):
 * equal characters are matched, those and whitespace skipped, anything else (an escape like `\n`)
 * taken as standing for the value's character.
 */
function alignValue (value: string, raw: string): number[] {
  const out = new Array<number>(value.length)
  let j = 0
  for (let i = 0; i < value.length; i++) {
    while (j < raw.length && raw[j] !== value[i] && /[\s\\'"]/.test(raw[j]!)) j++
    out[i] = Math.min(j, raw.length)
    if (j < raw.length) j++
  }
  return out
}

function locate (doc: Document, lc: LineCounter, text: string, path: Array<string | number>, position?: number): { line: number, column: number } {
  return place(doc, lc, text, path)(position)
}

/** Where a key (not its value) is written: an unknown key is pointed at itself. */
function locateKey (doc: Document, lc: LineCounter, path: Array<string | number>, key: string): { line: number, column: number } | undefined {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path, true)
  if (!isMap(parent)) return undefined
  const pair = parent.items.find(p => (isScalar(p.key) ? p.key.value : p.key) === key)
  const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range
  if (range === undefined) return undefined
  const pos = lc.linePos(range[0])
  return { line: pos.line, column: pos.col }
}

export function compileRuleText (file: string, text: string): CompileResult {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false })
  const name = basename(file)
  const errors: RuleError[] = []
  const err = (path: Array<string | number>, message: string, code: RuleError['code'], position?: number, jsonata?: RuleError['jsonata']): void => {
    const at = locate(doc, lc, text, path, position)
    errors.push({ file: name, path: formatPointer(path.length === 0 ? '' : '/' + path.join('/')), ...at, message, code, ...(jsonata !== undefined ? { jsonata } : {}) })
  }
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0]
      errors.push({ file: name, path: '(file)', line: pos?.line ?? 1, column: pos?.col ?? 1, message: e.message.split('\n')[0] ?? e.message, code: 'LB_ERR_RULE_FILE' })
    }
    return { ok: false, errors, codecFiles: [] }
  }
  let value: unknown
  try {
    // The YAML library reports some problems (an alias without its anchor) only here, by throwing.
    value = doc.toJS() ?? {}
  } catch (e) {
    return { ok: false, errors: [{ file: name, path: '(file)', line: 1, column: 1, message: (e as Error).message, code: 'LB_ERR_RULE_FILE' }], codecFiles: [] }
  }
  if (!validate(value)) {
    for (const issue of explain(RuleFileDef as Schema, value)) {
      const at = issue.key !== undefined ? locateKey(doc, lc, issue.path.slice(0, -1), issue.key) : undefined
      // An unknown key is part of the path: a long one only by its start.
      const shown = issue.path.map(p => typeof p === 'string' && p.length > 60 ? `${p.slice(0, 60)}…` : p)
      errors.push({ file: name, path: formatPointer(shown.length === 0 ? '' : '/' + shown.join('/')), ...(at ?? locate(doc, lc, text, issue.path)), message: issue.message, code: 'LB_ERR_RULE_FILE' })
    }
    // What the explanation does not cover: the validator's own words.
    if (errors.length === 0) for (const e of validate.errors ?? []) {
      const path = e.instancePath.split('/').slice(1).map(s => /^\d+$/.test(s) ? Number(s) : s)
      const extra = e.keyword === 'additionalProperties' ? ` "${String((e.params as { additionalProperty: string }).additionalProperty)}"` : ''
      if (e.keyword === 'anyOf' || e.keyword === 'const') continue
      err(path, `${e.message ?? 'is invalid'}${extra}`, 'LB_ERR_RULE_FILE')
    }
    if (errors.length === 0) err([], 'does not match the rule file format', 'LB_ERR_RULE_FILE')
    return { ok: false, errors, codecFiles: [] }
  }
  const def = value as Static<typeof RuleFileDef>
  const expr = (path: Array<string | number>, source: string, owner: string): Expression | undefined => {
    const c = Expression.compile(source)
    if (c.ok) {
      c.expression.site = { file: name, path: formatPointer('/' + path.join('/')), owner, locate: place(doc, lc, text, path) }
      return c.expression
    }
    err(path, `JSONata: ${c.error.message}`, 'LB_ERR_RULE_COMPILE', c.error.position, { code: c.error.code, position: c.error.position, token: c.error.token })
    return undefined
  }
  const seen = new Set<string>()
  const unique = (path: Array<string | number>, kind: string, n: string): void => {
    if (seen.has(`${kind}:${n}`)) err(path, `duplicate ${kind} name "${n}"`, 'LB_ERR_RULE_FILE')
    seen.add(`${kind}:${n}`)
  }
  const decoders: CompiledDecoder[] = []
  const codecFiles: string[] = []
  def.decoders?.forEach((d, i) => {
    unique(['decoders', i, 'name'], 'decoder', d.name)
    if ((d.decode === undefined) === (d.codec === undefined)) {
      err(['decoders', i], 'a decoder needs exactly one of decode (JSONata) or codec (a JavaScript file)', 'LB_ERR_RULE_FILE')
      return
    }
    const base = { id: `${name}#${d.name}`, file: name, name: d.name, when: compileFilter(d.when) }
    if (d.codec !== undefined) {
      const at = locate(doc, lc, text, ['decoders', i, 'codec'])
      const inside = codecPath(dirname(file), d.codec)
      if (typeof inside !== 'string') {
        err(['decoders', i, 'codec'], inside.refused, 'LB_ERR_CODEC_LOAD')
        return
      }
      codecFiles.push(inside)
      decoders.push({ ...base, decode: undefined, codec: { path: d.codec, absolute: inside, at, codec: undefined } })
      return
    }
    const decode = expr(['decoders', i, 'decode'], d.decode!, `decoder "${d.name}"`)
    if (decode !== undefined) decoders.push({ ...base, decode, codec: undefined })
  })
  const rules: CompiledRule[] = []
  def.rules?.forEach((r, i) => {
    unique(['rules', i, 'name'], 'rule', r.name)
    if (r.downlink === undefined && r.publish === undefined) err(['rules', i], 'a rule needs a downlink or a publish action', 'LB_ERR_RULE_FILE')
    const cooldownMs = r.cooldown !== undefined ? parseDuration(r.cooldown) : undefined
    if (r.cooldown !== undefined && cooldownMs === undefined) err(['rules', i, 'cooldown'], `"${r.cooldown}" is not a duration (e.g. 500ms, 30s, 10m, 2h)`, 'LB_ERR_RULE_FILE')
    const owner = `rule "${r.name}"`
    const condition = r.if !== undefined ? expr(['rules', i, 'if'], r.if, owner) : undefined
    const downlink = r.downlink !== undefined ? expr(['rules', i, 'downlink'], r.downlink, owner) : undefined
    const topic = r.publish !== undefined ? expr(['rules', i, 'publish', 'topic'], r.publish.topic, owner) : undefined
    const payload = r.publish !== undefined ? expr(['rules', i, 'publish', 'payload'], r.publish.payload, owner) : undefined
    if (r.enabled === false) return
    rules.push({
      id: `${name}#${r.name}`,
      file: name,
      name: r.name,
      on: new Set(list(r.on) ?? ['up']),
      when: compileFilter(r.when),
      condition,
      cooldownMs,
      downlink,
      publish: topic !== undefined && payload !== undefined ? { topic, payload, qos: r.publish?.qos ?? 1, retain: r.publish?.retain ?? false } : undefined,
    })
  })
  return errors.length > 0 ? { ok: false, errors, codecFiles } : { ok: true, compiled: { file: name, decoders, rules }, codecFiles }
}

/**
 * A codec path must stay inside the rules directory: a rule file may not make the daemon read
 * (and report pieces of, in load errors) any other file.
 */
function codecPath (dir: string, path: string): string | { refused: string } {
  if (isAbsolute(path)) return { refused: `codec "${path}": give a path relative to the rules directory` }
  const absolute = resolve(dir, path)
  const rel = relative(dir, absolute)
  if (rel === '' || rel.startsWith('..' + sep) || rel === '..' || isAbsolute(rel)) return { refused: `codec "${path}" is outside the rules directory` }
  return absolute
}

export interface CompileOptions {
  /** Limits of the codecs the file names. */
  codecLimits?: CodecLimits
}

/** Compiles a rule file and loads the codecs it names (each a fresh engine); on any error, none stays loaded. */
export async function compileRuleFile (path: string, opts: CompileOptions = {}): Promise<CompileResult> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    return { ok: false, errors: [{ file: basename(path), path: '(file)', line: 1, column: 1, message: (e as Error).message, code: 'LB_ERR_RULE_FILE' }], codecFiles: [] }
  }
  return await compileRuleSource(path, text, opts)
}

/**
 * Compiles the text of a rule file at `path` (saved or a draft) and loads the codecs it names,
 * confined to the file's directory; on any error, none stays loaded.
 */
export async function compileRuleSource (path: string, text: string, opts: CompileOptions = {}): Promise<CompileResult> {
  const result = compileRuleText(path, text)
  if (!result.ok) return result
  const errors: RuleError[] = []
  const dir = dirname(path)
  for (const [i, d] of result.compiled.decoders.entries()) {
    const ref = d.codec
    if (ref === undefined) continue
    try {
      // Symbolic links are followed only if they stay inside the directory too.
      const [real, realDir] = await Promise.all([realpath(ref.absolute), realpath(dir)])
      if (!(real + sep).startsWith(join(realDir, sep))) throw new CodecError('LB_ERR_CODEC_LOAD', `codec "${ref.path}" links outside the rules directory`)
      ref.codec = await Codec.fromFile(real, ref.path, opts.codecLimits ?? DEFAULT_CODEC_LIMITS)
    } catch (e) {
      const message = e instanceof CodecError ? e.message : (e as NodeJS.ErrnoException).code === 'ENOENT' ? `codec "${ref.path}" does not exist` : `codec "${ref.path}": ${(e as Error).message}`
      errors.push({ file: result.compiled.file, path: formatPointer(`/decoders/${i}/codec`), ...ref.at, message, code: 'LB_ERR_CODEC_LOAD' })
    }
  }
  if (errors.length > 0) {
    disposeCodecs(result.compiled)
    return { ok: false, errors, codecFiles: result.codecFiles }
  }
  return result
}

/** A reloaded file's codecs continue the counts of the same codec files in the version it replaces. */
export function carryCodecCounters (from: CompiledFile, to: CompiledFile): void {
  for (const d of to.decoders) {
    const old = from.decoders.find(o => o.codec?.absolute === d.codec?.absolute)?.codec?.codec
    if (old !== undefined && d.codec?.codec !== undefined) d.codec.codec.continueFrom(old)
  }
}

/** Frees the engines of a compiled file's codecs (a replaced or failed version). */
export function disposeCodecs (compiled: CompiledFile): void {
  for (const d of compiled.decoders) {
    d.codec?.codec?.dispose()
    if (d.codec !== undefined) d.codec.codec = undefined
  }
}

export function formatRuleError (e: RuleError): string {
  // Our own compile errors (unknown functions) already name their token.
  const where = e.jsonata?.token !== undefined && !e.message.includes(e.jsonata.token) ? ` (at "${e.jsonata.token}")` : ''
  return `${e.file}:${e.line}:${e.column}: ${e.path}: ${e.message}${where}`
}
