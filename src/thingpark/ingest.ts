/**
 * One ThingPark report (thingpark-tunnel.md §2). The checks that need no body come first, in
 * `precheck`, before the body is even read: the sender's failure budget (429), Content-Type (415),
 * query (400), AS_ID and Token format (401), Time window (401). Then, with the body: a token
 * already accepted (401), the parse (400), the token itself (401), field types (400). A report is
 * published — and only then answered 2xx, because ThingPark never retries (§0.5): what we
 * acknowledge we must not lose.
 *
 * Every refusal before the token is verified spends one of the sender's failures (issue 12: an
 * unauthenticated sender could make us parse 62 KB of XML per request); a replay does not, since
 * ThingPark itself posts one report to several URLs ("Blast" routing).
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { ErrorCode } from '../errors.js'
import type { ThingParkNetwork } from '../model/events.js'
import type { ApplicationResolver } from '../model/applications.js'
import { receiveTime } from '../core/dedup.js'
import type { EventSink, NormalizedEvent } from '../core/adapter.js'
import type { FailureBudget } from '../util/failure-budget.js'
import { normalizeAddress, rateLimitKey } from '../util/net.js'
import { frameId } from '../model/ids.js'
import { contentKind, FieldReader, KNOWN_REPORTS, parseReport, type KnownReport } from './reports.js'
import { parseRawQuery, verifyReportToken } from './token.js'
import { CLOCK_SLACK_MS, type ReplayMemory } from './replay-memory.js'
import { deliveryCauses, isJoinRequest, normalizeJoin, normalizeLocation, normalizeNotification, normalizeUplink, type TpContext } from './normalize.js'
import { isBareEui } from '../model/eui.js'
import type { TpConnection, ThingParkDownlinks, ThingParkRoute } from './downlink.js'

/** What is known of a request before its body is read. */
export interface TpRequestHead {
  connection: TpConnection
  maxTimeDeviation: number
  rawQuery: string
  contentType: string | undefined
  /** The sender's address: failures are counted per address (IPv6: per /64). */
  address: string | undefined
}

export interface TpRequest extends TpRequestHead {
  /** Past this, the answer is 503 even if the report is stored later. */
  answerTimeoutMs: number
  body: Buffer
}

export interface TpAnswer { status: number, body?: { error: ErrorCode, message: string } }

/** A request that passed the checks needing no body: its query, and its Time on our clock. */
export interface TpHeadOk { query: Record<string, string> & { Token: string }, timeMs: number, windowMs: number }

export interface TpIngestDeps {
  events: EventSink
  /** Tokens accepted, until their Time leaves the window. */
  replays: ReplayMemory
  /** Refusals before the token is verified, per sender. */
  failures: FailureBudget
  /** The window for connections with maxTimeDeviation 0. */
  replayHorizonSeconds: number
  apps: ApplicationResolver
  downlinks: ThingParkDownlinks
  log: Logger
  metrics: Metrics
  includeRaw: boolean
  now: () => Date
  /** False while the store (Redis) is unreachable: reports are refused at once, not held. */
  ready: () => boolean
}

const NETWORK = 'thingpark'
/** The adapter's name in route entries. */
export const THINGPARK = 'thingpark'
const TOKEN = /^[0-9a-fA-F]{64}$/

export class ThingParkIngest {
  constructor (private readonly deps: TpIngestDeps) {}

  /** `receivedAsId`: the AS_ID of a report refused for it, logged so that an admin can copy ThingPark's into `asId`. */
  private refuse (status: number, code: ErrorCode, message: string, req: TpRequestHead, receivedAsId?: string): TpAnswer {
    this.deps.metrics.ingestErrors.inc({ network: NETWORK, code })
    if (status === 401) this.deps.metrics.thingparkTokenFailures.inc({ connection: req.connection.name, code })
    // The received AS_ID is the sender's text: under its own key, and cut to a length an AS ID never reaches.
    this.deps.log.warn({ code, connection: req.connection.name, status, address: req.address, reason: message, receivedAsId: receivedAsId?.slice(0, 100) }, 'ThingPark report refused')
    return { status, body: { error: code, message } }
  }

  /** A refusal of a request not (yet) shown to come from ThingPark: it spends one of the sender's failures. */
  private reject (status: number, code: ErrorCode, message: string, req: TpRequestHead, receivedAsId?: string): TpAnswer {
    this.failed(req.address)
    return this.refuse(status, code, message, req, receivedAsId)
  }

  /** Spends one failure of `address` (also for refusals made outside the ingest: a body too large). */
  failed (address: string | undefined): void {
    this.deps.failures.fail(rateLimitKey(normalizeAddress(address)))
  }

  /**
   * The checks that need no body, cheapest first; run before the body is read. Returns the
   * refusal, or what the later checks need.
   */
  precheck (req: TpRequestHead): TpAnswer | TpHeadOk {
    const source = rateLimitKey(normalizeAddress(req.address))
    if (this.deps.failures.exhausted(source)) {
      this.deps.metrics.ingestErrors.inc({ network: NETWORK, code: 'LB_ERR_THINGPARK_RATE_LIMITED' })
      // One line per address per window: a flood must not become a flood of log lines.
      if (this.deps.failures.firstRefusalInWindow(source)) {
        this.deps.log.warn({ code: 'LB_ERR_THINGPARK_RATE_LIMITED', connection: req.connection.name, status: 429, address: req.address, source }, 'ThingPark requests refused: too many failures from this address (further refusals in this window are counted, not logged)')
      }
      return { status: 429, body: { error: 'LB_ERR_THINGPARK_RATE_LIMITED', message: 'too many refused requests from this address; try again later' } }
    }
    if (contentKind(req.contentType) === undefined) return this.reject(415, 'LB_ERR_THINGPARK_CONTENT_TYPE', `Content-Type "${(req.contentType ?? '').slice(0, 100)}" is neither JSON nor XML`, req)
    const q = parseRawQuery(req.rawQuery)
    if (!q.ok) return this.reject(400, 'LB_ERR_THINGPARK_QUERY', q.message, req)
    const query = q.params
    if (query.LrnDevEui === undefined || !isBareEui(query.LrnDevEui)) return this.reject(400, 'LB_ERR_THINGPARK_QUERY', 'the query has no valid LrnDevEui', req)
    if (query.AS_ID !== req.connection.asId) return this.reject(401, 'LB_ERR_THINGPARK_TOKEN', query.AS_ID === undefined ? 'the query has no AS_ID' : 'AS_ID is not this connection\'s', req, query.AS_ID)
    if (query.Token === undefined) return this.reject(401, 'LB_ERR_THINGPARK_TOKEN', 'the query has no Token', req)
    if (!TOKEN.test(query.Token)) return this.reject(401, 'LB_ERR_THINGPARK_TOKEN', 'Token is not 64 hex digits', req)
    // Always a window: with maxTimeDeviation 0 the replay horizon, so that replay memory is bounded.
    const windowS = req.maxTimeDeviation > 0 ? req.maxTimeDeviation : this.deps.replayHorizonSeconds
    const timeMs = Date.parse(query.Time ?? '')
    if (Number.isNaN(timeMs)) return this.reject(401, 'LB_ERR_THINGPARK_TIME', query.Time === undefined ? 'the query has no Time' : 'the query Time is not a time', req)
    const skew = Math.abs(this.deps.now().getTime() - timeMs) / 1000
    if (skew > windowS) {
      const allowed = req.maxTimeDeviation > 0 ? `maxTimeDeviation ${windowS} s` : `replayHorizonSeconds ${windowS} s, as maxTimeDeviation is 0`
      return this.reject(401, 'LB_ERR_THINGPARK_TIME', `the query Time is ${Math.round(skew)} s from our clock (allowed: ${allowed})`, req)
    }
    return { query: { ...query, Token: query.Token.toLowerCase() }, timeMs, windowMs: windowS * 1000 }
  }

  /**
   * Answers within `answerTimeoutMs`: a report that could not be stored by then (the store went
   * away mid-request) is answered 503 — not acknowledged — even if it is published afterwards.
   * `head` is the precheck's result when it ran before the body was read.
   */
  async handle (req: TpRequest, head?: TpHeadOk): Promise<TpAnswer> {
    const pre = head ?? this.precheck(req)
    if ('status' in pre) return pre
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<TpAnswer>(resolve => {
      timer = setTimeout(() => {
        this.deps.log.warn({ code: 'LB_ERR_REDIS', connection: req.connection.name }, 'ThingPark report not stored in time; answered 503')
        resolve({ status: 503, body: { error: 'LB_ERR_REDIS', message: 'the report could not be stored in time; not acknowledged' } })
      }, req.answerTimeoutMs)
    })
    try {
      return await Promise.race([this.check(req, pre), late])
    } finally {
      clearTimeout(timer)
    }
  }

  private replayRefusal (verdict: 'seen' | 'too-old', req: TpRequest): TpAnswer {
    return verdict === 'seen'
      ? this.refuse(401, 'LB_ERR_THINGPARK_REPLAY', 'this token was already used', req)
      : this.reject(401, 'LB_ERR_THINGPARK_TIME', 'the query Time is older than the replay memory reaches (thingpark.replayMemoryMaxEntries)', req)
  }

  private async check (req: TpRequest, { query, timeMs, windowMs }: TpHeadOk): Promise<TpAnswer> {
    // Before anything that needs the store (the replay memory is in Redis in a cluster).
    if (!this.deps.ready()) {
      // ThingPark never retries and wants a fast answer: say at once that this one is not kept.
      this.deps.log.warn({ code: 'LB_ERR_REDIS', connection: req.connection.name }, 'ThingPark report refused: the store is unreachable')
      return { status: 503, body: { error: 'LB_ERR_REDIS', message: 'the store is unreachable; the report is not kept' } }
    }
    // A replayed token is refused before its body is parsed.
    const seen = await this.deps.replays.check(query.Token, timeMs)
    if (seen !== 'unknown') return this.replayRefusal(seen, req)

    const parsed = parseReport(req.body, contentKind(req.contentType)!)
    if (!parsed.ok) return this.reject(400, 'LB_ERR_THINGPARK_BODY', parsed.message, req)
    const { root, report } = parsed
    if (!root.startsWith('DevEUI_')) return this.reject(400, 'LB_ERR_THINGPARK_BODY', `"${root.slice(0, 100)}" is not a ThingPark report`, req)
    if (!verifyReportToken(root, report, query, req.connection.asKey)) return this.reject(401, 'LB_ERR_THINGPARK_TOKEN', 'Token does not match', req)
    // Remembered until its Time leaves the window (plus the cluster's clock slack): a replay is then refused as too old.
    const first = await this.deps.replays.remember(query.Token, timeMs, timeMs + windowMs + CLOCK_SLACK_MS)
    if (first !== 'unknown') return this.replayRefusal(first, req)

    const devEui = typeof report.DevEUI === 'string' ? report.DevEUI : String(report.DevEUI ?? '')
    if (devEui.toLowerCase() !== query.LrnDevEui!.toLowerCase()) return this.refuse(400, 'LB_ERR_THINGPARK_QUERY', 'LrnDevEui and the body\'s DevEUI differ', req)

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

  /** To the pipeline: published once, whatever the number of copies. An uplink or join also offers its route. */
  private async publishOnce (r: NormalizedEvent, connection?: string): Promise<TpAnswer> {
    const { kind, event } = r
    await this.deps.events.accept({
      ...r,
      network: NETWORK,
      // Frames are counted by the LRR ThingPark names first (its best reception).
      ...(kind === 'up' || kind === 'join' ? { gateway: event.gateways?.[0]?.id } : {}),
      ...(kind === 'up' ? { receivedAtMs: receiveTime(event) } : {}),
      ...(connection !== undefined ? { route: { adapter: THINGPARK, route: { connection } satisfies ThingParkRoute, summary: { network: NETWORK, connection }, snr: undefined, rssi: undefined } } : {}),
    })
    return { status: 204 }
  }

  private invalid (message: string, req: TpRequest): TpAnswer {
    return this.refuse(400, 'LB_ERR_THINGPARK_PAYLOAD', message, req)
  }

  private async dispatch (root: KnownReport, f: FieldReader, req: TpRequest, query: Record<string, string>, raw: unknown): Promise<TpAnswer> {
    const ctx = this.context(req, query, raw)
    switch (root) {
      case 'DevEUI_uplink': {
        if (isJoinRequest(f)) {
          const n = normalizeJoin(f, ctx)
          return n.ok ? this.publishOnce({ kind: 'join', event: n.event }, req.connection.name) : this.invalid(n.message, req)
        }
        const n = normalizeUplink(f, ctx)
        return n.ok ? this.publishOnce({ kind: 'up', event: n.event }, req.connection.name) : this.invalid(n.message, req)
      }
      case 'DevEUI_notification': {
        const n = normalizeNotification(f, ctx)
        return n.ok ? this.publishOnce({ kind: 'status', event: n.event }) : this.invalid(n.message, req)
      }
      case 'DevEUI_location': {
        const n = normalizeLocation(f, ctx)
        return n.ok ? this.publishOnce({ kind: 'location', event: n.event }) : this.invalid(n.message, req)
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
    if (!await this.deps.events.firstSighting(`sent:${root}:${id}:${fCntDn ?? ''}`)) {
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
    const report = (kind: Parameters<EventSink['outcome']>[0], o: Parameters<EventSink['outcome']>[1], network: string): Promise<void> => this.deps.events.outcome(kind, o, network)
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
