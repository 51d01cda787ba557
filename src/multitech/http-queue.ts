/**
 * Downlinks for Conduits in app-connect's HTTP mode wait here until the Conduit asks: in the reply
 * to that device's `up` (Class A, §4) or to the periodic `GET …/down` poll (§3). A request is
 * `down/queued` once handed over in a reply, `down/failed` `expired` if not fetched within the TTL
 * or by its own expiry, whichever comes first, `replaced` when a request with `replace` came.
 */
import type { DownlinkRequest } from '../model/events.js'
import type { EventSink, SendResult } from '../core/adapter.js'
import { downlinkBody } from './downlink.js'
import { networkOf, type MultitechRoute } from './route.js'

/** A downlink for a device, through the Conduit of `route`. */
export interface HttpTarget { app: string, devEui: string, route: MultitechRoute }

interface Pending { target: HttpTarget, req: DownlinkRequest, queuedAt: number, expiresAt: number }

type Report = EventSink['outcome']

export class HttpDownlinkQueue {
  private readonly pending = new Map<string, Pending[]>()
  private readonly sweeper: NodeJS.Timeout
  constructor (private readonly maxPerDevice: number, private readonly ttlMs: number, private readonly report: Report, private readonly ackRetries: number, private readonly now: () => number = Date.now) {
    // Every second: a request's own expiry may be seconds away.
    this.sweeper = setInterval(() => { void this.expire() }, Math.min(ttlMs, 1000))
    this.sweeper.unref()
  }

  enqueue (target: HttpTarget, req: DownlinkRequest): SendResult {
    const list = this.pending.get(target.devEui) ?? []
    if (list.length >= this.maxPerDevice) {
      return { status: 'failed', reason: 'queue-full', detail: `${this.maxPerDevice} downlinks already wait for this device's Conduit to fetch them`, network: networkOf(target.route) }
    }
    const queuedAt = this.now()
    list.push({ target, req, queuedAt, expiresAt: Math.min(queuedAt + this.ttlMs, req.expiresAt ?? Infinity) })
    this.pending.set(target.devEui, list)
    return { status: 'deferred' }
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
    for (const list of lists) for (const p of list) await this.fail(p, 'shutdown', 'lorabridge stopped before the Conduit fetched it; publish it again')
  }

  private async fail (p: Pending, reason: 'expired' | 'flushed' | 'replaced' | 'shutdown', detail: string): Promise<void> {
    await this.report('down/failed', { id: p.req.id, app: p.target.app, devEui: p.target.devEui, command: 'down', reason, detail, network: networkOf(p.target.route) }, 'multitech')
  }

  close (): void {
    clearInterval(this.sweeper)
  }
}
