/**
 * Routes downlink requests and clears to the adapter that last carried the device (PRODUCT.md §3).
 * Two callers: applications, whose `…/down` and `…/clear` publications it takes before the broker
 * acknowledges them (an ingest gate), and the rules, which hand their requests over directly.
 * Every request ends in exactly one `down/queued` or `down/failed` with its id — nothing is
 * dropped silently.
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { AnyDownlinkRequest, DownlinkRequest } from '../model/events.js'
import { newId } from '../model/ids.js'
import type { RouteTable } from './routes.js'
import { commandOf } from '../model/topics.js'
import { isNormalizedEui } from '../model/eui.js'
import type { IngestGate } from '../broker/ingest-gates.js'
import type { DownlinkEncoder, DownlinkTarget, EventSink, NetworkAdapter, SendResult } from './adapter.js'
import { parseDownlinkRequests } from './downlink-request.js'
import type { DownlinkLedger } from './downlink-ledger.js'
import { downlinkLimit, type Region } from './regional-limits.js'
import type { RouteEntry } from './routes.js'

export interface DownlinkRouterDeps {
  routes: RouteTable
  /** Told of every request before it is routed (the pending list, acknowledgements). */
  ledger?: DownlinkLedger
  adapters: readonly NetworkAdapter[]
  /** Publishes each request's outcome (shared with the adapters that finish later). */
  events: EventSink
  log: Logger
  metrics: Metrics
  root: string
  /** Publishes a rule's request on its `…/down` topic, for observers. */
  echo?: (topic: string, body: Record<string, unknown>) => Promise<void>
  /** Shows in-process observers an application's command taken from MQTT (the console's device history). */
  taken?: (topic: string, payload: Buffer) => void
  /** Encodes requests that carry `object` (the device's codec); without it they fail `encode-failed`. */
  encode?: DownlinkEncoder
  /** The LoRaWAN region of an application's devices, for the size check; undefined: not checked. */
  region?: (app: string) => Region | undefined
}

export class DownlinkRouter {
  private readonly adapters: ReadonlyMap<string, NetworkAdapter>

  constructor (private readonly deps: DownlinkRouterDeps) {
    this.adapters = new Map(deps.adapters.map(a => [a.name, a]))
  }

  /** Applications' commands, taken on the instance where they are published (in a cluster, one instance routes each). */
  readonly gate: IngestGate = {
    owner: 'downlink-router',
    claims: topic => topic.startsWith(this.deps.root + '/') && (topic.endsWith('/down') || topic.endsWith('/clear')) && commandOf(this.deps.root, topic) !== undefined,
    handle: packet => {
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      this.deps.taken?.(packet.topic, payload)
      // Acknowledged at once: the request's fate is told by its outcome, not by PUBACK.
      this.command(packet.topic, payload).catch((err: unknown) => { this.deps.log.error({ err, topic: packet.topic }, 'downlink routing failed') })
      return undefined
    },
  }

  async command (topic: string, payload: Buffer): Promise<void> {
    const { app, devEui, command } = commandOf(this.deps.root, topic)!
    if (!isNormalizedEui(devEui)) {
      // No outcome topic can be named for a device that is not one.
      this.deps.metrics.downlinks.inc({ network: 'none', result: 'failed', reason: 'invalid' })
      this.deps.log.warn({ code: 'LB_ERR_DOWNLINK_INVALID', topic }, 'downlink for a malformed DevEUI (16 lower-case hex digits expected)')
      return
    }
    if (command === 'clear') await this.clear(app, devEui, payload)
    else await this.down(app, devEui, payload)
  }

  /** A rule's request, already validated. */
  async fromRule (app: string, devEui: string, request: AnyDownlinkRequest, body: Record<string, unknown>): Promise<void> {
    await this.deps.echo?.(`${this.deps.root}/${app}/devices/${devEui}/down`, body)
    await this.request(app, devEui, request)
  }

  /** One validated request; one with `object` is encoded once its route (and so its network) is known. */
  async request (app: string, devEui: string, request: AnyDownlinkRequest): Promise<void> {
    if (request.expiresAt !== undefined && request.expiresAt <= Date.now()) {
      await this.deps.events.outcome('down/failed', { id: request.id, app, devEui, command: 'down', reason: 'expired', detail: `expiresAt ${new Date(request.expiresAt).toISOString()} is already past` }, 'none')
      return
    }
    this.deps.ledger?.requested(app, devEui, request)
    // Replace: once the network took the flush, confirmed downlinks already with it went with its queue.
    const sendReplacing = async (a: NetworkAdapter, t: DownlinkTarget, r: DownlinkRequest): Promise<SendResult> => {
      const sent = await a.send(t, r)
      if (r.flush && sent.status !== 'failed') await this.deps.ledger?.replaced(devEui, r.id)
      return sent
    }
    if (!('object' in request)) {
      return this.finish(app, devEui, request.id, 'down', async (a, t, entry) => {
        const tooLarge = this.tooLarge(app, entry, request.bytes.length)
        if (tooLarge !== undefined) return tooLarge
        return sendReplacing(a, t, request)
      })
    }
    return this.finish(app, devEui, request.id, 'down', async (a, t, entry) => {
      const encoded = this.deps.encode === undefined
        ? { ok: false as const, detail: 'no codecs are loaded', codecErrors: [] }
        : await this.deps.encode({ app, devEui, network: a.network }, request.object, request.fPort)
      if (!encoded.ok) return { status: 'failed', reason: 'encode-failed', detail: encoded.detail, codecErrors: encoded.codecErrors }
      this.deps.ledger?.encoded(devEui, request.id, encoded.fPort, encoded.bytes.length)
      const tooLarge = this.tooLarge(app, entry, encoded.bytes.length)
      if (tooLarge !== undefined) return tooLarge
      const payload: DownlinkRequest = { id: request.id, fPort: encoded.fPort, bytes: encoded.bytes, confirmed: request.confirmed, flush: request.flush, ...(request.expiresAt !== undefined ? { expiresAt: request.expiresAt } : {}) }
      return sendReplacing(a, t, payload)
    })
  }

  /**
   * Refused before it is sent: larger than the region allows at the data rate of the device's
   * latest uplink (regional-limits.ts). A network server would queue it and drop it, silently.
   */
  private tooLarge (app: string, entry: RouteEntry, size: number): SendResult | undefined {
    const region = this.deps.region?.(app)
    if (region === undefined || entry.radio === undefined) return undefined
    const limit = downlinkLimit(region, entry.radio)
    if (limit === undefined || size <= limit.maxPayload) return undefined
    const bw = entry.radio.bandwidthKHz !== undefined ? `/${entry.radio.bandwidthKHz} kHz` : ''
    return {
      status: 'failed',
      reason: 'too-large',
      detail: `${size} bytes; at most ${limit.maxPayload} in ${region} at DR${limit.downlinkDataRate}, the RX1 data rate after the device's latest uplink (DR${limit.uplinkDataRate}, SF${entry.radio.spreadingFactor ?? '?'}${bw}; LoRaWAN RP002-1.0.4)`,
    }
  }

  private async down (app: string, devEui: string, payload: Buffer): Promise<void> {
    for (const parsed of parseDownlinkRequests(payload, devEui)) {
      if (!parsed.ok) {
        this.deps.log.warn({ code: 'LB_ERR_DOWNLINK_INVALID', app, devEui, id: parsed.id, detail: parsed.detail }, 'invalid downlink request')
        await this.deps.events.outcome('down/failed', { id: parsed.id, app, devEui, command: 'down', reason: 'invalid', detail: parsed.detail }, 'none')
        continue
      }
      await this.request(app, devEui, parsed.request)
    }
  }

  private async clear (app: string, devEui: string, payload: Buffer): Promise<void> {
    let id = newId()
    try {
      const body = JSON.parse(payload.toString('utf8')) as { id?: unknown }
      if (typeof body?.id === 'string' && body.id !== '') id = body.id
    } catch { /* `{}` is the documented body; anything else still clears */ }
    await this.finish(app, devEui, id, 'clear', (a, t) => a.clear(t))
  }

  private async finish (app: string, devEui: string, id: string, command: 'down' | 'clear',
    send: (adapter: NetworkAdapter, t: DownlinkTarget, entry: RouteEntry) => Promise<SendResult>): Promise<void> {
    const entry = await this.deps.routes.get(devEui)
    // A consumer of one application must not reach another application's devices: same answer as unknown.
    if (entry === undefined || entry.app !== app) {
      await this.deps.events.outcome('down/failed', { id, app, devEui, command, reason: 'no-route', detail: 'no uplink or join seen from this device in this application' }, 'none')
      return
    }
    const adapter = this.adapters.get(entry.adapter)
    const result: SendResult = adapter === undefined
      ? { status: 'failed', reason: 'unsupported', detail: `no downlink transport for ${entry.adapter}` }
      : await send(adapter, { app, devEui, route: entry.route }, entry)
    if (result.status === 'deferred') {
      this.deps.ledger?.held(devEui, id)
      return
    }
    const network = adapter?.network ?? entry.summary.network
    const base = { id, app, devEui, command, ...(result.network !== undefined ? { network: result.network } : {}) }
    if (result.status === 'queued') await this.deps.events.outcome('down/queued', result.caveats !== undefined && result.caveats.length > 0 ? { ...base, caveats: result.caveats } : base, network)
    else await this.deps.events.outcome('down/failed', { ...base, reason: result.reason, detail: result.detail, ...(result.codecErrors !== undefined ? { codecErrors: result.codecErrors } : {}) }, network)
  }
}
