/**
 * The rules engine (PRODUCT.md §4): decoders fill `decoded` before an uplink is published; rules
 * run on published events and act through a sink (downlink requests, publications). Evaluation is
 * bounded in time and depth; every failure is counted and sent to the dead-letter stream; a rule's
 * own effects can trigger rules again only up to `maxChainDepth`.
 */
import type { EventKind } from '../model/events.js'
import { frameId } from '../model/ids.js'
import { checkDownlinkRequest } from '../core/downlink-request.js'
import type { DownlinkHandler, EncodeResult } from '../core/adapter.js'
import type { CodecResult } from '../codecs/codec.js'
import { EvaluationLimit, locatedFailure, type Budget, type Expression } from './expression.js'
import type { CompiledDecoder, CompiledFile, CompiledFilter, CompiledRule } from './compile.js'
import { MemoryCooldowns, type Cooldowns } from '../store/cluster-state.js'
import { isNormalizedEui } from '../model/eui.js'
import { parseDeviceTopic } from '../model/topics.js'

export interface RuleCounters { matched: number, passed: number, failed: number, noResult: number, suppressed: number, actionsOk: number, actionsFailed: number }

export interface Publication { topic: string, payload: unknown, qos: 0 | 1, retain: boolean }

export interface DeadLetter {
  rule: string
  file: string
  stage: 'decode' | 'if' | 'downlink' | 'publish'
  eventId: string | undefined
  event: EventKind
  app: string | undefined
  devEui: string | undefined
  code: string
  /** One line: `file:line:column: path (rule "x"): $function: what went wrong` for an expression's failure. */
  message: string
  /** Position in the expression (JSONata's, 1-based), and the same place as the rule file's line and column. */
  position?: number
  line?: number
  column?: number
  /** The expression's key in the file, e.g. `rules[0].downlink`. */
  path?: string
  /** The function (`$substring`) or operator (`+`, `&`) that failed, when JSONata names one. */
  function?: string
  operator?: string
  at: string
}

export interface RuleSink {
  /** Where rules' validated requests go unless `evaluate` is given another handler (dry runs record them). */
  downlink?: DownlinkHandler
  publish (p: Publication): Promise<void>
  deadLetter (d: DeadLetter): Promise<void>
}

export interface RuleResult {
  rule: string
  file: string
  passed: boolean
  suppressed?: boolean
  downlinks: Array<Record<string, unknown>>
  publications: Publication[]
  errors: Array<{ stage: DeadLetter['stage'], code: string, message: string }>
}

export interface Evaluation { matched: string[], results: RuleResult[] }

type AnyEvent = Record<string, unknown> & { id?: string, app?: string, devEui?: string, fPort?: number, hex?: string, network?: { type?: string } }

export interface EngineOptions {
  topicRoot: string
  budget: Budget
  /** How many times a rule's effect may trigger rules again. */
  maxChainDepth: number
  sink: RuleSink
  /** Per-device cooldowns; shared through Redis in a cluster. */
  cooldowns?: Cooldowns
  now?: () => number
  /** Called for every counter change, for metrics. */
  onCount?: (rule: string, counter: keyof RuleCounters) => void
  /** How many produced downlinks are remembered for chain depths (default 100,000). */
  producedMax?: number
  /** Called for every codec call, for metrics: `result` is `ok` or the error code. */
  onCodecCall?: (codec: string, operation: 'decodeUplink' | 'encodeDownlink', result: string) => void
}

function matches (f: CompiledFilter, e: AnyEvent): boolean {
  if (f.apps !== undefined && !f.apps.has(String(e.app))) return false
  if (f.devEuis !== undefined && !f.devEuis.some(r => r.test(String(e.devEui)))) return false
  if (f.fPorts !== undefined && (typeof e.fPort !== 'number' || !f.fPorts.has(e.fPort))) return false
  if (f.networks !== undefined && !f.networks.has(String(e.network?.type))) return false
  return true
}

/** The decoder filter without its fPort: a codec is chosen for a device's downlinks by application, DevEUI and network. */
function matchesDevice (f: CompiledFilter, e: AnyEvent): boolean {
  return matches(f.fPorts === undefined ? f : { ...f, fPorts: undefined }, e)
}

/** The receive time a codec gets: the network's, else ours. */
function recvTime (event: AnyEvent): Date {
  const t = typeof event.time === 'string' ? event.time : typeof event.receivedAt === 'string' ? event.receivedAt : undefined
  const d = t !== undefined ? new Date(t) : new Date()
  return Number.isNaN(d.getTime()) ? new Date() : d
}

type ErrorInfo = Pick<DeadLetter, 'code' | 'message' | 'position' | 'line' | 'column' | 'path' | 'function' | 'operator'>

/** A failed evaluation's code, and its place and function as the expression located them (Expression.evaluate). */
function errorInfo (err: unknown): ErrorInfo {
  const e = err as { code?: string, message?: string, position?: number }
  const code = err instanceof EvaluationLimit ? err.code : `LB_ERR_RULE_EVAL${typeof e.code === 'string' ? `:${e.code}` : ''}`
  const where = locatedFailure(err)
  if (where === undefined) return { code, message: e.message ?? String(err), ...(typeof e.position === 'number' ? { position: e.position } : {}) }
  const info: ErrorInfo = { code, message: where.text }
  if (where.position !== undefined) info.position = where.position
  if (where.line !== undefined) { info.line = where.line; info.column = where.column! }
  if (where.path !== undefined) info.path = where.path
  if (where.function !== undefined) info.function = where.function
  if (where.operator !== undefined) info.operator = where.operator
  return info
}

/**
 * Each event's expression input, made once for its decoder and its rules (expressions never change
 * their input); a decoder's result is copied onto it.
 */
const inputs = new WeakMap<object, AnyEvent>()

/** The input every expression sees: the event plus `bytes`, its payload as numbers (PRODUCT.md §4). */
export function expressionInput (event: AnyEvent): AnyEvent {
  const known = inputs.get(event)
  if (known !== undefined) {
    if (known.decoded !== event.decoded) known.decoded = event.decoded
    return known
  }
  let input: AnyEvent
  if (typeof event.hex !== 'string') {
    input = { ...event }
  } else {
    const b = Buffer.from(event.hex, 'hex')
    const bytes = new Array<number>(b.length)
    for (let i = 0; i < b.length; i++) bytes[i] = b[i]!
    input = { ...event, bytes }
  }
  inputs.set(event, input)
  return input
}

/** The largest payload a request may carry (its hex is at most 1,024 digits), encoded or not. */
const MAX_ENCODED_BYTES = 512

/** How long a produced downlink's outcomes count as a chain's, and how many are remembered at most. */
const PRODUCED_LIFETIME_MS = 3_600_000
const PRODUCED_MAX = 100_000

const EVENT_SUFFIXES = new Set(['up', 'join', 'status', 'location', 'down', 'clear'])

export class RulesEngine {
  private readonly files = new Map<string, CompiledFile>()
  private rules: CompiledRule[] = []
  private decoders: CompiledDecoder[] = []
  private readonly counts = new Map<string, RuleCounters>()
  private readonly cooldowns: Cooldowns
  /**
   * Downlink ids a rule produced, and the chain depth their outcomes carry. Kept in insertion order
   * with one lifetime for all, so expiry only ever looks at the oldest entries.
   */
  private readonly produced = new Map<string, { depth: number, until: number }>()
  private producedQueue: Array<{ id: string, until: number }> = []
  private producedHead = 0

  constructor (private readonly opts: EngineOptions) {
    this.cooldowns = opts.cooldowns ?? new MemoryCooldowns(() => this.now())
  }

  private now (): number { return this.opts.now?.() ?? Date.now() }

  /** Replaces one file's decoders and rules at once: a reload is never seen half done. */
  setFile (compiled: CompiledFile): void {
    this.files.set(compiled.file, compiled)
    this.rebuild()
  }

  removeFile (file: string): void {
    this.files.delete(file)
    this.rebuild()
  }

  private rebuild (): void {
    const files = [...this.files.keys()].sort()
    this.rules = files.flatMap(f => this.files.get(f)!.rules)
    this.decoders = files.flatMap(f => this.files.get(f)!.decoders)
    const ids = new Set(this.rules.map(r => r.id))
    for (const id of this.counts.keys()) if (!ids.has(id)) this.counts.delete(id)
  }

  loaded (): { rules: CompiledRule[], decoders: CompiledDecoder[] } { return { rules: this.rules, decoders: this.decoders } }

  counters (id: string): RuleCounters {
    let c = this.counts.get(id)
    if (c === undefined) { c = { matched: 0, passed: 0, failed: 0, noResult: 0, suppressed: 0, actionsOk: 0, actionsFailed: 0 }; this.counts.set(id, c) }
    return c
  }

  private count (id: string, counter: keyof RuleCounters): void {
    this.counters(id)[counter]++
    this.opts.onCount?.(id, counter)
  }

  private async letter (d: Omit<DeadLetter, 'at'>): Promise<void> {
    try {
      await this.opts.sink.deadLetter({ ...d, at: new Date(this.now()).toISOString() })
    } catch { /* the dead-letter stream itself failing must not fail the event */ }
  }

  /**
   * Runs the first matching decoder; sets `decoded` on the event (and a codec's `decodeWarnings`),
   * or `decodeErrors` when it fails. Never throws.
   */
  async decode (event: AnyEvent): Promise<{ decoder?: string, codec?: string, error?: string }> {
    const decoder = this.decoders.find(d => matches(d.when, event))
    if (decoder === undefined) return {}
    if (decoder.codec !== undefined) return this.decodeWithCodec(decoder, event)
    try {
      const decoded = await decoder.decode!.evaluate(expressionInput(event), this.opts.budget)
      if (decoded !== undefined) event.decoded = decoded
      return { decoder: decoder.name }
    } catch (err) {
      const info = errorInfo(err)
      event.decodeErrors = [info.message]
      await this.letter({ rule: decoder.name, file: decoder.file, stage: 'decode', eventId: event.id, event: 'up', app: event.app, devEui: event.devEui, ...info })
      return { decoder: decoder.name, error: info.message }
    }
  }

  private async decodeWithCodec (decoder: CompiledDecoder, event: AnyEvent): Promise<{ decoder?: string, codec?: string, error?: string }> {
    const ref = decoder.codec!
    const codec = ref.codec
    let r: CodecResult<unknown>
    if (codec === undefined) {
      r = { ok: false, code: 'LB_ERR_CODEC_LOAD', message: `codec ${ref.path} is not loaded`, errors: [`codec ${ref.path} is not loaded`], warnings: [], logs: [] }
    } else {
      // Looped: another call may hit a limit and start a new restart before this one runs.
      for (let restarting = codec.ready(); restarting !== undefined; restarting = codec.ready()) await restarting
      const bytes = expressionInput(event).bytes as number[] | undefined ?? []
      r = codec.decodeUplink(bytes, typeof event.fPort === 'number' ? event.fPort : 0, recvTime(event))
    }
    this.opts.onCodecCall?.(ref.path, 'decodeUplink', r.ok ? 'ok' : r.code)
    if (r.warnings.length > 0) event.decodeWarnings = r.warnings
    if (r.ok) {
      event.decoded = r.value
      return { decoder: decoder.name, codec: ref.path }
    }
    event.decodeErrors = r.errors.length > 0 ? r.errors : [r.message]
    await this.letter({ rule: decoder.name, file: decoder.file, stage: 'decode', eventId: event.id, event: 'up', app: event.app, devEui: event.devEui, code: r.code, message: r.message })
    return { decoder: decoder.name, codec: ref.path, error: r.message }
  }

  /**
   * Encodes a downlink request's `object` with the codec of the first decoder that matches the
   * device (application, DevEUI, network; not fPort) and can encode. Never throws.
   */
  async encode (device: { app: string, devEui: string, network: string }, object: Record<string, unknown>, fPort: number | undefined): Promise<EncodeResult> {
    const probe: AnyEvent = { app: device.app, devEui: device.devEui, network: { type: device.network } }
    const decoder = this.decoders.find(d => d.codec?.codec?.forms.encodeDownlink === true && matchesDevice(d.when, probe))
    if (decoder === undefined) return { ok: false, detail: 'no codec with an encoder (encodeDownlink, Encoder or Encode) matches this device', codecErrors: [] }
    const ref = decoder.codec!
    const codec = ref.codec!
    for (let restarting = codec.ready(); restarting !== undefined; restarting = codec.ready()) await restarting
    const r = codec.encodeDownlink(object, fPort)
    this.opts.onCodecCall?.(ref.path, 'encodeDownlink', r.ok ? 'ok' : r.code)
    if (!r.ok) return { ok: false, detail: `${r.code}: ${r.message}`, codecErrors: r.errors }
    if (r.value.bytes.length > MAX_ENCODED_BYTES) return { ok: false, detail: `${ref.path} encoded ${r.value.bytes.length} bytes; a downlink request carries at most ${MAX_ENCODED_BYTES}`, codecErrors: [] }
    const port = fPort ?? r.value.fPort
    if (port === undefined) return { ok: false, detail: `${ref.path} named no fPort and the request has none`, codecErrors: [] }
    return { ok: true, bytes: Buffer.from(r.value.bytes), fPort: port }
  }

  /** The chain depth of an event: 0 for network events, 1 + the producing rule's for outcomes of its downlinks. */
  depthOf (kind: EventKind, event: AnyEvent): number {
    if (!kind.startsWith('down/') || typeof event.id !== 'string') return 0
    const p = this.produced.get(event.id)
    return p === undefined || p.until < this.now() ? 0 : p.depth
  }

  /** `downlink`: where the rules' requests go (the pipeline's router); the sink's by default. */
  async evaluate (kind: EventKind, event: AnyEvent, depth = this.depthOf(kind, event), downlink = this.opts.sink.downlink): Promise<Evaluation> {
    const candidates = this.rules.filter(r => r.on.has(kind) && matches(r.when, event))
    const evaluation: Evaluation = { matched: candidates.map(r => r.name), results: [] }
    if (candidates.length === 0) return evaluation
    if (depth > this.opts.maxChainDepth) return evaluation
    const input = expressionInput(event)
    // Rules of one event run side by side: a slow one does not hold the others.
    evaluation.results = await Promise.all(candidates.map(r => this.run(r, kind, event, input, depth, downlink)))
    return evaluation
  }

  private async run (rule: CompiledRule, kind: EventKind, event: AnyEvent, input: AnyEvent, depth: number, downlink: DownlinkHandler | undefined): Promise<RuleResult> {
    const result: RuleResult = { rule: rule.name, file: rule.file, passed: false, downlinks: [], publications: [], errors: [] }
    const fail = async (stage: DeadLetter['stage'], err: unknown): Promise<void> => {
      const info = errorInfo(err)
      result.errors.push({ stage, code: info.code, message: info.message })
      this.count(rule.id, 'failed')
      await this.letter({ rule: rule.name, file: rule.file, stage, eventId: event.id, event: kind, app: event.app, devEui: event.devEui, ...info })
    }
    this.count(rule.id, 'matched')
    if (rule.condition !== undefined) {
      try {
        if (!await rule.condition.evaluate(input, this.opts.budget)) return result
      } catch (err) {
        await fail('if', err)
        return result
      }
    }
    // Taken when the rule passes, atomically (in a cluster, by one instance for all).
    if (rule.cooldownMs !== undefined && !await this.cooldowns.acquire(`${rule.id}|${String(event.devEui)}`, rule.cooldownMs)) {
      this.count(rule.id, 'suppressed')
      return { ...result, suppressed: true }
    }
    result.passed = true
    this.count(rule.id, 'passed')

    let produced = false
    if (rule.downlink !== undefined) produced = await this.downlinks(rule, kind, rule.downlink, event, input, depth, result, fail, downlink) || produced
    if (rule.publish !== undefined) produced = await this.publication(rule, kind, event, input, result, fail) || produced
    if (!produced && result.errors.length === 0) this.count(rule.id, 'noResult')
    return result
  }

  private async downlinks (rule: CompiledRule, kind: EventKind, expr: Expression, event: AnyEvent, input: AnyEvent, depth: number, result: RuleResult,
    fail: (stage: DeadLetter['stage'], err: unknown) => Promise<void>, handler: DownlinkHandler | undefined): Promise<boolean> {
    let out: unknown
    try {
      out = await expr.evaluate(input, this.opts.budget)
    } catch (err) {
      await fail('downlink', err)
      return false
    }
    if (out === undefined || out === null) return false
    const items = Array.isArray(out) ? out : [out]
    let any = false
    for (const [i, item] of items.entries()) {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        await this.actionFailed(rule, 'downlink', event, 'a DownlinkRequest must be an object', result, kind, expr)
        continue
      }
      const req = { ...(item as Record<string, unknown>) }
      const devEui = typeof req.devEui === 'string' ? req.devEui.replace(/[-:]/g, '').toLowerCase() : String(event.devEui)
      // Deterministic, so that the same event gives the same request id wherever it is evaluated.
      if (typeof req.id !== 'string' || req.id === '') req.id = frameId('rule', rule.id, event.id, i)
      const check = checkDownlinkRequest(req, devEui)
      if (!check.ok || !isNormalizedEui(devEui)) {
        await this.actionFailed(rule, 'downlink', event, !check.ok ? `invalid DownlinkRequest: ${check.detail}` : 'invalid devEui', result, kind, expr)
        continue
      }
      any = true
      result.downlinks.push(req)
      this.remember(req.id as string, depth + 1)
      try {
        await handler?.(String(event.app), devEui, check.request, req)
        this.count(rule.id, 'actionsOk')
      } catch (err) {
        await this.actionFailed(rule, 'downlink', event, (err as Error).message, result, kind)
      }
    }
    return any
  }

  private async publication (rule: CompiledRule, kind: EventKind, event: AnyEvent, input: AnyEvent, result: RuleResult,
    fail: (stage: DeadLetter['stage'], err: unknown) => Promise<void>): Promise<boolean> {
    const p = rule.publish!
    let topic: unknown
    let payload: unknown
    try {
      topic = await p.topic.evaluate(input, this.opts.budget)
      payload = await p.payload.evaluate(input, this.opts.budget)
    } catch (err) {
      await fail('publish', err)
      return false
    }
    if (payload === undefined) return false
    const refusal = this.topicRefusal(topic, String(event.app))
    if (refusal !== undefined) {
      await this.actionFailed(rule, 'publish', event, refusal, result, kind, p.topic)
      return true
    }
    const publication: Publication = { topic: topic as string, payload, qos: p.qos, retain: p.retain }
    result.publications.push(publication)
    try {
      await this.opts.sink.publish(publication)
      this.count(rule.id, 'actionsOk')
    } catch (err) {
      await this.actionFailed(rule, 'publish', event, (err as Error).message, result, kind)
    }
    return true
  }

  /** Publications go outside `lorawan/`, and under the root only into the event's own application, never onto event or command topics. */
  topicRefusal (topic: unknown, app: string): string | undefined {
    if (typeof topic !== 'string' || topic === '') return 'the topic expression must give a non-empty string'
    if (/[+#\0]/.test(topic) || topic.startsWith('$')) return `"${topic}" is not a topic one may publish on`
    const levels = topic.split('/')
    if (levels[0] === 'lorawan') return 'rules may not publish on lorawan/… (the Conduits\' own topics)'
    if (levels[0] === this.opts.topicRoot) {
      if (levels[1] !== app) return `rules may publish under ${this.opts.topicRoot}/ only into their event's application "${app}"`
      const device = parseDeviceTopic(this.opts.topicRoot, topic)
      if (device !== undefined && EVENT_SUFFIXES.has(device.kind.split('/')[0]!)) return 'rules may not publish device events or commands; use the downlink action for downlinks'
    }
    return undefined
  }

  /** `expr`: the expression whose result was refused; the message starts with its place in the file. */
  private async actionFailed (rule: CompiledRule, stage: 'downlink' | 'publish', event: AnyEvent, reason: string, result: RuleResult, kind: EventKind, expr?: Expression): Promise<void> {
    const site = expr?.site
    const at = site?.locate(undefined)
    const message = site !== undefined && at !== undefined ? `${site.file}:${at.line}:${at.column}: ${site.path} (${site.owner}): ${reason}` : reason
    result.errors.push({ stage, code: 'LB_ERR_RULE_ACTION', message })
    this.count(rule.id, 'actionsFailed')
    const letter: Omit<DeadLetter, 'at'> = { rule: rule.name, file: rule.file, stage, eventId: event.id, event: kind, app: event.app, devEui: event.devEui, code: 'LB_ERR_RULE_ACTION', message }
    if (site !== undefined && at !== undefined) { letter.line = at.line; letter.column = at.column; letter.path = site.path }
    await this.letter(letter)
  }

  /**
   * Records a produced downlink. Entries expire in the order they were made (one lifetime for all):
   * a queue of (id, expiry) is consumed from its head, past the size cap too (the oldest first:
   * their outcomes arrived long ago, and what is lost is only their depth). Iterating the map from
   * its front instead walked over every deleted slot on every downlink (a hot spot in profiles).
   */
  private remember (id: string, depth: number): void {
    const t = this.now()
    const until = t + PRODUCED_LIFETIME_MS
    this.produced.set(id, { depth, until })
    this.producedQueue.push({ id, until })
    const max = this.opts.producedMax ?? PRODUCED_MAX
    const q = this.producedQueue
    while (this.producedHead < q.length && (q[this.producedHead]!.until < t || this.produced.size > max)) {
      const old = q[this.producedHead++]!
      // Only if not remembered again since (a later entry for the same id has a later expiry).
      if (this.produced.get(old.id)?.until === old.until) this.produced.delete(old.id)
    }
    if (this.producedHead > 4096 && this.producedHead * 2 > q.length) {
      this.producedQueue = q.slice(this.producedHead)
      this.producedHead = 0
    }
  }
}
