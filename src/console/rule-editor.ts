/**
 * Editing rule files in the console (docs/console.md, "Editing rules"), off unless
 * `http.console.ruleEditing` is true: list and read the rule files of `rules.dir`, compile a draft
 * as the daemon would (the errors of `lorabridge rules check`), dry-run a draft on a device's last
 * uplink or a pasted event, and save it — only when it compiles, only over the version that was
 * read, atomically (rule-files.ts) — after which the rules component's watcher reloads it.
 * Every save is logged with the user and counted.
 */
import { join } from 'node:path'
import { Counter } from 'prom-client'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { EventBus } from '../core/bus.js'
import type { ErrorCode } from '../errors.js'
import type { EventKind } from '../model/events.js'
import { deviceFilter, parseDeviceTopic } from '../model/topics.js'
import { compileRuleSource, disposeCodecs, formatRuleError, EVENT_KINDS, type CompileResult, type CompiledFile, type RuleError } from '../rules/compile.js'
import type { RulesComponent } from '../rules/component.js'
import { dryRun, type DryRun } from '../cli/rules.js'
import { normalizeAddress } from '../util/net.js'
import { MAX_RULE_FILE_BYTES, RuleFileError, RuleFiles, checkName } from './rule-files.js'

/** Drafts travel as JSON strings: room for escaping around the largest file. */
export const RULE_EDITOR_BODY_LIMIT = 4 * MAX_RULE_FILE_BYTES + 16 * 1024
/** Last uplinks kept for dry runs: this many devices, the least recently heard forgotten first. */
const MAX_DEVICES = 1000
const MAX_UPLINK_BYTES = 64 * 1024
/** How long a save waits to see the rules component reload the file. */
const RELOAD_WAIT_MS = 5000
const RELOAD_POLL_MS = 50

export interface RuleEditorDeps {
  config: Config
  log: Logger
  metrics: Metrics
  bus: EventBus
  rules: RulesComponent
}

/** What the daemon did with a saved file, as its status (`{root}/_bridge/rules`) says. */
export type ReloadOutcome =
  | { status: 'loaded', loadedAt: string, rules: string[], decoders: string[] }
  | { status: 'failed', errors: unknown[] }
  | { status: 'pending', message: string }
  | { status: 'not-watching', message: string }

interface FileStatus { file: string, ok: boolean, loadedAt: string, rules: string[], decoders: string[], errors?: unknown[] }

/** One compile error as the API gives it: the RuleError, and the line `rules check` prints. */
const withText = (e: RuleError): RuleError & { text: string } => ({ ...e, text: formatRuleError(e) })

export class RuleEditor {
  readonly enabled: boolean
  /** Whether the rules component reloads what is saved (rules.watch). */
  readonly watching: boolean
  readonly files: RuleFiles
  readonly saves: Counter
  /**
   * The JSON text of each device's last uplink (parsed only for a dry run; a string, so that no
   * network buffer is held), by DevEUI, least recently heard first.
   */
  private readonly lastUplinks = new Map<string, { app: string, at: number, text: string }>()
  private unsubscribe: (() => Promise<void>) | undefined

  constructor (private readonly deps: RuleEditorDeps) {
    this.enabled = deps.config.http.console.ruleEditing
    this.watching = deps.config.rules.watch
    this.files = new RuleFiles(deps.config.rules.dir)
    this.saves = new Counter({ name: 'lorabridge_console_rule_saves_total', help: 'Rule files saved from the web console (refusals are in lorabridge_console_refused_total)', registers: [deps.metrics.registry] })
  }

  /** Follows uplinks only when editing is on: nothing is kept otherwise. */
  async start (): Promise<void> {
    if (!this.enabled) return
    const root = this.deps.config.topics.root
    this.unsubscribe = await this.deps.bus.subscribe(deviceFilter(root, 'up'), (topic, payload) => {
      const t = parseDeviceTopic(root, topic)
      if (t === undefined || payload.length > MAX_UPLINK_BYTES) return
      this.lastUplinks.delete(t.devEui)
      if (this.lastUplinks.size >= MAX_DEVICES) this.lastUplinks.delete(this.lastUplinks.keys().next().value as string)
      this.lastUplinks.set(t.devEui, { app: t.app, at: Date.now(), text: payload.toString('utf8') })
    })
  }

  async stop (): Promise<void> {
    await this.unsubscribe?.().catch(() => {})
    this.unsubscribe = undefined
    this.lastUplinks.clear()
  }

  /** The devices whose last uplink a dry run can use, most recently heard first. */
  uplinks (limit = 200): Array<{ devEui: string, app: string, receivedAt: string, fPort?: number, fCnt?: number }> {
    return [...this.lastUplinks].reverse().slice(0, limit).map(([devEui, u]) => {
      const e = this.lastUplink(devEui)
      return {
        devEui,
        app: u.app,
        receivedAt: typeof e?.receivedAt === 'string' ? e.receivedAt : new Date(u.at).toISOString(),
        ...(typeof e?.fPort === 'number' ? { fPort: e.fPort } : {}),
        ...(typeof e?.fCnt === 'number' ? { fCnt: e.fCnt } : {}),
      }
    })
  }

  /** The device's last uplink as it came in: without what the running decoders added, so that the draft's decide. */
  lastUplink (devEui: string): Record<string, unknown> | undefined {
    const u = this.lastUplinks.get(devEui)
    if (u === undefined) return undefined
    let e: unknown
    try {
      e = JSON.parse(u.text)
    } catch {
      return undefined
    }
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return undefined
    const { decoded: _d, decodeErrors: _e, decodeWarnings: _w, ...event } = e as Record<string, unknown>
    return event
  }

  /**
   * Compiles a draft of `file` as the rules component would compile the saved file: the rule
   * format, every expression, and the codecs it names (loaded, confined to the rules directory).
   * The caller disposes the codecs of a successful result.
   */
  async compile (file: string, content: string): Promise<CompileResult> {
    // A bare name: codec paths are confined to the directory of the file's path.
    checkName(file, false)
    const limits = { timeoutMs: this.deps.config.rules.codecs.timeoutMs, memoryBytes: this.deps.config.rules.codecs.memoryMiB * 1024 * 1024 }
    return await compileRuleSource(join(this.deps.config.rules.dir, file), content, { codecLimits: limits })
  }

  /** The running rule set with `draft` in place of its file (or added), in the rules component's file order. */
  private withDraft (draft: CompiledFile): CompiledFile[] {
    const { rules, decoders } = this.deps.rules.engine.loaded()
    const files = new Map<string, CompiledFile>()
    const of = (name: string): CompiledFile => {
      let f = files.get(name)
      if (f === undefined) { f = { file: name, rules: [], decoders: [] }; files.set(name, f) }
      return f
    }
    for (const d of decoders) if (d.file !== draft.file) of(d.file).decoders.push(d)
    for (const r of rules) if (r.file !== draft.file) of(r.file).rules.push(r)
    files.set(draft.file, draft)
    return [...files.values()].sort((a, b) => a.file.localeCompare(b.file))
  }

  async tryDraft (file: string, content: string, on: EventKind, event: Record<string, unknown>): Promise<{ ok: true, result: DryRun } | { ok: false, errors: RuleError[] }> {
    const compiled = await this.compile(file, content)
    if (!compiled.ok) return { ok: false, errors: compiled.errors }
    try {
      return { ok: true, result: await dryRun(this.deps.config, this.withDraft(compiled.compiled), on, event) }
    } finally {
      disposeCodecs(compiled.compiled)
    }
  }

  private fileStatus (file: string): FileStatus | undefined {
    const files = this.deps.rules.status().files as FileStatus[]
    return files.find(f => f.file === file)
  }

  /** Waits for the rules component to load (or refuse) the file saved at `since`. */
  private async reloaded (file: string, since: number, before: FileStatus | undefined): Promise<ReloadOutcome> {
    if (!this.watching) return { status: 'not-watching', message: 'rules.watch is off: the file is loaded at the next start' }
    const beforeErrors = JSON.stringify(before?.errors ?? [])
    for (const deadline = Date.now() + RELOAD_WAIT_MS; Date.now() < deadline;) {
      const s = this.fileStatus(file)
      if (s !== undefined && Date.parse(s.loadedAt) >= since && s.ok) return { status: 'loaded', loadedAt: s.loadedAt, rules: s.rules, decoders: s.decoders }
      if (s !== undefined && !s.ok && JSON.stringify(s.errors ?? []) !== beforeErrors) return { status: 'failed', errors: s.errors ?? [] }
      await new Promise(resolve => setTimeout(resolve, RELOAD_POLL_MS))
    }
    return { status: 'pending', message: `not reloaded within ${RELOAD_WAIT_MS / 1000} s; the Rules tab shows when it is` }
  }

  /**
   * Saves a draft that compiles over the version `etag` (null: a new file). Returns the compile
   * errors instead when it does not compile; throws a RuleFileError for a refused name or version.
   */
  async save (user: string, file: string, content: string, etag: string | null): Promise<{ ok: true, file: string, etag: string, size: number, created: boolean, reload: ReloadOutcome } | { ok: false, errors: RuleError[] }> {
    const compiled = await this.compile(file, content)
    if (!compiled.ok) return { ok: false, errors: compiled.errors }
    disposeCodecs(compiled.compiled)
    const before = this.fileStatus(file)
    const since = Date.now()
    const saved = await this.files.save(file, content, etag, etag === null)
    this.saves.inc()
    this.deps.log.info({ user, file: saved.file, sha256: saved.etag, previous: saved.previous, bytes: saved.size, created: saved.created }, 'rule file saved from the console')
    return { ok: true, file: saved.file, etag: saved.etag, size: saved.size, created: saved.created, reload: await this.reloaded(saved.file, since, before) }
  }
}

/** What the editor's routes use of the console's own (routes.ts): its session check, body parsing and refusals. */
export interface RuleEditorRouteHelpers {
  editor: RuleEditor
  /** preHandler: a live admin session from the console's origin. */
  needSession: (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>
  user: (req: FastifyRequest) => string | undefined
  /** The JSON object body, or undefined after answering 415/400. */
  jsonBody: (req: FastifyRequest, reply: FastifyReply) => Record<string, unknown> | undefined
  refuse: (r: { code: ErrorCode, address: string, user?: string | undefined, url?: string | undefined, reason: string }) => void
}

/** The editor's API under /console/api/rule-editor, in the console's scope (its Host check applies). */
export function ruleEditorRoutes (scope: FastifyInstance, h: RuleEditorRouteHelpers): void {
  const { editor } = h
  const fail = (reply: FastifyReply, req: FastifyRequest, status: number, code: ErrorCode, message: string, extra: Record<string, unknown> = {}): FastifyReply => {
    h.refuse({ code, address: normalizeAddress(req.socket.remoteAddress), user: h.user(req), url: req.url.split('?')[0], reason: message })
    return reply.code(status).headers({ 'cache-control': 'no-store' }).send({ error: code, message, ...extra })
  }
  const refused = (reply: FastifyReply, req: FastifyRequest, err: unknown): FastifyReply => {
    if (!(err instanceof RuleFileError)) throw err
    const { code, status, message, ...extra } = err.refusal
    return fail(reply, req, status, code, message, extra)
  }
  /** preHandler of what changes files or runs a draft: refused while editing is off. */
  const needEditing = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (editor.enabled) return undefined
    return fail(reply, req, 403, 'LB_ERR_RULE_EDIT_OFF', 'editing rule files in the console is off (http.console.ruleEditing)')
  }
  /** The draft of a body: `file` (checked by RuleFiles when used) and `content`. */
  const draftOf = (req: FastifyRequest, reply: FastifyReply, body: Record<string, unknown>): { file: string, content: string } | undefined => {
    try {
      checkName(body.file, false)
    } catch (err) {
      void refused(reply, req, err)
      return undefined
    }
    if (typeof body.content !== 'string') { void fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', '"content" must be the text of the rule file'); return undefined }
    if (Buffer.byteLength(body.content, 'utf8') > MAX_RULE_FILE_BYTES) { void fail(reply, req, 413, 'LB_ERR_RULE_EDIT_TOO_LARGE', `a rule file edited here is at most ${MAX_RULE_FILE_BYTES} bytes`); return undefined }
    return { file: body.file as string, content: body.content }
  }
  const editing = { preHandler: [h.needSession, needEditing], bodyLimit: RULE_EDITOR_BODY_LIMIT }

  scope.register(async api => {
    // The console's own error handler names its 64 KiB limit; drafts have a larger one.
    api.setErrorHandler((err: Error & { statusCode?: number, code?: string }, req, reply) => {
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fail(reply, req, 413, 'LB_ERR_CONSOLE_TOO_LARGE', `the body exceeds ${RULE_EDITOR_BODY_LIMIT} bytes`)
      if (err.statusCode !== undefined && err.statusCode < 500) return fail(reply, req, err.statusCode, 'LB_ERR_CONSOLE_REQUEST', err.message)
      req.log.error({ err }, 'rule editor request failed')
      return reply.code(500).send({ error: 'internal', message: 'internal error' })
    })

    // Reading is allowed while editing is off: the console then shows the files read-only.
    api.get('/console/api/rule-editor', { preHandler: h.needSession }, async (_req, reply) => {
      return reply.headers({ 'cache-control': 'no-store' }).send({ editing: editor.enabled, dir: editor.files.dir, maxBytes: MAX_RULE_FILE_BYTES, watching: editor.watching, files: await editor.files.list() })
    })

    api.get<{ Params: { name: string } }>('/console/api/rule-editor/files/:name', { preHandler: h.needSession }, async (req, reply) => {
      try {
        return reply.headers({ 'cache-control': 'no-store' }).send({ ...await editor.files.read(req.params.name), editing: editor.enabled })
      } catch (err) {
        return refused(reply, req, err)
      }
    })

    api.get('/console/api/rule-editor/uplinks', { preHandler: [h.needSession, needEditing] }, async (_req, reply) => {
      return reply.headers({ 'cache-control': 'no-store' }).send({ devices: editor.uplinks() })
    })

    api.post('/console/api/rule-editor/compile', editing, async (req, reply) => {
      const body = h.jsonBody(req, reply)
      if (body === undefined) return reply
      const draft = draftOf(req, reply, body)
      if (draft === undefined) return reply
      const result = await editor.compile(draft.file, draft.content)
      if (!result.ok) return { ok: false, errors: result.errors.map(withText) }
      disposeCodecs(result.compiled)
      return { ok: true, errors: [], rules: result.compiled.rules.map(r => r.name), decoders: result.compiled.decoders.map(d => d.name) }
    })

    api.post('/console/api/rule-editor/try', editing, async (req, reply) => {
      const body = h.jsonBody(req, reply)
      if (body === undefined) return reply
      const draft = draftOf(req, reply, body)
      if (draft === undefined) return reply
      const on = body.on ?? 'up'
      if (typeof on !== 'string' || !(EVENT_KINDS as string[]).includes(on)) return fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', `"on" must be one of ${EVENT_KINDS.join(', ')}`)
      let event: Record<string, unknown> | undefined
      if (body.event !== undefined) {
        if (typeof body.event !== 'object' || body.event === null || Array.isArray(body.event)) return fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', '"event" must be a JSON object (a normalized event)')
        event = body.event as Record<string, unknown>
      } else {
        if (typeof body.devEui !== 'string') return fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', 'give "devEui" (a device whose last uplink to use) or "event"')
        event = editor.lastUplink(body.devEui)
        if (event === undefined) return fail(reply, req, 404, 'LB_ERR_RULE_EDIT_NOT_FOUND', `no uplink of ${body.devEui} heard since the daemon started`)
      }
      const r = await editor.tryDraft(draft.file, draft.content, on as EventKind, event)
      if (!r.ok) return fail(reply, req, 422, 'LB_ERR_RULE_EDIT_INVALID', 'the draft does not compile', { errors: r.errors.map(withText) })
      return { ...r.result, event }
    })

    api.post('/console/api/rule-editor/save', editing, async (req, reply) => {
      const body = h.jsonBody(req, reply)
      if (body === undefined) return reply
      const draft = draftOf(req, reply, body)
      if (draft === undefined) return reply
      if (body.etag !== null && (typeof body.etag !== 'string' || !/^[0-9a-f]{64}$/.test(body.etag))) {
        return fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', '"etag" must be the etag the file was read with, or null for a new file')
      }
      try {
        const r = await editor.save(h.user(req) ?? '?', draft.file, draft.content, body.etag)
        if (!r.ok) return fail(reply, req, 422, 'LB_ERR_RULE_EDIT_INVALID', 'the draft does not compile: nothing was saved', { errors: r.errors.map(withText) })
        return reply.headers({ 'cache-control': 'no-store' }).send(r)
      } catch (err) {
        const errno = (err as NodeJS.ErrnoException).code
        if (!(err instanceof RuleFileError) && typeof errno === 'string') {
          // The file system said no (a missing directory, permissions, a full disk): nothing was replaced.
          return fail(reply, req, 500, 'LB_ERR_RULE_EDIT_WRITE', `could not write ${draft.file} in ${editor.files.dir}: ${errno}`)
        }
        return refused(reply, req, err)
      }
    })
  })
}
