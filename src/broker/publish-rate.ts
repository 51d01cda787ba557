/**
 * Per-client publish rate limits (messages and bytes per second), as EMQX's per-connection
 * `messages_rate`/`bytes_rate`: a client over its rate is slowed down, not cut off. Aedes handles
 * one client's packets in order and reads the next ones only when the current one is done, so
 * holding a PUBLISH's authorization for the time its tokens take to refill stops reading that
 * client's socket meanwhile: TCP pushes back on the publisher, and nobody else waits.
 */
export interface PublishRateLimits {
  /** 0: no limit. */
  messagesPerSecond: number
  /** 0: no limit. */
  bytesPerSecond: number
}

interface Bucket { messages: number, bytes: number, at: number }

export class PublishRateLimiter {
  private readonly buckets = new WeakMap<object, Bucket>()

  constructor (private readonly limits: PublishRateLimits, private readonly now: () => number = () => performance.now()) {}

  get enabled (): boolean { return this.limits.messagesPerSecond > 0 || this.limits.bytesPerSecond > 0 }

  /**
   * Takes one message of `bytes` from the client's buckets (one second's worth each: the burst);
   * returns how many milliseconds to hold it so that the client stays within its rate.
   */
  delay (client: object, bytes: number): number {
    const { messagesPerSecond: mps, bytesPerSecond: bps } = this.limits
    const t = this.now()
    let b = this.buckets.get(client)
    if (b === undefined) {
      b = { messages: mps, bytes: bps, at: t }
      this.buckets.set(client, b)
    }
    const elapsed = (t - b.at) / 1000
    b.at = t
    let wait = 0
    if (mps > 0) {
      b.messages = Math.min(mps, b.messages + elapsed * mps) - 1
      if (b.messages < 0) wait = Math.max(wait, -b.messages / mps)
    }
    if (bps > 0) {
      // A message larger than a second's worth waits for its own size, not forever.
      b.bytes = Math.min(bps, b.bytes + elapsed * bps) - bytes
      if (b.bytes < 0) wait = Math.max(wait, -b.bytes / bps)
    }
    return Math.ceil(wait * 1000)
  }
}
