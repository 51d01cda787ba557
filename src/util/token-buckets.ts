/**
 * Token buckets per key (a source address, an IPv6 /64…): `perKey` tokens, refilled evenly over
 * `windowSeconds`. The connect-rate limit takes a token per connection; ThingPark's failed-token
 * budget takes one per failure. Memory follows the keys that spent tokens recently: full buckets
 * are swept, and past `maxKeys` the key that started spending first is forgotten, so that an
 * attacker spreading over many keys cannot grow it without end.
 */
export interface Bucket { tokens: number, at: number }

export class TokenBuckets<B extends Bucket = Bucket> {
  protected readonly buckets = new Map<string, B>()
  private readonly refillPerMs: number
  private readonly sweeper: NodeJS.Timeout | undefined

  /** `perKey` 0 turns the limit off. */
  constructor (
    protected readonly perKey: number,
    protected readonly windowSeconds: number,
    protected readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {
    this.refillPerMs = perKey / (windowSeconds * 1000)
    if (perKey > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, windowSeconds * 1000)))
      this.sweeper.unref()
    }
  }

  get enabled (): boolean { return this.perKey > 0 }

  /** The key's bucket refilled up to now; undefined when the key has a full one (never spent). */
  protected refilled (key: string, t = this.now()): B | undefined {
    const b = this.buckets.get(key)
    if (b === undefined) return undefined
    b.tokens = Math.min(this.perKey, b.tokens + (t - b.at) * this.refillPerMs)
    b.at = t
    return b
  }

  /** True when `key` has no whole token left. */
  empty (key: string): boolean {
    if (!this.enabled) return false
    const b = this.refilled(key)
    return b !== undefined && b.tokens < 1
  }

  /** Takes a token from `key` if it has one; false (nothing taken) when it has none. */
  take (key: string): boolean {
    if (!this.enabled) return true
    const b = this.bucket(key)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Takes a token from `key`, or what is left of one. */
  spend (key: string): void {
    if (!this.enabled) return
    const b = this.bucket(key)
    b.tokens = Math.max(0, b.tokens - 1)
  }

  private bucket (key: string): B {
    const t = this.now()
    let b = this.refilled(key, t)
    if (b === undefined) {
      // Map order is insertion order: when full, forget the key that started spending first.
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
      b = { tokens: this.perKey, at: t } as B
      this.buckets.set(key, b)
    }
    return b
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
