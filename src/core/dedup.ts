/**
 * "Have we published this frame already?" (PRODUCT.md §3): the same frame from a retained
 * replay, a QoS 1 redelivery or a second Conduit is published once. Keys live for the window.
 * Asynchronous so that a shared (Redis) implementation can stand in for the cluster.
 *
 * A frame key (device, DevAddr, counter, payload) does not tell a copy of a frame from a new frame
 * that repeats it: a device that restarts its counter (a reset, a rejoin, an ABP device) and
 * sends the same payload. The network server's receive time does: copies of one frame — other
 * gateways, replays of the same message — carry receive times within moments of each other (the
 * same time, for a replay), while a repeat comes later. So with a receive time, a key seen before
 * is a duplicate only within `spreadMs` of the first copy's time; otherwise it is a new frame.
 */
export interface Deduplicator {
  /**
   * True the first time a key is seen within the window; false for every duplicate. `at`: the
   * network server's receive time of this copy (ms), when it gives one.
   */
  firstSighting (key: string, at?: number): Promise<boolean>
  /** Undoes a sighting whose publication failed, so that a redelivery is not taken for a duplicate. */
  forget (key: string): Promise<void>
  close (): void
}

/** The network server's receive time of an uplink copy (ms), for firstSighting; undefined without one. */
export function receiveTime (event: { time?: string | undefined }): number | undefined {
  if (event.time === undefined) return undefined
  const t = Date.parse(event.time)
  return Number.isNaN(t) ? undefined : t
}

/** A copy of a frame already seen is a duplicate when: */
export function isCopy (firstAt: number | undefined, at: number | undefined, spreadMs: number): boolean {
  // Without both receive times there is nothing to tell them apart: a duplicate, as within the window.
  return firstAt === undefined || at === undefined || Math.abs(at - firstAt) <= spreadMs
}

export class MemoryDeduplicator implements Deduplicator {
  private readonly expiries = new Map<string, { until: number, at: number | undefined }>()
  private readonly sweeper: NodeJS.Timeout

  constructor (private readonly windowMs: number, private readonly maxKeys = 1_000_000, private readonly now: () => number = Date.now, private readonly spreadMs = Infinity) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(windowMs, 60_000))
    this.sweeper.unref()
  }

  async firstSighting (key: string, at?: number): Promise<boolean> {
    const t = this.now()
    const seen = this.expiries.get(key)
    if (seen !== undefined && seen.until > t && isCopy(seen.at, at, this.spreadMs)) return false
    // Map iteration is insertion order: when full, forget the oldest keys first.
    if (this.expiries.size >= this.maxKeys) this.expiries.delete(this.expiries.keys().next().value as string)
    this.expiries.delete(key)
    this.expiries.set(key, { until: t + this.windowMs, at })
    return true
  }

  async forget (key: string): Promise<void> {
    this.expiries.delete(key)
  }

  private sweep (): void {
    const t = this.now()
    for (const [key, { until }] of this.expiries) {
      if (until > t) break // insertion order = expiry order, since the window is fixed
      this.expiries.delete(key)
    }
  }

  close (): void {
    clearInterval(this.sweeper)
    this.expiries.clear()
  }
}
