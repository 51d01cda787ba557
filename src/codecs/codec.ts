/**
 * A vendor's payload codec as the daemon and the CLI use it (docs/codecs.md): TS013 results from
 * any of the three forms, errors with stable codes, per-codec counters, and a breaker that stops
 * calling a codec that keeps hitting its limits, so that one runaway file cannot spend the event
 * loop of everything else.
 */
import { readFile } from 'node:fs/promises'
import { CodecError, Sandbox, type CodecErrorCode, type CodecLimits, type Forms, type Operation } from './sandbox.js'

export { CodecError, type CodecErrorCode, type CodecLimits, type Forms } from './sandbox.js'

export type CodecFailureCode = CodecErrorCode | 'LB_ERR_CODEC_ERRORS' | 'LB_ERR_CODEC_SUSPENDED' | 'LB_ERR_CODEC_UNSUPPORTED'

export type CodecResult<T> =
  | { ok: true, value: T, warnings: string[], logs: string[] }
  /** `errors`: the codec's own messages (LB_ERR_CODEC_ERRORS), or the one message of a failure. */
  | { ok: false, code: CodecFailureCode, message: string, errors: string[], warnings: string[], logs: string[] }

export const DEFAULT_CODEC_LIMITS: CodecLimits = { timeoutMs: 100, memoryBytes: 32 * 1024 * 1024 }

/** Limit failures (time, memory, stack, engine trap) within the window that suspend a codec, and for how long. */
const BREAKER_FAILURES = 3
const BREAKER_WINDOW_MS = 60_000
const BREAKER_SUSPEND_MS = 60_000

const NO_LOGS: string[] = []

const LIMIT_CODES = new Set<string>(['LB_ERR_CODEC_TIMEOUT', 'LB_ERR_CODEC_MEMORY', 'LB_ERR_CODEC_STACK', 'LB_ERR_CODEC_CRASHED'])

export interface CodecCounters { calls: number, ok: number, failed: number, byCode: Record<string, number> }

export class Codec {
  readonly counters: CodecCounters = { calls: 0, ok: 0, failed: 0, byCode: {} }
  private limitFailures: number[] = []
  private suspendedUntil = 0

  private constructor (readonly file: string, private readonly sandbox: Sandbox, private readonly now: () => number) {}

  /** `file` names the codec in messages and stack positions (the path relative to the rules directory). */
  static async fromSource (file: string, source: string, limits: CodecLimits = DEFAULT_CODEC_LIMITS, now: () => number = Date.now): Promise<Codec> {
    return new Codec(file, await Sandbox.load(file, source, limits), now)
  }

  static async fromFile (path: string, name: string, limits?: CodecLimits): Promise<Codec> {
    let source: string
    try {
      source = await readFile(path, 'utf8')
    } catch (err) {
      throw new CodecError('LB_ERR_CODEC_LOAD', `cannot read ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    return Codec.fromSource(name, source, limits)
  }

  get forms (): Forms { return this.sandbox.forms }
  get rebuilds (): number { return this.sandbox.rebuilds + this.earlierRebuilds }
  private earlierRebuilds = 0

  /** Takes over the counts of the version this one replaces (a reload). */
  continueFrom (old: Codec): void {
    this.counters.calls += old.counters.calls
    this.counters.ok += old.counters.ok
    this.counters.failed += old.counters.failed
    for (const [code, n] of Object.entries(old.counters.byCode)) this.counters.byCode[code] = (this.counters.byCode[code] ?? 0) + n
    this.earlierRebuilds += old.rebuilds
  }

  /**
   * Set while the engine is being replaced after a limit failure: wait for it before a call, or
   * the call fails with LB_ERR_CODEC_CRASHED. Calls are synchronous otherwise (no promise per uplink).
   */
  ready (): Promise<void> | undefined { return this.sandbox.ready() }

  /** TS013 `decodeUplink({bytes, fPort, recvTime})`; `data` is the decoded object. */
  decodeUplink (bytes: readonly number[], fPort: number, recvTime: Date): CodecResult<unknown> {
    // The time as a number: QuickJS parses an ISO string about 20 times slower than it builds a Date from one.
    return this.run('decodeUplink', { bytes, fPort, recvTime: recvTime.getTime() }, a => a.data)
  }

  /** TS013 `encodeDownlink({data})`; `fPort` is the request's when the codec names none. */
  encodeDownlink (data: unknown, fPort?: number): CodecResult<{ bytes: number[], fPort: number | undefined }> {
    return this.run('encodeDownlink', { data, fPort }, a => ({ bytes: a.bytes ?? [], fPort: a.fPort }))
  }

  decodeDownlink (bytes: readonly number[], fPort: number): CodecResult<unknown> {
    return this.run('decodeDownlink', { bytes, fPort }, a => a.data)
  }

  private run<T> (op: Operation, input: unknown, value: (a: { data?: unknown, bytes?: number[], fPort?: number }) => T): CodecResult<T> {
    this.counters.calls++
    const supported = op === 'decodeUplink' ? this.forms.decodeUplink : op === 'encodeDownlink' ? this.forms.encodeDownlink : this.forms.decodeDownlink
    if (!supported) return this.failed('LB_ERR_CODEC_UNSUPPORTED', `${this.file} has no ${op === 'decodeUplink' ? 'decodeUplink, Decoder or Decode' : op === 'encodeDownlink' ? 'encodeDownlink, Encoder or Encode' : 'decodeDownlink'} function`)
    const t = this.now()
    // An engine being replaced is not this call's failure: it does not feed the breaker.
    const restarting = this.sandbox.ready() !== undefined
    if (t < this.suspendedUntil) return this.failed('LB_ERR_CODEC_SUSPENDED', `${this.file} is suspended until ${new Date(this.suspendedUntil).toISOString()} after ${BREAKER_FAILURES} limit failures within ${BREAKER_WINDOW_MS / 1000} s`)
    try {
      const a = this.sandbox.call(op, input)
      const logs = a.logs ?? NO_LOGS
      if (!a.ok) return this.failed(a.code, `${this.file}: ${a.message}`, undefined, logs)
      if (a.errors.length > 0) return this.failed('LB_ERR_CODEC_ERRORS', `${this.file} returned errors: ${a.errors.join('; ')}`, a.errors, logs, a.warnings)
      this.counters.ok++
      return { ok: true, value: value(a), warnings: a.warnings, logs }
    } catch (err) {
      if (!(err instanceof CodecError)) throw err
      if (LIMIT_CODES.has(err.code) && !(restarting && err.code === 'LB_ERR_CODEC_CRASHED')) this.limitHit(t)
      return this.failed(err.code, `${this.file}: ${err.message}`, undefined, err.logs)
    }
  }

  private limitHit (t: number): void {
    this.limitFailures = this.limitFailures.filter(x => x > t - BREAKER_WINDOW_MS)
    this.limitFailures.push(t)
    if (this.limitFailures.length >= BREAKER_FAILURES) {
      this.suspendedUntil = t + BREAKER_SUSPEND_MS
      this.limitFailures = []
    }
  }

  private failed (code: CodecFailureCode, message: string, errors: string[] = [message], logs: string[] = [], warnings: string[] = []): CodecResult<never> {
    this.counters.failed++
    this.counters.byCode[code] = (this.counters.byCode[code] ?? 0) + 1
    return { ok: false, code, message, errors, warnings, logs }
  }

  dispose (): void { this.sandbox.dispose() }
}
