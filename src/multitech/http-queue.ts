/**
 * Downlinks for Conduits in app-connect's HTTP mode wait here until the Conduit asks: in the reply
 * to that device's `up` (Class A, §4) or to the periodic `GET …/down` poll (§3). A request is
 * `down/queued` once handed over in a reply, `down/failed` `expired` if not fetched within the TTL
 * or by its own expiry, whichever comes first, `replaced` when a request with `replace` came.
 *
 * Each request is also written to the key-value store under this instance's name: with Redis, the
 * requests of an instance that crashed or stopped are held again when it starts, instead of being
 * lost (without Redis, a stop ends them in `shutdown`).
 */
import type { DownlinkRequest } from '../model/events.js'
import type { EventSink, SendResult } from '../core/adapter.js'
import { downlinkBody } from './downlink.js'
import { multitechRoute, networkOf, type MultitechRoute } from './route.js'
import type { KeyValueStore } from '../store/kv.js'

/** A downlink for a device, through the Conduit of `route`. */
export interface HttpTarget { app: string, devEui: string, route: MultitechRoute }

interface Pending { target: HttpTarget, req: DownlinkRequest, queuedAt: number, expiresAt: number, seq: number }

type Report = EventSink['outcome']

/** What the store keeps of a request (the payload as hex). */
interface Stored { app: string, devEui: string, route: MultitechRoute, id: string, fPort: number, hex: string, confirmed: boolean, flush: boolean, expiresAt?: number, queuedAt: number, seq?: number }

/** Orders requests queued within one millisecond (the store lists keys in no order). */
let sequence = 0

export interface QueueStore {
  kv: KeyValueStore
  /** Unique per instance and stable across its restarts (its name). */
  prefix: string
  /** Told of each request held again after a restart (the pending list). */
  held: EventSink['held']
}

export class HttpDownlinkQueue {
  private readonly pending = new Map<string, Pending[]>()
  private readonly sweeper: NodeJS.Timeout
  constructor (private readonly maxPerDevice: number, private readonly ttlMs: number, private readonly report: Report, private readonly ackRetries: number,
    private readonly store?: QueueStore, private readonly now: () => number = Date.now) {
    // Every second: a request's own expiry may be seconds away.
    this.sweeper = setInterval(() => { void this.expire() }, Math.min(ttlMs, 1000))
    this.sweeper.unref()
  }

  async enqueue (target: HttpTarget, req: DownlinkRequest): Promise<SendResult> {
    const list = this.pending.get(target.devEui) ?? []
    if (list.length >= this.maxPerDevice) {
      return { status: 'failed', reason: 'queue-full', detail: `${this.maxPerDevice} downlinks already wait for this device's Conduit to fetch them`, network: networkOf(target.route) }
    }
    const queuedAt = this.now()
    const p: Pending = { target, req, queuedAt, expiresAt: Math.min(queuedAt + this.ttlMs, req.expiresAt ?? Infinity), seq: sequence++ }
    list.push(p)
    this.pending.set(target.devEui, list)
    await this.persist(p)
    return { status: 'deferred' }
  }

  private key (devEui: string, id: string): string { return `${this.store!.prefix}${devEui}:${id}` }

  private async persist (p: Pending): Promise<void> {
    if (this.store === undefined) return
    const s: Stored = { app: p.target.app, devEui: p.target.devEui, route: p.target.route, id: p.req.id, fPort: p.req.fPort, hex: p.req.bytes.toString('hex'), confirmed: p.req.confirmed, flush: p.req.flush, queuedAt: p.queuedAt, seq: p.seq, ...(p.req.expiresAt !== undefined ? { expiresAt: p.req.expiresAt } : {}) }
    // Kept a little past its expiry: a restart after that ends it in `expired`, not in silence.
    await this.store.kv.set(this.key(s.devEui, s.id), JSON.stringify(s), Math.max(1000, p.expiresAt - this.now()) + 60_000)
  }

  private async forget (p: Pending): Promise<void> {
    if (this.store === undefined) return
    await this.store.kv.del(this.key(p.target.devEui, p.req.id)).catch(() => { /* it expires on its own */ })
  }

  /** Holds again what this instance held when it stopped or crashed (with Redis). */
  async load (): Promise<number> {
    if (this.store === undefined || !this.store.kv.durable) return 0
    const loaded: Pending[] = []
    for (const [, value] of await this.store.kv.entries(this.store.prefix)) {
      let s: Stored
      try { s = JSON.parse(value) as Stored } catch { continue }
      const route = multitechRoute(s.route)
      if (route === undefined || typeof s.id !== 'string' || typeof s.hex !== 'string') continue
      const req: DownlinkRequest = { id: s.id, fPort: s.fPort, bytes: Buffer.from(s.hex, 'hex'), confirmed: s.confirmed, flush: s.flush, ...(s.expiresAt !== undefined ? { expiresAt: s.expiresAt } : {}) }
      loaded.push({ target: { app: s.app, devEui: s.devEui, route }, req, queuedAt: s.queuedAt, expiresAt: Math.min(s.queuedAt + this.ttlMs, s.expiresAt ?? Infinity), seq: s.seq ?? 0 })
    }
    loaded.sort((a, b) => a.queuedAt - b.queuedAt || a.seq - b.seq)
    for (const p of loaded) {
      const list = this.pending.get(p.target.devEui) ?? []
      if (list.some(x => x.req.id === p.req.id)) continue
      list.push(p)
      this.pending.set(p.target.devEui, list)
      this.store.held(p.target.app, p.target.devEui, p.req)
    }
    return loaded.length
  }

  size (devEui: string): number { return this.pending.get(devEui)?.length ?? 0 }

  /**
   * Hands over the pending downlinks of these devices that `mayTake` allows, as the Conduit's
   * downlink JSON; the others stay for the Conduit they were routed through. A poll lists DevEUIs
   * the requester chose, so the DevEUI alone says nothing of whose downlink it is (issue 12).
   */
  async take (devEuis: Iterable<string>, mayTake: (route: MultitechRoute) => boolean = () => true): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = []
    for (const devEui of new Set(devEuis)) {
      const list = this.pending.get(devEui)
      if (list === undefined) continue
      const t = this.now()
      const handed = list.filter(p => mayTake(p.target.route) && p.expiresAt > t)
      if (handed.length === 0) continue
      const kept = list.filter(p => !handed.includes(p))
      if (kept.length === 0) this.pending.delete(devEui)
      else this.pending.set(devEui, kept)
      for (const p of handed) {
        await this.forget(p)
        const route = p.target.route
        out.push(downlinkBody(route, devEui, p.req, this.ackRetries))
        await this.report('down/queued', { id: p.req.id, app: p.target.app, devEui, command: 'down', network: networkOf(route) }, 'multitech')
      }
    }
    return out
  }

  /** Drops what waits for the device: after a clear (`flushed`), or for a request with `replace` (`replaced`). */
  flush (devEui: string, reason: 'flushed' | 'replaced', by?: string): void {
    const list = this.pending.get(devEui) ?? []
    this.pending.delete(devEui)
    const detail = reason === 'replaced' ? `replaced by request ${by ?? '?'} before the Conduit fetched it` : 'dropped by a clear before the Conduit fetched it'
    for (const p of list) void this.fail(p, reason, detail)
  }

  private async expire (): Promise<void> {
    const t = this.now()
    for (const [devEui, list] of this.pending) {
      const keep = list.filter(p => p.expiresAt > t)
      for (const p of list.filter(p => p.expiresAt <= t)) {
        await this.fail(p, 'expired', p.req.expiresAt !== undefined && p.req.expiresAt <= p.queuedAt + this.ttlMs
          ? `not fetched by the Conduit before its expiry, ${new Date(p.req.expiresAt).toISOString()}`
          : `not fetched by the Conduit within ${Math.round(this.ttlMs / 1000)} s`)
      }
      if (keep.length === 0) this.pending.delete(devEui)
      else this.pending.set(devEui, keep)
    }
  }

  /**
   * Ends every downlink still waiting, as `down/failed` `shutdown`: the queue lives in this
   * process, and what a stop would drop must not be dropped silently (PRODUCT.md §1).
   */
  async drain (): Promise<void> {
    const lists = [...this.pending.values()]
    this.pending.clear()
    // Kept in Redis: held again at the next start, not ended.
    if (this.store?.kv.durable === true) return
    for (const list of lists) for (const p of list) await this.fail(p, 'shutdown', 'lorabridge stopped before the Conduit fetched it; publish it again')
  }

  private async fail (p: Pending, reason: 'expired' | 'flushed' | 'replaced' | 'shutdown', detail: string): Promise<void> {
    await this.forget(p)
    await this.report('down/failed', { id: p.req.id, app: p.target.app, devEui: p.target.devEui, command: 'down', reason, detail, network: networkOf(p.target.route) }, 'multitech')
  }

  close (): void {
    clearInterval(this.sweeper)
  }
}
