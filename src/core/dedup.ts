/**
 * "Have we published this frame already?" (PRODUCT.md §3): the same frame from a retained
 * replay, a QoS 1 redelivery or a second Conduit is published once. Keys live for the window.
 * Asynchronous so that a shared (Redis) implementation can stand in for the cluster.
 */
export interface Deduplicator {
  /** True the first time a key is seen within the window; false for every duplicate. */
  firstSighting (key: string): Promise<boolean>
  /** Undoes a sighting whose publication failed, so that a redelivery is not taken for a duplicate. */
  forget (key: string): Promise<void>
  close (): void
}

export class MemoryDeduplicator implements Deduplicator {
  private readonly expiries = new Map<string, number>()
  private readonly sweeper: NodeJS.Timeout

  constructor (private readonly windowMs: number, private readonly maxKeys = 1_000_000, private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(windowMs, 60_000))
    this.sweeper.unref()
  }

  async firstSighting (key: string): Promise<boolean> {
    const t = this.now()
    const until = this.expiries.get(key)
    if (until !== undefined && until > t) return false
    // Map iteration is insertion order: when full, forget the oldest keys first.
    if (this.expiries.size >= this.maxKeys) this.expiries.delete(this.expiries.keys().next().value as string)
    this.expiries.delete(key)
    this.expiries.set(key, t + this.windowMs)
    return true
  }

  async forget (key: string): Promise<void> {
    this.expiries.delete(key)
  }

  private sweep (): void {
    const t = this.now()
    for (const [key, until] of this.expiries) {
      if (until > t) break // insertion order = expiry order, since the window is fixed
      this.expiries.delete(key)
    }
  }

  close (): void {
    clearInterval(this.sweeper)
    this.expiries.clear()
  }
}
