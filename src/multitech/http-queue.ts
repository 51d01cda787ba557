/**
 * Downlinks for Conduits in app-connect's HTTP mode wait here until the Conduit asks: in the reply
 * to that device's `up` (Class A, §4) or to the periodic `GET …/down` poll (§3). A request is
 * `down/queued` once handed over in a reply, `down/failed` `expired` if not fetched within the TTL.
 */
import type { DownlinkRequest } from '../model/events.js'
import type { EventSink, SendResult } from '../core/adapter.js'
import { downlinkBody } from './downlink.js'
import { networkOf, type MultitechRoute } from './route.js'

/** A downlink for a device, through the Conduit of `route`. */
export interface HttpTarget { app: string, devEui: string, route: MultitechRoute }

interface Pending { target: HttpTarget, req: DownlinkRequest, queuedAt: number }

type Report = EventSink['outcome']

export class HttpDownlinkQueue {
  private readonly pending = new Map<string, Pending[]>()
  private readonly sweeper: NodeJS.Timeout
  constructor (private readonly maxPerDevice: number, private readonly ttlMs: number, private readonly report: Report, private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => { void this.expire() }, Math.min(ttlMs, 10_000))
    this.sweeper.unref()
  }

  enqueue (target: HttpTarget, req: DownlinkRequest): SendResult {
    const list = this.pending.get(target.devEui) ?? []
    if (list.length >= this.maxPerDevice) {
      return { status: 'failed', reason: 'queue-full', detail: `${this.maxPerDevice} downlinks already wait for this device's Conduit to fetch them`, network: networkOf(target.route) }
    }
    list.push({ target, req, queuedAt: this.now() })
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
      const handed = list.filter(p => mayTake(p.target.route))
      if (handed.length === 0) continue
      const kept = list.filter(p => !handed.includes(p))
      if (kept.length === 0) this.pending.delete(devEui)
      else this.pending.set(devEui, kept)
      for (const p of handed) {
        const route = p.target.route
        out.push(downlinkBody(route, devEui, p.req))
        await this.report('down/queued', { id: p.req.id, app: p.target.app, devEui, command: 'down', network: networkOf(route) }, 'multitech')
      }
    }
    return out
  }

  flush (devEui: string): void {
    const list = this.pending.get(devEui) ?? []
    this.pending.delete(devEui)
    for (const p of list) void this.fail(p, 'flushed', 'dropped by a clear or a flush before the Conduit fetched it')
  }

  private async expire (): Promise<void> {
    const cutoff = this.now() - this.ttlMs
    for (const [devEui, list] of this.pending) {
      const keep = list.filter(p => p.queuedAt > cutoff)
      for (const p of list.filter(p => p.queuedAt <= cutoff)) await this.fail(p, 'expired', `not fetched by the Conduit within ${Math.round(this.ttlMs / 1000)} s`)
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

  private async fail (p: Pending, reason: 'expired' | 'flushed' | 'shutdown', detail: string): Promise<void> {
    await this.report('down/failed', { id: p.req.id, app: p.target.app, devEui: p.target.devEui, command: 'down', reason, detail, network: networkOf(p.target.route) }, 'multitech')
  }

  close (): void {
    clearInterval(this.sweeper)
  }
}
