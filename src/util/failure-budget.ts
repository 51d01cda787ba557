/**
 * A budget of failures per source (a token bucket): `perKey` failures, refilled over
 * `windowSeconds`. Only failures take from it; a source that has spent it is refused until the
 * bucket refills, before any costly work. Memory follows the sources that failed recently, with a
 * hard cap so that an attacker spreading over many addresses cannot grow it without end.
 */
export class FailureBudget {
  private readonly buckets = new Map<string, { tokens: number, at: number, loggedAt?: number }>()
  private readonly refillPerMs: number
  private readonly sweeper: NodeJS.Timeout | undefined

  constructor (
    private readonly perKey: number,
    private readonly windowSeconds: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {
    this.refillPerMs = perKey / (windowSeconds * 1000)
    if (perKey > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, windowSeconds * 1000)))
      this.sweeper.unref()
    }
  }

  private refilled (key: string, t: number): { tokens: number, at: number, loggedAt?: number } | undefined {
    const b = this.buckets.get(key)
    if (b === undefined) return undefined
    b.tokens = Math.min(this.perKey, b.tokens + (t - b.at) * this.refillPerMs)
    b.at = t
    return b
  }

  /** True when `key` has no failure left: refuse it without looking further. */
  exhausted (key: string): boolean {
    if (this.perKey === 0) return false
    const b = this.refilled(key, this.now())
    return b !== undefined && b.tokens < 1
  }

  /** Takes one failure from `key`'s budget. */
  fail (key: string): void {
    if (this.perKey === 0) return
    const t = this.now()
    let b = this.refilled(key, t)
    if (b === undefined) {
      // Map order is insertion order: when full, forget the source that failed first.
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
      b = { tokens: this.perKey, at: t }
      this.buckets.set(key, b)
    }
    b.tokens = Math.max(0, b.tokens - 1)
  }

  /** True once per window for an exhausted key: log the first refusal, count the rest. */
  firstRefusalInWindow (key: string): boolean {
    const b = this.buckets.get(key)
    if (b === undefined) return true
    const t = this.now()
    if (b.loggedAt !== undefined && t - b.loggedAt < this.windowSeconds * 1000) return false
    b.loggedAt = t
    return true
  }

  private sweep (): void {
    const t = this.now()
    for (const [key, b] of this.buckets) {
      if (b.tokens + (t - b.at) * this.refillPerMs >= this.perKey) this.buckets.delete(key)
    }
  }

  close (): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper)
    this.buckets.clear()
  }
}
