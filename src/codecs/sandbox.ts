/**
 * One codec file in its own JavaScript engine: QuickJS compiled to WebAssembly
 * (quickjs-emscripten), the engine ChirpStack runs codecs on. Each codec gets its own WebAssembly
 * instance, so its memory is its own: no Node, no file system, no network, no other codec's
 * objects. Limits per call: time (an interrupt handler), memory (the runtime's allocator) and
 * stack (QuickJS's own check, set well below the host's stack so it fires first).
 *
 * Calls are synchronous and the instance is reused between them (no engine start per uplink).
 * After a limit is hit, or if the engine itself traps, the instance is thrown away and a fresh one
 * is built from the same source: nothing a runaway call left behind reaches the next call.
 */
import { newQuickJSWASMModuleFromVariant, newVariant, type QuickJSSyncVariant, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime, type QuickJSWASMModule } from 'quickjs-emscripten-core'
import releaseSync from '@jitl/quickjs-wasmfile-release-sync'
import { PRELUDE, epilogue } from './glue.js'

export interface CodecLimits {
  /** Per call. */
  timeoutMs: number
  /**
   * The engine's whole WebAssembly memory (its heap, stack and QuickJS itself), at least 20 MiB.
   * QuickJS's own allocation limit is not used: this build cannot measure allocation sizes, so
   * the limit is the memory's maximum size, past which QuickJS's allocator fails cleanly.
   */
  memoryBytes: number
}

/** QuickJS's own stack limit: about 300 nested calls; below it the host's stack would overflow first. */
const STACK_BYTES = 64 * 1024
/** The file's top level gets more time than a call (tables built at load). */
const LOAD_TIME_FACTOR = 10
/** What a call may return, as JSON text. A LoRaWAN payload is at most 242 bytes. */
export const MAX_RESULT_CHARS = 64 * 1024

export type CodecErrorCode =
  | 'LB_ERR_CODEC_LOAD' | 'LB_ERR_CODEC_THROWN' | 'LB_ERR_CODEC_TIMEOUT' | 'LB_ERR_CODEC_MEMORY'
  | 'LB_ERR_CODEC_STACK' | 'LB_ERR_CODEC_RESULT' | 'LB_ERR_CODEC_CRASHED'

export class CodecError extends Error {
  /** What the codec printed before it failed. */
  logs: string[] = []
  constructor (readonly code: CodecErrorCode, message: string, readonly line?: number, readonly column?: number) { super(message) }
}

export type Operation = 'decodeUplink' | 'encodeDownlink' | 'decodeDownlink'

export interface Forms { forms: Array<'ts013' | 'ttn-v2' | 'chirpstack-v3'>, decodeUplink: boolean, encodeDownlink: boolean, decodeDownlink: boolean }

/** What the glue answers: the adapted TS013 result, or a malformed one explained. */
export type GlueAnswer =
  | { ok: true, data?: unknown, bytes?: number[], fPort?: number, warnings: string[], errors: string[], logs?: string[] }
  | { ok: false, code: 'LB_ERR_CODEC_RESULT', message: string, logs?: string[] }

/** The WebAssembly code is compiled once per process; each engine instantiates it. */
let standardGlobals: string[] | undefined

/** Node's WebAssembly global (the DOM typings that declare it are not in this project's libs). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number, maximum: number }) => object } }).WebAssembly.Memory
const PAGE = 64 * 1024
/** What the QuickJS build asks for at start (16 MiB). */
const INITIAL_PAGES = 256
export const MIN_MEMORY_BYTES = 20 * 1024 * 1024

async function newModule (memoryBytes: number): Promise<QuickJSWASMModule> {
  const maximum = Math.max(INITIAL_PAGES, Math.floor(Math.max(memoryBytes, MIN_MEMORY_BYTES) / PAGE))
  const variant = newVariant(releaseSync as unknown as QuickJSSyncVariant, { wasmMemory: () => new WasmMemory({ initial: INITIAL_PAGES, maximum }) }) as QuickJSSyncVariant
  return newQuickJSWASMModuleFromVariant(variant)
}

/** "at decodeUplink (codecs/x.js:12:5)" → 12, 5: the codec's own frame, first. */
function position (stack: string | undefined, file: string): { line?: number, column?: number } {
  if (stack === undefined) return {}
  // The file name as written (it may hold spaces or parentheses), then line and column.
  const m = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+)`).exec(stack)
  return m === null ? {} : { line: Number(m[1]), column: Number(m[2]) }
}

class Engine {
  private deadline = Infinity
  readonly fns: Record<Operation | 'forms' | 'logs', QuickJSHandle>

  private constructor (readonly module: QuickJSWASMModule, readonly runtime: QuickJSRuntime, readonly context: QuickJSContext, fns: Engine['fns']) {
    this.fns = fns
  }

  static async create (source: string, file: string, limits: CodecLimits): Promise<Engine> {
    const module = await newModule(limits.memoryBytes)
    const runtime = module.newRuntime()
    runtime.setMaxStackSize(STACK_BYTES)
    const context = runtime.newContext()
    const engine = new Engine(module, runtime, context, {} as Engine['fns'])
    runtime.setInterruptHandler(() => Date.now() > engine.deadline)
    try {
      standardGlobals ??= engine.evalJson('JSON.stringify(Object.getOwnPropertyNames(globalThis))', '<probe>', 1000) as string[]
      engine.eval(PRELUDE, '<prelude>', 1000)
      engine.eval(source, file, limits.timeoutMs * LOAD_TIME_FACTOR)
      engine.eval(epilogue(standardGlobals), '<epilogue>', 1000)
      const ops = context.getProp(context.global, '__lb')
      for (const op of ['decodeUplink', 'encodeDownlink', 'decodeDownlink', 'forms'] as const) engine.fns[op] = context.getProp(ops, op)
      ops.dispose()
      const console = context.getProp(context.global, 'console')
      engine.fns.logs = context.getProp(console, '__take')
      console.dispose()
    } catch (err) {
      engine.dispose()
      throw err
    }
    return engine
  }

  private eval (code: string, file: string, timeoutMs: number): void {
    this.deadline = Date.now() + timeoutMs
    try {
      const r = this.context.evalCode(code, file)
      if (r.error !== undefined) throw this.failure(r.error, file, 'LB_ERR_CODEC_LOAD')
      r.value.dispose()
    } finally {
      this.deadline = Infinity
    }
  }

  private evalJson (code: string, file: string, timeoutMs: number): unknown {
    this.deadline = Date.now() + timeoutMs
    try {
      const r = this.context.evalCode(code, file)
      if (r.error !== undefined) throw this.failure(r.error, file, 'LB_ERR_CODEC_LOAD')
      const s = this.context.getString(r.value)
      r.value.dispose()
      return JSON.parse(s)
    } finally {
      this.deadline = Infinity
    }
  }

  /** Classifies an exception the engine raised (and disposes its handle). */
  failure (handle: QuickJSHandle, file: string, thrown: CodecErrorCode): CodecError {
    const timedOut = Date.now() > this.deadline
    let name = ''
    let message = ''
    let stack: string | undefined
    try {
      // Read with a fresh short deadline: a thrown object's getters are the codec's code too.
      this.deadline = Date.now() + 50
      const type = this.context.typeof(handle)
      if (type === 'object') {
        for (const [key, set] of [['name', (s: string) => { name = s }], ['message', (s: string) => { message = s }], ['stack', (s: string) => { stack = s }]] as const) {
          const r = this.context.getProp(handle, key)
          if (this.context.typeof(r) === 'string') set(this.context.getString(r).slice(0, 500))
          r.dispose()
        }
      } else {
        message = `threw ${type === 'string' ? JSON.stringify(this.context.getString(handle).slice(0, 500)) : `a ${type}`}`
      }
    } catch {
      message ||= 'threw a value that cannot be read'
    } finally {
      handle.dispose()
    }
    const where = position(stack, file)
    // Only a deadline that passed is a timeout: a codec can throw {name: 'InternalError', message: 'interrupted'} itself.
    if (timedOut) return new CodecError('LB_ERR_CODEC_TIMEOUT', name === 'InternalError' && message === 'interrupted' ? 'ran past its time limit (an endless loop?)' : 'ran past its time limit')
    if (name === 'InternalError' && (message === 'out of memory' || message === 'string too long')) return new CodecError('LB_ERR_CODEC_MEMORY', 'ran out of memory (the codec memory limit)')
    if ((name === 'InternalError' || name === 'RangeError') && /stack overflow/.test(message)) return new CodecError('LB_ERR_CODEC_STACK', 'stack overflow (recursion deeper than about 300 calls)', where.line, where.column)
    const at = where.line !== undefined ? ` at ${file}:${where.line}:${where.column}` : ''
    return new CodecError(thrown, `${name !== '' ? name + ': ' : ''}${message}${at}`, where.line, where.column)
  }

  call (op: Operation | 'forms', json: string, timeoutMs: number, file: string): GlueAnswer | Forms {
    const ctx = this.context
    const arg = ctx.newString(json)
    this.deadline = Date.now() + timeoutMs
    let res
    try {
      res = ctx.callFunction(this.fns[op], ctx.undefined, arg)
    } finally {
      arg.dispose()
    }
    try {
      if (res.error !== undefined) {
        const failure = this.failure(res.error, file, 'LB_ERR_CODEC_THROWN')
        failure.logs = this.logsAfterFailure()
        throw failure
      }
      // Promise jobs the call queued (a codec's .then) run now, within the same deadline: left
      // queued, they would pile up call after call until the engine ran out of memory.
      if (this.runtime.hasPendingJob()) {
        const jobs = this.runtime.executePendingJobs()
        if (jobs.error !== undefined) {
          res.value.dispose()
          throw this.failure(jobs.error, file, 'LB_ERR_CODEC_THROWN')
        }
        jobs.dispose()
      }
      // One native operation (a huge sort, repeat or concat) runs without interrupt checks: a call
      // that returned past its deadline is a timeout too, counted, and its engine replaced.
      if (Date.now() > this.deadline) {
        res.value.dispose()
        throw new CodecError('LB_ERR_CODEC_TIMEOUT', `ran past its time limit (one long operation, ${Date.now() - this.deadline + timeoutMs} ms)`)
      }
      const text = ctx.getString(res.value)
      res.value.dispose()
      if (text.length > MAX_RESULT_CHARS) throw new CodecError('LB_ERR_CODEC_RESULT', `returned ${text.length} characters of JSON; at most ${MAX_RESULT_CHARS} are kept`)
      return JSON.parse(text) as GlueAnswer | Forms
    } finally {
      this.deadline = Infinity
    }
  }

  /** What a failed call printed (the glue hands it over only with a result). Never throws. */
  private logsAfterFailure (): string[] {
    try {
      this.deadline = Date.now() + 50
      const r = this.context.callFunction(this.fns.logs, this.context.undefined)
      if (r.error !== undefined) { r.error.dispose(); return [] }
      const logs = this.context.dump(r.value) as unknown
      r.value.dispose()
      return Array.isArray(logs) ? logs.filter((l): l is string => typeof l === 'string') : []
    } catch {
      return []
    } finally {
      this.deadline = Infinity
    }
  }

  dispose (): void {
    try {
      for (const h of Object.values(this.fns)) h.dispose()
      this.context.dispose()
      this.runtime.dispose()
    } catch { /* an engine that trapped may refuse to be torn down; it is dropped anyway */ }
  }
}

/**
 * A loaded codec. `call` is synchronous while the engine is up; after an engine had to be replaced
 * the next call waits for the new one (`ready`).
 */
export class Sandbox {
  private engine: Engine | undefined
  private rebuilding: Promise<void> | undefined
  private closed = false
  /** How many times the engine was replaced after a limit or a trap. */
  rebuilds = 0

  private constructor (readonly file: string, private readonly source: string, private readonly limits: CodecLimits, readonly forms: Forms, engine: Engine) {
    this.engine = engine
  }

  /** Loads the file; rejects with a CodecError (LB_ERR_CODEC_LOAD, with line and column) if it does not load. */
  static async load (file: string, source: string, limits: CodecLimits): Promise<Sandbox> {
    let engine: Engine
    try {
      engine = await Engine.create(source, file, limits)
    } catch (err) {
      if (err instanceof CodecError) throw new CodecError('LB_ERR_CODEC_LOAD', err.code === 'LB_ERR_CODEC_LOAD' ? err.message : `its top level ${err.message}`, err.line, err.column)
      throw new CodecError('LB_ERR_CODEC_LOAD', `the engine failed while loading it: ${(err as Error).message}`)
    }
    const forms = engine.call('forms', '', limits.timeoutMs, file) as Forms
    return new Sandbox(file, source, limits, forms, engine)
  }

  /** Resolves when the engine is up (at once unless it is being replaced). */
  ready (): Promise<void> | undefined { return this.rebuilding }

  /** Runs one operation; throws a CodecError. */
  call (op: Operation, input: unknown): GlueAnswer {
    const engine = this.engine
    if (engine === undefined) throw new CodecError('LB_ERR_CODEC_CRASHED', this.closed ? 'the codec was unloaded' : 'the codec\'s engine is being restarted after a failure')
    try {
      return engine.call(op, JSON.stringify(input), this.limits.timeoutMs, this.file) as GlueAnswer
    } catch (err) {
      if (err instanceof CodecError) {
        if (err.code === 'LB_ERR_CODEC_TIMEOUT' || err.code === 'LB_ERR_CODEC_MEMORY' || err.code === 'LB_ERR_CODEC_STACK') this.replace()
        throw err
      }
      // The WebAssembly code itself trapped (the host's stack, an internal abort): its memory can no longer be trusted.
      this.replace()
      throw new CodecError('LB_ERR_CODEC_CRASHED', `the codec's engine failed (${(err as Error).message}); it is restarted`)
    }
  }

  private replace (): void {
    const old = this.engine
    this.engine = undefined
    old?.dispose()
    if (this.closed) return
    this.rebuilds++
    this.rebuilding = Engine.create(this.source, this.file, this.limits).then(e => {
      if (this.closed) e.dispose()
      else this.engine = e
    }, () => { /* it loaded before; if it no longer does, calls keep failing with CRASHED */ }).finally(() => { this.rebuilding = undefined })
  }

  dispose (): void {
    this.closed = true
    this.engine?.dispose()
    this.engine = undefined
  }
}
