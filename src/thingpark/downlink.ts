/**
 * Downlinks to ThingPark devices (thingpark-tunnel.md §3): a token-signed POST to the connection's
 * downlinkUrl. `200 … Request queued by LRC` → `down/queued`; a 4xx (or a 200 without that text)
 * → `down/failed` `lrc-refused` with the LRC's message, not retried; a 5xx, a timeout or a network
 * error → retried with exponential backoff and jitter, and after `maxAttempts` → `down/failed`
 * `network-error`. Pending requests live in the key-value store, so with Redis they survive a restart.
 */
import { createHash } from 'node:crypto'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { DownlinkRequest, ThingParkNetwork } from '../model/events.js'
import type { DownlinkTarget, EventSink, SendResult } from '../core/adapter.js'
import type { KeyValueStore } from '../store/kv.js'
import { lrcTime, signDownlinkQuery, type QueryParam } from './token.js'

export interface TpConnection { name: string, asId: string, asKey: string, downlinkUrl: string, validitySeconds: number | undefined }

interface Pending {
  id: string
  app: string
  devEui: string
  connection: string
  fPort: number
  hex: string
  confirmed: boolean
  flush: boolean
  correlationId: string
  attempt: number
  nextAt: number
  firstAt: number
  /** The request's own expiry (ms), else the connection's validitySeconds from the first attempt. */
  expiresAt?: number
}

export interface Correlation { id: string, app: string, devEui: string, connection: string }

const PENDING = 'tp:pending:'
const CORRELATION = 'tp:corr:'
/** How long a CorrelationID is remembered for the LRC's later DevEUI_downlink_Sent. */
const CORRELATION_TTL_MS = 3 * 24 * 3600 * 1000
const QUEUED = 'Request queued by LRC'

/** A 64-bit hex CorrelationID tied to the request id (§3.2), so that the sent report finds the request. */
export function correlationIdFor (requestId: string): string {
  return createHash('sha256').update(requestId).digest('hex').slice(0, 16).toUpperCase()
}

/** The LRC wraps messages in `<html><body>…</body></html>` (§3.4). */
export function lrcMessage (body: string): string {
  return body.replace(/<\/?(html|body)[^>]*>/gi, '').trim().slice(0, 500)
}

/** The ThingPark adapter's route: the connection that carried the device's latest uplink. */
export interface ThingParkRoute { connection: string }

/** The route, if `value` is one (it comes back from the route table, possibly written by another version). */
export function thingparkRoute (value: unknown): ThingParkRoute | undefined {
  const c = (value as { connection?: unknown } | null)?.connection
  return typeof c === 'string' ? { connection: c } : undefined
}

const NOT_OURS: SendResult = { status: 'failed', reason: 'unsupported', detail: 'the device\'s route was not recorded by the ThingPark adapter' }

export class ThingParkDownlinks {
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private readonly aborts = new Set<AbortController>()
  private stopped = false
  constructor (private readonly deps: {
    config: Config
    /** Publishes downlink outcomes (ThingPark's sent reports finish them later). */
    report: EventSink['outcome']
    /** Told of each request resumed after a restart (the pending list). */
    held?: EventSink['held']
    kv: KeyValueStore
    connections: ReadonlyMap<string, TpConnection>
    log: Logger
    metrics: Metrics
    now?: () => number
  }) {}

  private now (): number { return this.deps.now?.() ?? Date.now() }

  private network (c: TpConnection): ThingParkNetwork {
    return { type: 'thingpark', connection: c.name, asId: c.asId }
  }

  async send (target: DownlinkTarget, req: DownlinkRequest): Promise<SendResult> {
    const route = thingparkRoute(target.route)
    if (route === undefined) return NOT_OURS
    const connection = this.deps.connections.get(route.connection)
    if (connection === undefined) return { status: 'failed', reason: 'no-route', detail: `ThingPark connection "${route.connection}" is not configured` }
    const p: Pending = {
      id: req.id,
      app: target.app,
      devEui: target.devEui,
      connection: connection.name,
      fPort: req.fPort,
      hex: req.bytes.toString('hex'),
      confirmed: req.confirmed,
      flush: req.flush,
      correlationId: correlationIdFor(req.id),
      attempt: 0,
      nextAt: this.now(),
      firstAt: this.now(),
      ...(req.expiresAt !== undefined ? { expiresAt: req.expiresAt } : {}),
    }
    // Replace: what this instance still retries for the device would be flushed at the LRC anyway.
    if (req.flush) await this.replacePending(target.devEui, req.id)
    await this.deps.kv.set(CORRELATION + p.correlationId, JSON.stringify({ id: p.id, app: p.app, devEui: p.devEui, connection: p.connection } satisfies Correlation), CORRELATION_TTL_MS)
    await this.deps.kv.set(PENDING + p.id, JSON.stringify(p))
    this.schedule(p)
    return { status: 'deferred' }
  }

  async clear (target: DownlinkTarget): Promise<SendResult> {
    const route = thingparkRoute(target.route)
    if (route === undefined) return NOT_OURS
    const c = this.deps.connections.get(route.connection)
    return {
      status: 'failed',
      reason: 'unsupported',
      detail: 'ThingPark flushes a queue only together with a downlink: send one with "flush": true',
      ...(c !== undefined ? { network: this.network(c) } : {}),
    }
  }

  private async replacePending (devEui: string, by: string): Promise<void> {
    for (const [key, value] of await this.deps.kv.entries(PENDING)) {
      const p = JSON.parse(value) as Pending
      if (p.devEui !== devEui || p.id === by) continue
      clearTimeout(this.timers.get(p.id))
      this.timers.delete(p.id)
      if (!await this.deps.kv.del(key).then(() => true, () => false)) continue
      const c = this.deps.connections.get(p.connection)
      await this.deps.report('down/failed', { id: p.id, app: p.app, devEui: p.devEui, command: 'down', reason: 'replaced', detail: `replaced by request ${by} before the LRC accepted it`, ...(c !== undefined ? { network: this.network(c) } : {}) }, 'thingpark')
    }
  }

  async correlation (correlationId: string): Promise<Correlation | undefined> {
    const v = await this.deps.kv.get(CORRELATION + correlationId.toUpperCase())
    return v === undefined ? undefined : JSON.parse(v) as Correlation
  }

  /** Picks up requests a previous run left pending (with Redis: across restarts). */
  async start (): Promise<void> {
    this.stopped = false
    for (const [, value] of await this.deps.kv.entries(PENDING)) {
      const p = JSON.parse(value) as Pending
      this.deps.log.info({ id: p.id, devEui: p.devEui, attempt: p.attempt }, 'resuming a pending ThingPark downlink')
      this.deps.held?.(p.app, p.devEui, { id: p.id, fPort: p.fPort, bytes: Buffer.from(p.hex, 'hex'), confirmed: p.confirmed, flush: p.flush, ...(p.expiresAt !== undefined ? { expiresAt: p.expiresAt } : {}) })
      this.schedule(p)
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    for (const a of this.aborts) a.abort()
  }

  private schedule (p: Pending): void {
    if (this.stopped) return
    const delay = Math.max(0, p.nextAt - this.now())
    const timer = setTimeout(() => {
      this.timers.delete(p.id)
      this.attempt(p).catch((err: unknown) => { this.deps.log.error({ err, id: p.id }, 'ThingPark downlink attempt failed unexpectedly') })
    }, delay)
    this.timers.set(p.id, timer)
  }

  private params (p: Pending, c: TpConnection): QueryParam[] {
    // Actility's order (§3.3); the token covers the parameters in the order sent.
    const params: QueryParam[] = [['DevEUI', p.devEui.toUpperCase()], ['FPort', String(p.fPort)], ['Payload', p.hex]]
    if (p.confirmed) params.push(['Confirmed', '1'])
    if (p.flush) params.push(['FlushDownlinkQueue', '1'])
    // An absolute expiry, so that retries do not extend the validity: the request's own, else the connection's.
    const validUntil = p.expiresAt ?? (c.validitySeconds !== undefined ? p.firstAt + c.validitySeconds * 1000 : undefined)
    if (validUntil !== undefined) params.push(['ValidityTime', lrcTime(new Date(validUntil))])
    params.push(['AS_ID', c.asId], ['Time', lrcTime(new Date(this.now()))], ['CorrelationID', p.correlationId])
    return params
  }

  private async attempt (p: Pending): Promise<void> {
    const c = this.deps.connections.get(p.connection)
    if (c === undefined) return this.finish(p, undefined, { reason: 'no-route', detail: `ThingPark connection "${p.connection}" is no longer configured` })
    const opts = this.deps.config.thingpark.downlink
    // A request that expired while waiting for a retry is not sent: the LRC would drop it anyway.
    if (p.expiresAt !== undefined && p.expiresAt <= this.now()) {
      return this.finish(p, c, { reason: 'expired', detail: `its expiry, ${new Date(p.expiresAt).toISOString()}, passed before the LRC accepted it (${p.attempt} attempts)` })
    }
    p.attempt++
    const { query } = signDownlinkQuery(this.params(p, c), c.asKey)
    const abort = new AbortController()
    this.aborts.add(abort)
    const timeout = setTimeout(() => abort.abort(), opts.timeoutMs)
    let retryable: string
    try {
      const res = await fetch(`${c.downlinkUrl}?${query}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '', signal: abort.signal })
      const text = await res.text()
      if (res.status === 200 && text.includes(QUEUED)) return this.finish(p, c, undefined)
      if (res.status < 500 && res.status !== 429) {
        this.deps.log.warn({ code: 'LB_ERR_THINGPARK_DOWNLINK', id: p.id, devEui: p.devEui, status: res.status, message: lrcMessage(text) }, 'the LRC refused a downlink')
        return this.finish(p, c, { reason: 'lrc-refused', detail: `${res.status}: ${lrcMessage(text)}` })
      }
      retryable = `${res.status}: ${lrcMessage(text)}`
    } catch (err) {
      if (this.stopped) return // left pending for the next start
      retryable = abort.signal.aborted ? `no answer within ${opts.timeoutMs} ms` : (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message
    } finally {
      clearTimeout(timeout)
      this.aborts.delete(abort)
    }
    if (p.attempt >= opts.maxAttempts) {
      this.deps.log.warn({ code: 'LB_ERR_THINGPARK_DOWNLINK', id: p.id, devEui: p.devEui, attempts: p.attempt, last: retryable }, 'giving up on a ThingPark downlink')
      return this.finish(p, c, { reason: 'network-error', detail: `${p.attempt} attempts; last: ${retryable}` })
    }
    const base = Math.min(opts.maxBackoffMs, opts.initialBackoffMs * 2 ** (p.attempt - 1))
    p.nextAt = this.now() + Math.round(base * (0.5 + Math.random())) // ±50 % jitter
    this.deps.metrics.downlinkRetries.inc({ connection: c.name })
    this.deps.log.info({ id: p.id, devEui: p.devEui, attempt: p.attempt, retryInMs: p.nextAt - this.now(), last: retryable }, 'retrying a ThingPark downlink')
    await this.deps.kv.set(PENDING + p.id, JSON.stringify(p))
    this.schedule(p)
  }

  private async finish (p: Pending, c: TpConnection | undefined, failure: { reason: 'lrc-refused' | 'network-error' | 'no-route' | 'expired', detail: string } | undefined): Promise<void> {
    await this.deps.kv.del(PENDING + p.id)
    const base = { id: p.id, app: p.app, devEui: p.devEui, command: 'down' as const, ...(c !== undefined ? { network: this.network(c) } : {}) }
    if (failure === undefined) await this.deps.report('down/queued', base, 'thingpark')
    else await this.deps.report('down/failed', { ...base, ...failure }, 'thingpark')
  }
}
