/**
 * A budget of failures per source: only failures take from it (TokenBuckets), and a source that
 * has spent it is refused until its bucket refills, before any costly work.
 */
import { TokenBuckets, type Bucket } from './token-buckets.js'

export class FailureBudget extends TokenBuckets<Bucket & { loggedAt?: number }> {
  /** True when `key` has no failure left: refuse it without looking further. */
  exhausted (key: string): boolean { return this.empty(key) }

  /** Takes one failure from `key`'s budget. */
  fail (key: string): void { this.spend(key) }

  /** True once per window for an exhausted key: log the first refusal, count the rest. */
  firstRefusalInWindow (key: string): boolean {
    const b = this.buckets.get(key)
    if (b === undefined) return true
    const t = this.now()
    if (b.loggedAt !== undefined && t - b.loggedAt < this.windowSeconds * 1000) return false
    b.loggedAt = t
    return true
  }
}
