/**
 * A cap on concurrent password derivations for credentials not already verified. scrypt runs on
 * libuv's thread pool, which the rest of the daemon shares (file reads, the users file's stat):
 * unbounded, 400 bad-password CONNECTs queued 400 derivations in front of everything else.
 *
 * At most `maxConcurrent` derivations run at once; up to `maxWaiting` more wait. When a slot frees,
 * addresses without a recent failure go first, then the others; among each, addresses take turns
 * (round-robin), so that a few flooding addresses cannot push a newcomer to the back. Suspicion is
 * asked when a slot frees, not when a check starts waiting: a flood's first wave arrives before any
 * of it has failed. When the waiting room is full, the newest waiter of the longest queue of a
 * suspect address — or, failing that, of any address with more waiting than the newcomer's would
 * have — makes room; otherwise the newcomer is refused at once.
 */
type Waiter = (granted: boolean) => void

export class HashGate {
  private running = 0
  private waitingCount = 0
  /** Waiters per source address; Map order is the round-robin order. */
  private readonly waiting = new Map<string, Waiter[]>()

  /** `isSuspect`: whether an address failed recently, so that it waits behind those that did not. */
  constructor (private readonly maxConcurrent: number, private readonly maxWaiting: number, private readonly isSuspect: (source: string) => boolean = () => false) {}

  get inFlight (): number { return this.running }
  get queued (): number { return this.waitingCount }

  /** Resolves true with a slot held (give it back with `release`), or false when refused. */
  acquire (source: string): Promise<boolean> {
    if (this.running < this.maxConcurrent) {
      this.running++
      return Promise.resolve(true)
    }
    if (this.waitingCount >= this.maxWaiting && !this.evictFor(source)) return Promise.resolve(false)
    return new Promise(resolve => {
      const queue = this.waiting.get(source)
      if (queue === undefined) this.waiting.set(source, [resolve])
      else queue.push(resolve)
      this.waitingCount++
    })
  }

  release (): void {
    let chosen: string | undefined
    let first: string | undefined
    for (const source of this.waiting.keys()) {
      first ??= source
      if (!this.isSuspect(source)) { chosen = source; break }
    }
    chosen ??= first
    if (chosen === undefined) { this.running--; return }
    const queue = this.waiting.get(chosen)!
    const resolve = queue.shift()!
    this.waiting.delete(chosen)
    // Back of the line: the next slot goes to the next address.
    if (queue.length > 0) this.waiting.set(chosen, queue)
    this.waitingCount--
    // The slot passes straight to the waiter; `running` does not change.
    resolve(true)
  }

  private evictFor (source: string): boolean {
    const newcomerSuspect = this.isSuspect(source)
    const own = this.waiting.get(source)?.length ?? 0
    let victim: string | undefined
    let victimScore = -1
    for (const [s, queue] of this.waiting) {
      if (s === source) continue
      const suspect = this.isSuspect(s)
      // A newcomer in good standing may displace any suspect waiter; otherwise only a longer queue.
      const eligible = (suspect && !newcomerSuspect) || queue.length >= own + 2
      if (!eligible) continue
      const score = (suspect ? 1_000_000 : 0) + queue.length
      if (score > victimScore) { victim = s; victimScore = score }
    }
    if (victim === undefined) return false
    const queue = this.waiting.get(victim)!
    queue.pop()!(false)
    if (queue.length === 0) this.waiting.delete(victim)
    this.waitingCount--
    return true
  }
}
