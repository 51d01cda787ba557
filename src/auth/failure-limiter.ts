/**
 * Failed attempts per key (a source address, a user name) in a fixed window: past `maxFailures`
 * the key is refused until its window ends. Memory is bounded: past `maxKeys`, expired entries are
 * swept and then the oldest dropped (an attacker who cycles through keys only forgets its own).
 */
export class FailureLimiter {
  private readonly failures = new Map<string, { count: number, since: number }>()

  /** `maxFailures` 0 turns the limit off. */
  constructor (private readonly maxFailures = 10, private readonly windowMs = 15 * 60_000, private readonly maxKeys = 10_000, private readonly now: () => number = Date.now) {}

  /** Seconds until the key may try again; 0 when it may now. */
  blockedFor (key: string): number {
    if (this.maxFailures === 0) return 0
    const f = this.failures.get(key)
    if (f === undefined) return 0
    const left = f.since + this.windowMs - this.now()
    if (left <= 0) { this.failures.delete(key); return 0 }
    return f.count >= this.maxFailures ? Math.ceil(left / 1000) : 0
  }

  fail (key: string): void {
    if (this.maxFailures === 0) return
    const t = this.now()
    let f = this.failures.get(key)
    if (f === undefined || t - f.since > this.windowMs) {
      if (f === undefined && this.failures.size >= this.maxKeys) this.sweep()
      if (this.failures.size >= this.maxKeys) this.failures.delete(this.failures.keys().next().value as string)
      f = { count: 0, since: t }
      this.failures.set(key, f)
    }
    f.count++
  }

  succeed (key: string): void { this.failures.delete(key) }

  private sweep (): void {
    const t = this.now()
    for (const [k, f] of this.failures) if (t - f.since > this.windowMs) this.failures.delete(k)
  }
}
