/**
 * The middle of the daemon (docs/architecture.md): every network adapter hands its receptions
 * here, and once for all of them the pipeline offers the route, deduplicates, decodes, publishes
 * the normalized event, runs the rules, and routes and reports downlinks. Events stay objects on
 * this path: serialized once, when published; the rules get the object itself.
 *
 * It builds the adapters (from one context object) and the downlink router, so that nothing is
 * bound after construction.
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { DownlinkOutcome, DownlinkRequest, EventKind } from '../model/events.js'
import type { EventBus } from './bus.js'
import type { Deduplicator } from './dedup.js'
import type { RouteEntry, RouteTable } from './routes.js'
import type { DownlinkEncoder, DownlinkHandler, EventSink, NetworkAdapter, OutcomeKind, Reception } from './adapter.js'
import { DownlinkRouter } from './downlinks.js'
import { DownlinkLedger } from './downlink-ledger.js'
import type { Region } from './regional-limits.js'

/** What the pipeline needs of the rules: decoders before publication, rules after. */
export interface RuleRunner {
  /** Sets `decoded` on the uplink; never throws. */
  decode (event: Record<string, unknown>): Promise<unknown>
  /** Runs the rules on an event off its path; their downlinks go to `downlink`. Never throws. */
  react (kind: EventKind, event: Record<string, unknown>, downlink: DownlinkHandler): void
  /** Encodes a downlink request's `object` with the device's codec. Never throws. */
  encode: DownlinkEncoder
}


export interface PipelineDeps<C> {
  bus: EventBus
  dedup: Deduplicator
  routes: RouteTable
  rules: RuleRunner
  log: Logger
  metrics: Metrics
  /** The adapters, built with the context plus this pipeline as their event sink. */
  adapters: (context: C & { events: EventSink }) => NetworkAdapter[]
  context: C
  /** Confirmed downlinks (docs/downlinks.md): uplinks without an ACK that conclude `not-acknowledged`, per network type, and when `unknown`. */
  acks: { uplinksWithoutAck: (network: string) => number, timeoutMs: number }
  /** The LoRaWAN region of an application's devices (downlink size check). */
  regions?: (app: string) => Region | undefined
}

export class Pipeline<C> implements EventSink {
  readonly adapters: readonly NetworkAdapter[]
  readonly router: DownlinkRouter
  readonly ledger: DownlinkLedger
  private readonly deps: PipelineDeps<C>
  /** Rules' downlinks go straight to the router (no round trip through the broker). */
  private readonly ruleDownlink: DownlinkHandler

  constructor (deps: PipelineDeps<C>) {
    this.deps = deps
    this.adapters = deps.adapters({ ...deps.context, events: this })
    this.ledger = new DownlinkLedger({
      uplinksWithoutAck: deps.acks.uplinksWithoutAck,
      ackTimeoutMs: deps.acks.timeoutMs,
      outcome: (kind, o, network) => this.outcome(kind, o, network),
      // Retained: what is pending is a state, for whoever subscribes later (the console too).
      publishPending: (app, devEui, body) => deps.bus.publish(deps.bus.deviceTopic(app, devEui, 'down/pending'), body, { qos: 1, retain: true }),
    })
    this.router = new DownlinkRouter({
      ledger: this.ledger,
      routes: deps.routes, adapters: this.adapters, events: this, log: deps.log, metrics: deps.metrics, root: deps.bus.root,
      echo: (topic, body) => deps.bus.publishIfHeard(topic, body, { qos: 1 }),
      taken: (topic, payload) => { deps.bus.note(topic, payload) },
      encode: (device, object, fPort) => deps.rules.encode(device, object, fPort),
      ...(deps.regions !== undefined ? { region: deps.regions } : {}),
    })
    this.ruleDownlink = (app, devEui, request, body) => this.router.fromRule(app, devEui, request, body)
  }

  async accept (r: Reception): Promise<'published' | 'duplicate'> {
    const { dedup, metrics, log, bus } = this.deps
    const { kind, event } = r
    if (r.route !== undefined) {
      const { adapter, route, summary, snr, rssi } = r.route
      const entry: RouteEntry = { adapter, route, summary, app: event.app, frame: event.id, snr, rssi, at: Date.now() }
      // The data rate, for the downlink size check (assigned, not spread: this runs per uplink).
      const radio = 'radio' in event ? event.radio : undefined
      if (radio?.spreadingFactor !== undefined) entry.radio = radio.bandwidthKHz !== undefined ? { spreadingFactor: radio.spreadingFactor, bandwidthKHz: radio.bandwidthKHz } : { spreadingFactor: radio.spreadingFactor }
      await this.deps.routes.offer(event.devEui, entry)
    }
    const key = r.dedupKey ?? `${kind}:${event.id}`
    if (!await dedup.firstSighting(key, r.receivedAtMs)) {
      log.debug({ kind, id: event.id, devEui: event.devEui, time: 'time' in event ? event.time : undefined, gateway: r.gateway }, 'duplicate of a frame already published; not published again')
      metrics.duplicates.inc({ network: r.network, kind })
      if (kind === 'up' || kind === 'join') metrics.gatewayUplinks.inc({ network: r.network, gateway: r.gateway ?? 'unknown', result: 'duplicate' })
      return 'duplicate'
    }
    const body = event as unknown as Record<string, unknown>
    try {
      if (kind === 'up') await this.deps.rules.decode(body)
      await bus.publishIfHeard(bus.deviceTopic(event.app, event.devEui, kind), event)
    } catch (err) {
      // Not kept: a redelivery must not be taken for a duplicate.
      await dedup.forget(key)
      throw err
    }
    metrics.eventsPublished.inc({ network: r.network, kind })
    if (kind === 'up' || kind === 'join') metrics.gatewayUplinks.inc({ network: r.network, gateway: r.gateway ?? 'unknown', result: 'published' })
    // After the publication, off its path: rules never delay the event they react to.
    this.deps.rules.react(kind, body, this.ruleDownlink)
    if (kind === 'up') await this.ledger.uplink(event as { id: string, devEui: string, fCnt?: number, ack?: true })
    return 'published'
  }

  close (): void { this.ledger.close() }

  held (app: string, devEui: string, request: DownlinkRequest): void {
    this.ledger.requested(app, devEui, request, true)
  }

  firstSighting (key: string): Promise<boolean> {
    return this.deps.dedup.firstSighting(key)
  }

  async outcome (kind: OutcomeKind, o: Omit<DownlinkOutcome, 'receivedAt'>, networkType: string): Promise<void> {
    const { bus, metrics, log } = this.deps
    const event: DownlinkOutcome = { ...o, receivedAt: new Date().toISOString() }
    this.ledger.observe(kind, o, networkType)
    metrics.downlinks.inc({ network: networkType, result: kind.slice(5), reason: o.reason ?? '' })
    if (kind === 'down/failed') log.info({ id: o.id, app: o.app, devEui: o.devEui, reason: o.reason, detail: o.detail }, 'downlink failed')
    await bus.publishIfHeard(bus.deviceTopic(o.app, o.devEui, kind), event)
    this.deps.rules.react(kind, event as unknown as Record<string, unknown>, this.ruleDownlink)
  }
}
