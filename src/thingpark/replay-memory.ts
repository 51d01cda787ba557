/**
 * Which ThingPark tokens were already accepted (issue 12, attack 8). A report is accepted only if
 * its query `Time` is within a window of our clock (`maxTimeDeviation`, or with 0 the
 * `replayHorizonSeconds`), and its token is remembered until that `Time` leaves the window. So a
 * captured request replayed later is either still remembered (LB_ERR_THINGPARK_REPLAY) or too old
 * (LB_ERR_THINGPARK_TIME): never accepted twice.
 *
 * Shared through Redis in a cluster (SET NX with the remaining time as TTL); in memory otherwise,
 * with a cap on entries: past it the oldest are forgotten and the `Time` of the newest forgotten one
 * becomes a floor — reports not later than it are refused, since their token might be forgotten.
 */
import type { RedisConnection } from '../store/redis.js'

/** Added to every expiry: instances of a cluster may disagree this much on the time. */
export const CLOCK_SLACK_MS = 60_000

export type ReplayVerdict = 'unknown' | 'seen' | 'too-old'

export interface ReplayMemory {
  /** Read-only look-up, cheap enough to run before the body is parsed. */
  check (token: string, timeMs: number): Promise<ReplayVerdict>
  /**
   * Records an accepted token whose query Time is `timeMs`, until `untilMs` (both on the daemon's
   * clock). 'unknown' means recorded now; 'seen' that another request was first.
   */
  remember (token: string, timeMs: number, untilMs: number): Promise<ReplayVerdict>
  close (): void
}

export class MemoryReplayMemory implements ReplayMemory {
  /** Insertion order, which is roughly expiry order (Time is close to our clock on arrival). */
  private readonly tokens = new Map<string, { until: number, time: number }>()
  /** Reports whose Time is not later than this are refused: an evicted token had it. */
  private floorTime = -Infinity
  private readonly sweeper: NodeJS.Timeout

  constructor (private readonly maxEntries: number, private readonly now: () => number, private readonly onEvict: () => void = () => {}) {
    this.sweeper = setInterval(() => this.sweep(), 30_000)
    this.sweeper.unref()
  }

  async check (token: string, timeMs: number): Promise<ReplayVerdict> {
    const e = this.tokens.get(token)
    if (e !== undefined && e.until > this.now()) return 'seen'
    return timeMs <= this.floorTime ? 'too-old' : 'unknown'
  }

  async remember (token: string, timeMs: number, untilMs: number): Promise<ReplayVerdict> {
    const verdict = await this.check(token, timeMs)
    if (verdict !== 'unknown') return verdict
    this.tokens.delete(token)
    while (this.tokens.size >= this.maxEntries) {
      const [oldest, e] = this.tokens.entries().next().value as [string, { until: number, time: number }]
      this.tokens.delete(oldest)
      if (e.until > this.now()) {
        this.floorTime = Math.max(this.floorTime, e.time)
        this.onEvict()
      }
    }
    this.tokens.set(token, { until: untilMs, time: timeMs })
    return 'unknown'
  }

  /** Drops expired entries from the front; one that outlives its neighbours only waits for them. */
  private sweep (): void {
    const t = this.now()
    for (const [token, e] of this.tokens) {
      if (e.until > t) break
      this.tokens.delete(token)
    }
  }

  close (): void {
    clearInterval(this.sweeper)
    this.tokens.clear()
  }
}

/**
 * Keys `<prefix>tp-token:dedup:<token>`, as before this memory had a horizon, so that instances of
 * both versions share them during a rolling upgrade.
 */
export class RedisReplayMemory implements ReplayMemory {
  constructor (private readonly redis: RedisConnection, private readonly prefix: string, private readonly now: () => number) {}

  private key (token: string): string { return `${this.prefix}tp-token:dedup:${token}` }

  async check (token: string): Promise<ReplayVerdict> {
    return (await this.redis.exists(this.key(token))) === 1 ? 'seen' : 'unknown'
  }

  async remember (token: string, _timeMs: number, untilMs: number): Promise<ReplayVerdict> {
    // TTL from our clock, not PXAT: Redis's clock is not the one that judged the Time window.
    const ttl = Math.max(1, Math.round(untilMs - this.now()))
    return (await this.redis.set(this.key(token), '1', 'PX', ttl, 'NX')) === 'OK' ? 'unknown' : 'seen'
  }

  close (): void {}
}
