/**
 * A cap on concurrent password derivations for credentials not already verified. scrypt runs on
 * libuv's thread pool, which the rest of the daemon shares (file reads, the users file's stat):
 * unbounded, 400 bad-password CONNECTs queued 400 derivations in front of everything else.
 *
 * At most `maxConcurrent` derivations run at once; up to `maxWaiting` more wait, served round-robin
 * across source addresses, so that a few flooding addresses cannot push a newcomer to the back.
 * When the waiting room is full, the newest waiter of the address with the most waiters makes room
 * for an address with fewer; otherwise the newcomer is refused at once.
 */
export class HashGate {
  private running = 0
  private waitingCount = 0
  /** Waiters per source address; Map order is the round-robin order. */
  private readonly waiting = new Map<string, Array<(granted: boolean) => void>>()

  constructor (private readonly maxConcurrent: number, private readonly maxWaiting: number) {}

  get inFlight (): number { return this.running }
  get queued (): number { return this.waitingCount }

  /** Resolves true with a slot held (give it back with `release`), or false when refused. */
  acquire (source: string): Promise<boolean> {
    if (this.running < this.maxConcurrent) {
      this.running++
      return Promise.resolve(true)
    }
    const own = this.waiting.get(source)
    if (this.waitingCount >= this.maxWaiting && !this.evictFor(own?.length ?? 0)) return Promise.resolve(false)
    return new Promise(resolve => {
      const queue = this.waiting.get(source)
      if (queue === undefined) this.waiting.set(source, [resolve])
      else queue.push(resolve)
      this.waitingCount++
    })
  }

  release (): void {
    const next = this.waiting.entries().next()
    if (next.done === true) { this.running--; return }
    const [source, queue] = next.value
    const resolve = queue.shift()!
    this.waiting.delete(source)
    // Back of the line: the next slot goes to the next address.
    if (queue.length > 0) this.waiting.set(source, queue)
    this.waitingCount--
    // The slot passes straight to the waiter; `running` does not change.
    resolve(true)
  }

  /** Refuses the newest waiter of the longest queue if it is longer than the newcomer's would be. */
  private evictFor (ownLength: number): boolean {
    let longest: Array<(granted: boolean) => void> | undefined
    let longestSource = ''
    for (const [source, queue] of this.waiting) if (longest === undefined || queue.length > longest.length) { longest = queue; longestSource = source }
    if (longest === undefined || longest.length <= ownLength + 1) return false
    longest.pop()!(false)
    if (longest.length === 0) this.waiting.delete(longestSource)
    this.waitingCount--
    return true
  }
}
