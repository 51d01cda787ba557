/**
 * One ThingPark report, checked in the order a user can act on (thingpark-tunnel.md §2):
 * content type (415), query (400), body (400), token (401), time window (401), replay (401),
 * field types (400). Then it is published — and only then answered 2xx, because ThingPark never
 * retries (§0.5): what we acknowledge we must not lose.
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { ErrorCode } from '../errors.js'
import type { ThingParkNetwork } from '../model/events.js'
import type { ApplicationResolver } from '../model/applications.js'
import type { EventBus } from '../core/bus.js'
import type { Deduplicator } from '../core/dedup.js'
import type { RouteTable } from '../core/routes.js'
import type { OutcomeReporter } from '../core/downlinks.js'
import { frameId } from '../model/ids.js'
import { contentKind, FieldReader, KNOWN_REPORTS, parseReport, type KnownReport } from './reports.js'
import { parseRawQuery, verifyReportToken } from './token.js'
import { deliveryCauses, isJoinRequest, normalizeJoin, normalizeLocation, normalizeNotification, normalizeUplink, type TpContext } from './normalize.js'
import type { TpConnection, ThingParkDownlinks } from './downlink.js'

export interface TpRequest {
  connection: TpConnection
  maxTimeDeviation: number
  /** Past this, the answer is 503 even if the report is stored later. */
  answerTimeoutMs: number
  rawQuery: string
  contentType: string | undefined
  body: Buffer
}

export interface TpAnswer { status: number, body?: { error: ErrorCode, message: string } }

export interface TpIngestDeps {
  bus: EventBus
  dedup: Deduplicator
  /** Tokens seen within the time window. */
  replays: Deduplicator
  routes: RouteTable
  apps: ApplicationResolver
  downlinks: ThingParkDownlinks
  report: () => OutcomeReporter
  log: Logger
  metrics: Metrics
  includeRaw: boolean
  now: () => Date
  /** False while the store (Redis) is unreachable: reports are refused at once, not held. */
  ready: () => boolean
}

const NETWORK = 'thingpark'

export class ThingParkIngest {
  constructor (private readonly deps: TpIngestDeps) {}

  private refuse (status: number, code: ErrorCode, message: string, req: TpRequest): TpAnswer {
    this.deps.metrics.ingestErrors.inc({ network: NETWORK, code })
    if (status === 401) this.deps.metrics.thingparkTokenFailures.inc({ connection: req.connection.name, code })
    this.deps.log.warn({ code, connection: req.connection.name, status, reason: message }, 'ThingPark report refused')
    return { status, body: { error: code, message } }
  }

  /**
   * Answers within `answerTimeoutMs`: a report that could not be stored by then (the store went
   * away mid-request) is answered 503 — not acknowledged — even if it is published afterwards.
   */
  async handle (req: TpRequest): Promise<TpAnswer> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<TpAnswer>(resolve => {
      timer = setTimeout(() => {
        this.deps.log.warn({ code: 'LB_ERR_REDIS', connection: req.connection.name }, 'ThingPark report not stored in time; answered 503')
        resolve({ status: 503, body: { error: 'LB_ERR_REDIS', message: 'the report could not be stored in time; not acknowledged' } })
      }, req.answerTimeoutMs)
    })
    try {
      return await Promise.race([this.check(req), late])
    } finally {
      clearTimeout(timer)
    }
  }

  private async check (req: TpRequest): Promise<TpAnswer> {
    const kind = contentKind(req.contentType)
    if (kind === undefined) return this.refuse(415, 'LB_ERR_THINGPARK_CONTENT_TYPE', `Content-Type "${req.contentType ?? ''}" is neither JSON nor XML`, req)
    const q = parseRawQuery(req.rawQuery)
    if (!q.ok) return this.refuse(400, 'LB_ERR_THINGPARK_QUERY', q.message, req)
    const query = q.params
    if (query.LrnDevEui === undefined || !/^[0-9a-fA-F]{16}$/.test(query.LrnDevEui)) return this.refuse(400, 'LB_ERR_THINGPARK_QUERY', 'the query has no valid LrnDevEui', req)
    const parsed = parseReport(req.body, kind)
    if (!parsed.ok) return this.refuse(400, 'LB_ERR_THINGPARK_BODY', parsed.message, req)
    const { root, report } = parsed
    if (!root.startsWith('DevEUI_')) return this.refuse(400, 'LB_ERR_THINGPARK_BODY', `"${root}" is not a ThingPark report`, req)

    if (query.AS_ID !== req.connection.asId) return this.refuse(401, 'LB_ERR_THINGPARK_TOKEN', query.AS_ID === undefined ? 'the query has no AS_ID' : 'AS_ID is not this connection\'s', req)
    if (query.Token === undefined) return this.refuse(401, 'LB_ERR_THINGPARK_TOKEN', 'the query has no Token', req)
    if (!verifyReportToken(root, report, query, req.connection.asKey)) return this.refuse(401, 'LB_ERR_THINGPARK_TOKEN', 'Token does not match', req)
    if (req.maxTimeDeviation > 0) {
      const t = Date.parse(query.Time ?? '')
      if (Number.isNaN(t)) return this.refuse(401, 'LB_ERR_THINGPARK_TIME', 'the query Time is not a time', req)
      const skew = Math.abs(this.deps.now().getTime() - t) / 1000
      if (skew > req.maxTimeDeviation) return this.refuse(401, 'LB_ERR_THINGPARK_TIME', `the query Time is ${Math.round(skew)} s from our clock (allowed: ${req.maxTimeDeviation} s)`, req)
    }
    // Before anything that needs the store (the replay check is in Redis in a cluster).
    if (!this.deps.ready()) {
      // ThingPark never retries and wants a fast answer: say at once that this one is not kept.
      this.deps.log.warn({ code: 'LB_ERR_REDIS', connection: req.connection.name }, 'ThingPark report refused: the store is unreachable')
      return { status: 503, body: { error: 'LB_ERR_REDIS', message: 'the store is unreachable; the report is not kept' } }
    }
    if (!await this.deps.replays.firstSighting(query.Token.toLowerCase())) return this.refuse(401, 'LB_ERR_THINGPARK_REPLAY', 'this token was already used', req)

    const devEui = typeof report.DevEUI === 'string' ? report.DevEUI : String(report.DevEUI ?? '')
    if (devEui.toLowerCase() !== query.LrnDevEui.toLowerCase()) return this.refuse(400, 'LB_ERR_THINGPARK_QUERY', 'LrnDevEui and the body\'s DevEUI differ', req)

    if (!(KNOWN_REPORTS as readonly string[]).includes(root)) {
      // New report types appear release by release (§1.8): accepted, counted, not published.
      this.deps.metrics.ingestIgnored.inc({ network: NETWORK, reason: 'unknown-report' })
      this.deps.log.info({ connection: req.connection.name, root }, 'unknown ThingPark report accepted and ignored')
      return { status: 204 }
    }
    try {
      return await this.dispatch(root as KnownReport, new FieldReader(report), req, query, { [root]: report })
    } catch (err) {
      // Not published, so not acknowledged: the LRC logs an error for this destination.
      this.deps.log.error({ code: 'LB_ERR_REDIS', err, connection: req.connection.name }, 'could not publish a ThingPark report')
      return { status: 503, body: { error: 'LB_ERR_REDIS', message: 'the report could not be stored; not acknowledged' } }
    }
  }

  private context (req: TpRequest, query: Record<string, string>, raw: unknown): TpContext {
    const network: ThingParkNetwork = { type: 'thingpark', connection: req.connection.name, asId: query.AS_ID ?? req.connection.asId }
    return {
      network,
      app: devEui => this.deps.apps.resolve({ devEui, thingparkConnection: req.connection.name }),
      receivedAt: this.deps.now(),
      raw: this.deps.includeRaw ? raw : undefined,
    }
  }

  private async publishOnce (kind: 'up' | 'join' | 'status' | 'location', event: { id: string, app: string, devEui: string, gateways?: Array<{ id: string }> }): Promise<TpAnswer> {
    const key = `${kind}:${event.id}`
    // Frames are counted by the LRR ThingPark names first (its best reception).
    const gateway = kind === 'up' || kind === 'join' ? event.gateways?.[0]?.id ?? 'unknown' : undefined
    if (!await this.deps.dedup.firstSighting(key)) {
      this.deps.metrics.duplicates.inc({ network: NETWORK, kind })
      if (gateway !== undefined) this.deps.metrics.gatewayUplinks.inc({ network: NETWORK, gateway, result: 'duplicate' })
      return { status: 204 }
    }
    try {
      await this.deps.bus.publishEvent(kind, event)
    } catch (err) {
      await this.deps.dedup.forget(key)
      throw err
    }
    this.deps.metrics.eventsPublished.inc({ network: NETWORK, kind })
    if (gateway !== undefined) this.deps.metrics.gatewayUplinks.inc({ network: NETWORK, gateway, result: 'published' })
    return { status: 204 }
  }

  private invalid (message: string, req: TpRequest): TpAnswer {
    return this.refuse(400, 'LB_ERR_THINGPARK_PAYLOAD', message, req)
  }

  private async dispatch (root: KnownReport, f: FieldReader, req: TpRequest, query: Record<string, string>, raw: unknown): Promise<TpAnswer> {
    const ctx = this.context(req, query, raw)
    switch (root) {
      case 'DevEUI_uplink': {
        const n = isJoinRequest(f) ? normalizeJoin(f, ctx) : normalizeUplink(f, ctx)
        if (!n.ok) return this.invalid(n.message, req)
        const kind = 'fPort' in n.event || 'hex' in n.event ? 'up' : 'join'
        await this.deps.routes.offer(n.event.devEui, { route: { network: 'thingpark', connection: req.connection.name }, app: n.event.app, frame: n.event.id, snr: undefined, rssi: undefined, at: Date.now() })
        return this.publishOnce(kind, n.event)
      }
      case 'DevEUI_notification': {
        const n = normalizeNotification(f, ctx)
        return n.ok ? this.publishOnce('status', n.event) : this.invalid(n.message, req)
      }
      case 'DevEUI_location': {
        const n = normalizeLocation(f, ctx)
        return n.ok ? this.publishOnce('location', n.event) : this.invalid(n.message, req)
      }
      case 'DevEUI_downlink_Sent':
      case 'DevEUI_downlink_Rejected':
        return this.downlinkReport(root, f, req, ctx)
      case 'DevEUI_multicast_summary':
        this.deps.metrics.ingestIgnored.inc({ network: NETWORK, reason: 'multicast-summary' })
        return { status: 204 }
    }
  }

  /** The LRC's later word on a downlink: `down/sent`, or `down/failed` with its causes, under the request's id. */
  private async downlinkReport (root: 'DevEUI_downlink_Sent' | 'DevEUI_downlink_Rejected', f: FieldReader, req: TpRequest, ctx: TpContext): Promise<TpAnswer> {
    const devEui = f.hex('DevEUI', true, 16)
    const correlationId = f.str('CorrelationID')
    const status = f.int('DeliveryStatus', root === 'DevEUI_downlink_Sent')
    const fCntDn = f.int('FCntDn', false, 0)
    const slot = f.int('TransmissionSlot', false, 0, 9)
    if (f.errors.length > 0 || devEui === undefined) return this.invalid(f.errors.join('; '), req)
    const known = correlationId !== undefined ? await this.deps.downlinks.correlation(correlationId) : undefined
    const id = known?.id ?? correlationId ?? frameId('sent', devEui, fCntDn, f.time('Time'))
    if (!await this.deps.dedup.firstSighting(`sent:${root}:${id}:${fCntDn ?? ''}`)) {
      this.deps.metrics.duplicates.inc({ network: NETWORK, kind: 'down/sent' })
      return { status: 204 }
    }
    const base = {
      id,
      app: known?.app ?? ctx.app(devEui),
      devEui,
      command: 'down' as const,
      network: ctx.network,
      ...(fCntDn !== undefined ? { fCntDn } : {}),
      ...(slot !== undefined ? { transmissionSlot: slot } : {}),
    }
    const report = this.deps.report()
    if (root === 'DevEUI_downlink_Rejected') {
      await report('down/failed', { ...base, reason: 'rejected', detail: f.str('DownlinkRejectionCause') ?? `DeliveryStatus ${status ?? '?'}` }, NETWORK)
    } else if (status === 1) {
      await report('down/sent', base, NETWORK)
    } else {
      await report('down/failed', { ...base, reason: 'not-transmitted', detail: deliveryCauses(f) || 'DeliveryStatus 0: not sent; resubmit' }, NETWORK)
    }
    return { status: 204 }
  }
}
