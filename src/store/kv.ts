/**
 * lorabridge's own small state (pending ThingPark downlinks, downlink correlations): in memory, or
 * in Redis under `redis.keyPrefix` so that it survives a restart and is shared by a cluster.
 */
import { Cluster } from 'ioredis'
import type { RedisConnection } from './redis.js'

export interface KeyValueStore {
  get (key: string): Promise<string | undefined>
  /** ttlMs: forget the key after this long (undefined: keep). */
  set (key: string, value: string, ttlMs?: number): Promise<void>
  del (key: string): Promise<void>
  /**
   * Atomically: when `key` is absent, sets it to `value` for ttlMs; when it holds `value`, renews
   * its ttl. Returns what the key holds afterwards (another value: someone else's claim).
   */
  claim (key: string, value: string, ttlMs: number): Promise<string>
  /** Atomically deletes `key` if it holds `value`. */
  release (key: string, value: string): Promise<void>
  /** Every key with this prefix, and its value. For start-up recovery, not hot paths. */
  entries (prefix: string): Promise<Array<[string, string]>>
  ready (): boolean
  /** Whether what is stored outlives this process (Redis). */
  readonly durable: boolean
}

export class MemoryKeyValueStore implements KeyValueStore {
  readonly durable = false
  private readonly data = new Map<string, { value: string, until: number }>()

  constructor (private readonly now: () => number = Date.now) {}

  private live (key: string): string | undefined {
    const e = this.data.get(key)
    if (e === undefined) return undefined
    if (e.until <= this.now()) { this.data.delete(key); return undefined }
    return e.value
  }

  async get (key: string): Promise<string | undefined> { return this.live(key) }
  async set (key: string, value: string, ttlMs?: number): Promise<void> {
    this.data.set(key, { value, until: ttlMs === undefined ? Infinity : this.now() + ttlMs })
  }

  async del (key: string): Promise<void> { this.data.delete(key) }
  async claim (key: string, value: string, ttlMs: number): Promise<string> {
    const current = this.live(key)
    if (current !== undefined && current !== value) return current
    this.data.set(key, { value, until: this.now() + ttlMs })
    return value
  }

  async release (key: string, value: string): Promise<void> {
    if (this.live(key) === value) this.data.delete(key)
  }

  async entries (prefix: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = []
    for (const key of [...this.data.keys()]) {
      const v = key.startsWith(prefix) ? this.live(key) : undefined
      if (v !== undefined) out.push([key, v])
    }
    return out
  }

  ready (): boolean { return true }
}

const CLAIM = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`

export class RedisKeyValueStore implements KeyValueStore {
  readonly durable = true
  constructor (private readonly redis: RedisConnection, private readonly prefix: string) {}

  async get (key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined
  }

  async set (key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) await this.redis.set(this.prefix + key, value)
    else await this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.round(ttlMs)))
  }

  async del (key: string): Promise<void> {
    await this.redis.del(this.prefix + key)
  }

  async claim (key: string, value: string, ttlMs: number): Promise<string> {
    return String(await this.redis.eval(CLAIM, 1, this.prefix + key, value, String(Math.max(1, Math.round(ttlMs)))))
  }

  async release (key: string, value: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.prefix + key, value)
  }

  async entries (prefix: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = []
    // SCAN's pattern is a glob: escape its special characters in our literal prefix.
    const pattern = (this.prefix + prefix).replace(/[*?[\]\\]/g, m => `\\${m}`) + '*'
    // On a Redis Cluster every master holds part of the keys: scan each.
    const nodes = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis]
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
        cursor = next
        // One GET per key: keys of one scan may live in different cluster slots.
        const values = await Promise.all(keys.map(k => this.redis.get(k)))
        keys.forEach((k, i) => { const v = values[i]; if (v !== null && v !== undefined) out.push([k.slice(this.prefix.length), v]) })
      } while (cursor !== '0')
    }
    return out
  }

  ready (): boolean { return this.redis.status === 'ready' }
}
