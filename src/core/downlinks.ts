/**
 * Routes `…/down` and `…/clear` commands to the network server that last carried the device
 * (PRODUCT.md §3). Every request ends in exactly one `down/queued` or `down/failed` with its id —
 * nothing is dropped silently.
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { DownlinkFailure, DownlinkOutcome, DownlinkRequest, Network } from '../model/events.js'
import { newId } from '../model/ids.js'
import type { EventBus } from './bus.js'
import type { RouteEntry, RouteTable } from './routes.js'
import { deviceFilter, parseDeviceTopic } from '../model/topics.js'
import { isNormalizedEui } from '../model/eui.js'
import type { OutcomeKind, OutcomeReporter } from './downlink-outcomes.js'
import { parseDownlinkRequests } from './downlink-request.js'

export interface DownlinkTarget { app: string, devEui: string, entry: RouteEntry }

export type SendResult =
  | { status: 'queued', network?: Network }
  /** The transport reports the outcome later (HTTP Conduits fetch their downlinks). */
  | { status: 'deferred' }
  | { status: 'failed', reason: DownlinkFailure, detail: string, network?: Network }

export type { OutcomeReporter } from './downlink-outcomes.js'

export interface DownlinkTransport {
  send (target: DownlinkTarget, request: DownlinkRequest): Promise<SendResult>
  clear (target: DownlinkTarget): Promise<SendResult>
}

export interface DownlinkRouterDeps {
  bus: EventBus
  routes: RouteTable
  log: Logger
  metrics: Metrics
  transports: Partial<Record<RouteEntry['route']['network'], DownlinkTransport>>
  /** Publishes each request's outcome (shared with the transports that finish later). */
  report: OutcomeReporter
}


export class DownlinkRouter {
  private unsubscribe: Array<() => Promise<void>> = []

  constructor (private readonly deps: DownlinkRouterDeps) {}

  async start (): Promise<void> {
    const root = this.deps.bus.root
    // In a cluster every instance receives a command; the instance where it was published routes it.
    this.unsubscribe.push(await this.deps.bus.subscribe(deviceFilter(root, 'down'), (topic, payload, local) => { if (local) void this.onCommand(topic, payload, 'down') }))
    this.unsubscribe.push(await this.deps.bus.subscribe(deviceFilter(root, 'clear'), (topic, payload, local) => { if (local) void this.onCommand(topic, payload, 'clear') }))
  }

  async stop (): Promise<void> {
    await Promise.all(this.unsubscribe.map(u => u()))
    this.unsubscribe = []
  }

  private async outcome (kind: OutcomeKind, o: Omit<DownlinkOutcome, 'receivedAt'>, networkType: string): Promise<void> {
    await this.deps.report(kind, o, networkType)
  }

  private async onCommand (topic: string, payload: Buffer, command: 'down' | 'clear'): Promise<void> {
    const { app, devEui } = parseDeviceTopic(this.deps.bus.root, topic)!
    try {
      if (!isNormalizedEui(devEui)) {
        // No outcome topic can be named for a device that is not one.
        this.deps.metrics.downlinks.inc({ network: 'none', result: 'failed', reason: 'invalid' })
        this.deps.log.warn({ code: 'LB_ERR_DOWNLINK_INVALID', topic }, 'downlink for a malformed DevEUI (16 lower-case hex digits expected)')
        return
      }
      if (command === 'clear') await this.clear(app, devEui, payload)
      else await this.down(app, devEui, payload)
    } catch (err) {
      this.deps.log.error({ err, topic }, 'downlink routing failed')
    }
  }

  /** The route, if the device is known and belongs to the application the command names. */
  private async target (app: string, devEui: string): Promise<DownlinkTarget | undefined> {
    const entry = await this.deps.routes.get(devEui)
    // A consumer of one application must not reach another application's devices: same answer as unknown.
    if (entry === undefined || entry.app !== app) return undefined
    return { app, devEui, entry }
  }

  private async down (app: string, devEui: string, payload: Buffer): Promise<void> {
    for (const parsed of parseDownlinkRequests(payload, devEui)) {
      if (!parsed.ok) {
        this.deps.log.warn({ code: 'LB_ERR_DOWNLINK_INVALID', app, devEui, id: parsed.id, detail: parsed.detail }, 'invalid downlink request')
        await this.outcome('down/failed', { id: parsed.id, app, devEui, command: 'down', reason: 'invalid', detail: parsed.detail }, 'none')
        continue
      }
      await this.finish(app, devEui, parsed.request.id, 'down', t => this.transport(t)?.send(t, parsed.request))
    }
  }

  private async clear (app: string, devEui: string, payload: Buffer): Promise<void> {
    let id = newId()
    try {
      const body = JSON.parse(payload.toString('utf8')) as { id?: unknown }
      if (typeof body?.id === 'string' && body.id !== '') id = body.id
    } catch { /* `{}` is the documented body; anything else still clears */ }
    await this.finish(app, devEui, id, 'clear', t => this.transport(t)?.clear(t))
  }

  private transport (t: DownlinkTarget): DownlinkTransport | undefined {
    return this.deps.transports[t.entry.route.network]
  }

  private async finish (app: string, devEui: string, id: string, command: 'down' | 'clear',
    send: (t: DownlinkTarget) => Promise<SendResult> | undefined): Promise<void> {
    const t = await this.target(app, devEui)
    if (t === undefined) {
      await this.outcome('down/failed', { id, app, devEui, command, reason: 'no-route', detail: 'no uplink or join seen from this device in this application' }, 'none')
      return
    }
    const network = t.entry.route.network
    const pending = send(t)
    const result: SendResult = pending === undefined
      ? { status: 'failed', reason: 'unsupported', detail: `no downlink transport for ${network}` }
      : await pending
    if (result.status === 'deferred') return
    const base = { id, app, devEui, command, ...(result.network !== undefined ? { network: result.network } : {}) }
    if (result.status === 'queued') await this.outcome('down/queued', base, network)
    else await this.outcome('down/failed', { ...base, reason: result.reason, detail: result.detail }, network)
  }
}
