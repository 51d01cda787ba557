/**
 * What lorabridge knows of each device's downlinks between the request and its last outcome
 * (docs/downlinks.md): requests it still holds (an HTTP Conduit has not fetched them, ThingPark
 * retries), and confirmed downlinks handed to the network that wait for the device's ACK.
 *
 * It sees every outcome (the pipeline's one funnel) and every uplink, and from the uplinks' ACK
 * bits concludes a confirmed downlink: `down/acked`, or `down/failed` `not-acknowledged` once the
 * device sent more uplinks without an ACK than the network's retransmissions allow, or `unknown`
 * when nothing could be concluded in time. The list is published retained on
 * `{root}/{app}/devices/{devEui}/down/pending` when it changes (at most every 100 ms per device;
 * nothing for a request that came and went between two publications).
 */
import type { AnyDownlinkRequest, DownlinkOutcome } from '../model/events.js'
import type { OutcomeKind } from './adapter.js'

export type PendingState = 'held' | 'awaiting-ack'

export interface PendingEntry {
  id: string
  fPort: number | undefined
  /** Payload bytes (undefined until a codec encoded an `object`). */
  size: number | undefined
  confirmed: boolean
  expiresAt: string | undefined
  /** held: lorabridge holds it (routing, an HTTP Conduit's queue, ThingPark retries); awaiting-ack: handed to the network, confirmed, no ACK yet. */
  state: PendingState
  since: string
}

interface Entry {
  id: string
  app: string
  devEui: string
  fPort: number | undefined
  size: number | undefined
  confirmed: boolean
  expiresAt: number | undefined
  state: PendingState
  since: number
  network: string | undefined
  /** The route's network, as its outcomes name it. */
  route: DownlinkOutcome['network']
  /** Uplinks without an ACK since it started waiting for one (counted for the oldest only). */
  uplinks: number
  /**
   * Listed on the pending topic: once an adapter holds it, or it waits for an ACK. A request on
   * its way through the router (microseconds, for a Conduit over MQTT) is not: listing it would
   * publish the retained list twice per downlink.
   */
  visible: boolean
}

export interface LedgerOptions {
  /** Uplinks without an ACK after which a confirmed downlink is `not-acknowledged`, per network type. */
  uplinksWithoutAck: (network: string) => number
  /** After this long awaiting an ACK without a conclusion: `unknown`. */
  ackTimeoutMs: number
  outcome: (kind: OutcomeKind, o: Omit<DownlinkOutcome, 'receivedAt'>, network: string) => Promise<void>
  publishPending: (app: string, devEui: string, body: { app: string, devEui: string, pending: PendingEntry[], updatedAt: string }) => Promise<void>
  now?: () => number
}

const PUBLISH_DELAY_MS = 100
const SWEEP_MS = 10_000

export class DownlinkLedger {
  private readonly devices = new Map<string, Entry[]>()
  /** What was last published per device (its JSON, without the time). */
  private readonly published = new Map<string, string>()
  private readonly dirty = new Map<string, NodeJS.Timeout>()
  private readonly sweeper: NodeJS.Timeout

  constructor (private readonly opts: LedgerOptions) {
    // A quarter of the timeout: an `unknown` comes at most a quarter late.
    this.sweeper = setInterval(() => { void this.sweep() }, Math.max(250, Math.min(SWEEP_MS, opts.ackTimeoutMs / 4)))
    this.sweeper.unref()
  }

  private now (): number { return this.opts.now?.() ?? Date.now() }

  /** A request the router is about to route (`visible`: an adapter already holds it, after a restart). */
  requested (app: string, devEui: string, req: AnyDownlinkRequest, visible = false): void {
    const list = this.devices.get(devEui) ?? []
    list.push({
      id: req.id, app, devEui,
      fPort: req.fPort,
      size: 'bytes' in req ? req.bytes.length : undefined,
      confirmed: req.confirmed,
      expiresAt: req.expiresAt,
      state: 'held',
      since: this.now(),
      network: undefined,
      route: undefined,
      uplinks: 0,
      visible,
    })
    this.devices.set(devEui, list)
    if (visible) this.changed(devEui)
  }

  /** The adapter holds it (an HTTP Conduit's queue, ThingPark retries): listed as pending. */
  held (devEui: string, id: string): void {
    const e = this.devices.get(devEui)?.find(x => x.id === id)
    if (e === undefined || e.visible) return
    e.visible = true
    this.changed(devEui)
  }

  /** The request now has its payload (a codec encoded its object). */
  encoded (devEui: string, id: string, fPort: number, size: number): void {
    const e = this.devices.get(devEui)?.find(x => x.id === id)
    if (e === undefined) return
    e.fPort = fPort
    e.size = size
    if (e.visible) this.changed(devEui)
  }

  /** Every outcome, whoever published it. */
  observe (kind: OutcomeKind, o: Omit<DownlinkOutcome, 'receivedAt'>, network: string): void {
    if (o.command === 'clear') return
    const list = this.devices.get(o.devEui)
    const e = list?.find(x => x.id === o.id)
    if (list === undefined || e === undefined) return
    const wasVisible = e.visible
    if (kind === 'down/queued' && e.confirmed) {
      // Handed to the network: from now on the device's uplinks tell whether it arrived.
      if (e.state === 'held') {
        e.state = 'awaiting-ack'
        e.since = this.now()
        e.network = network
        e.route = o.network
        e.uplinks = 0
      }
      e.visible = true
    } else if (kind === 'down/sent' && e.confirmed) {
      // ThingPark transmitted it: the device's next uplink should carry the ACK.
      e.state = 'awaiting-ack'
      e.network = network
      e.route = o.network ?? e.route
      e.uplinks = 0
    } else if (kind === 'down/queued' || kind === 'down/acked' || kind === 'down/failed') {
      list.splice(list.indexOf(e), 1)
      if (list.length === 0) this.devices.delete(o.devEui)
    }
    if (wasVisible || e.visible) this.changed(o.devEui)
  }

  /**
   * An uplink: its ACK bit acknowledges the oldest confirmed downlink awaiting one (LoRaWAN
   * acknowledges the last confirmed downlink received, and a network server sends them in order).
   */
  async uplink (event: { id: string, devEui: string, fCnt?: number, ack?: true }): Promise<void> {
    const waiting = this.devices.get(event.devEui)?.filter(e => e.state === 'awaiting-ack')
    const oldest = waiting?.[0]
    if (oldest === undefined) return
    const base = { id: oldest.id, app: oldest.app, devEui: oldest.devEui, command: 'down' as const, ...(oldest.route !== undefined ? { network: oldest.route } : {}) }
    if (event.ack === true) {
      await this.opts.outcome('down/acked', { ...base, ackedBy: { id: event.id, ...(event.fCnt !== undefined ? { fCnt: event.fCnt } : {}) } }, oldest.network ?? 'none')
      return
    }
    oldest.uplinks++
    const limit = this.opts.uplinksWithoutAck(oldest.network ?? 'none')
    if (oldest.uplinks >= limit) {
      await this.opts.outcome('down/failed', { ...base, reason: 'not-acknowledged', detail: `${oldest.uplinks} uplinks of the device since it was ${oldest.network === 'thingpark' ? 'sent' : 'handed to the Conduit'}, none with the ACK bit` }, oldest.network ?? 'none')
    }
  }

  /**
   * A request with `replace` flushes the network server's queue: confirmed downlinks handed over
   * before it will never be concluded. (What lorabridge holds itself, the adapters flush.)
   */
  async replaced (devEui: string, byId: string): Promise<void> {
    for (const e of [...this.devices.get(devEui) ?? []]) {
      if (e.state !== 'awaiting-ack' || e.id === byId) continue
      await this.opts.outcome('down/failed', { id: e.id, app: e.app, devEui, command: 'down', reason: 'replaced', detail: `flushed by request ${byId} (replace) before the device acknowledged it`, ...(e.route !== undefined ? { network: e.route } : {}) }, e.network ?? 'none')
    }
  }

  /** The device's list, as published. */
  pending (devEui: string): PendingEntry[] {
    return (this.devices.get(devEui) ?? []).filter(e => e.visible).map(e => ({
      id: e.id,
      fPort: e.fPort,
      size: e.size,
      confirmed: e.confirmed,
      expiresAt: e.expiresAt !== undefined ? new Date(e.expiresAt).toISOString() : undefined,
      state: e.state,
      since: new Date(e.since).toISOString(),
    }))
  }

  private async sweep (): Promise<void> {
    const cutoff = this.now() - this.opts.ackTimeoutMs
    for (const list of [...this.devices.values()]) {
      for (const e of [...list]) {
        if (e.state !== 'awaiting-ack' || e.since > cutoff) continue
        await this.opts.outcome('down/failed', {
          id: e.id, app: e.app, devEui: e.devEui, command: 'down', reason: 'unknown',
          detail: `no ACK and not enough uplinks to conclude within ${Math.round(this.opts.ackTimeoutMs / 1000)} s (${e.uplinks} uplinks without ACK)`,
          ...(e.route !== undefined ? { network: e.route } : {}),
        }, e.network ?? 'none').catch(() => { /* published again at the next sweep */ })
      }
    }
  }

  private changed (devEui: string): void {
    if (this.dirty.has(devEui)) return
    const app = this.devices.get(devEui)?.[0]?.app
    this.dirty.set(devEui, setTimeout(() => {
      this.dirty.delete(devEui)
      void this.publish(devEui, app)
    }, PUBLISH_DELAY_MS))
  }

  private lastApp = new Map<string, string>()

  private async publish (devEui: string, appHint: string | undefined): Promise<void> {
    const pending = this.pending(devEui)
    const app = this.devices.get(devEui)?.[0]?.app ?? appHint ?? this.lastApp.get(devEui)
    if (app === undefined) return
    const json = JSON.stringify(pending)
    const last = this.published.get(devEui)
    // Nothing new, or a device that never had anything published and has nothing now.
    if (json === last || (last === undefined && pending.length === 0)) return
    this.published.set(devEui, json)
    this.lastApp.set(devEui, app)
    if (pending.length === 0) {
      // Empty is published once, retained, then forgotten here.
      this.published.delete(devEui)
      this.lastApp.delete(devEui)
    }
    await this.opts.publishPending(app, devEui, { app, devEui, pending, updatedAt: new Date(this.now()).toISOString() }).catch(() => {})
  }

  close (): void {
    clearInterval(this.sweeper)
    for (const t of this.dirty.values()) clearTimeout(t)
    this.dirty.clear()
  }
}
