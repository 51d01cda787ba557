/**
 * What instances of one cluster must agree on, kept in Redis (issue: cluster mode whenever
 * `redis.url` is set): which frames were published (deduplication), the way back to each device
 * (routes), rule cooldowns, and which instance holds which MQTT client. Each has an in-memory
 * counterpart for a single instance.
 */
import { randomUUID } from 'node:crypto'
import type { RedisConnection } from './redis.js'
import type { Deduplicator } from '../core/dedup.js'
import type { RouteEntry, RouteTable } from '../core/routes.js'

/**
 * The key holds the first copy's receive time ('-' without one) and the sighting that wrote it. The
 * read-compare-write is a Lua script: the first instance to see a frame wins; the others see a
 * duplicate (core/dedup.ts).
 *
 * Each call carries its own token. When Redis goes away after running the script but before its
 * reply arrives, the client sends the script again once Redis is back (ioredis re-sends unanswered
 * commands); the second run finds the key written by the same token and answers as the first did.
 * Without the token it answered "duplicate", and the uplink was acknowledged unpublished (seen once
 * in the reliability suite: a Redis crash at that instant lost an acknowledged message).
 */
const SIGHTING = `
local first = redis.call('GET', KEYS[1])
if first then
  local sep = string.find(first, '|', 1, true)
  local at = first
  if sep then
    if string.sub(first, sep + 1) == ARGV[4] then return 1 end
    at = string.sub(first, 1, sep - 1)
  end
  if at == '-' or at == '1' or ARGV[2] == '-' or math.abs(tonumber(at) - tonumber(ARGV[2])) <= tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[4], 'PX', ARGV[1])
return 1
`

export class RedisDeduplicator implements Deduplicator {
  private readonly instance = randomUUID()
  private sightings = 0

  constructor (private readonly redis: RedisConnection, private readonly prefix: string, private readonly windowMs: number, private readonly spreadMs = Infinity) {}

  firstSighting (key: string, at?: number): Promise<boolean> {
    return this.sight(key, at, `${this.instance}:${++this.sightings}`)
  }

  /** One sighting, under `token`: run twice with the same token (a re-sent command), it answers the same. */
  async sight (key: string, at: number | undefined, token: string): Promise<boolean> {
    const spread = Number.isFinite(this.spreadMs) ? String(this.spreadMs) : '1e300'
    return (await this.redis.eval(SIGHTING, 1, `${this.prefix}dedup:${key}`, String(this.windowMs), at === undefined ? '-' : String(Math.round(at)), spread, token)) === 1
  }

  async forget (key: string): Promise<void> {
    await this.redis.del(`${this.prefix}dedup:${key}`)
  }

  close (): void {}
}

/**
 * Routes as JSON, a day's TTL refreshed by every reception. The read-compare-write of `offer` is
 * a Lua script, so two instances offering receptions of one frame keep the better signal.
 */
const OFFER = `
local current = redis.call('GET', KEYS[1])
if current then
  local c = cjson.decode(current)
  if c.frame == ARGV[2] then
    local cs = c.snr or -1e9
    local ns = tonumber(ARGV[3]) or -1e9
    if ns < cs or (ns == cs and (tonumber(ARGV[4]) or -1e9) <= (c.rssi or -1e9)) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
return 1
`

export class RedisRouteTable implements RouteTable {
  constructor (private readonly redis: RedisConnection, private readonly prefix: string, private readonly ttlMs = 86_400_000) {}

  async get (devEui: string): Promise<RouteEntry | undefined> {
    const v = await this.redis.get(`${this.prefix}route:${devEui}`)
    return v === null ? undefined : JSON.parse(v) as RouteEntry
  }

  async offer (devEui: string, entry: RouteEntry): Promise<void> {
    await this.redis.eval(OFFER, 1, `${this.prefix}route:${devEui}`, JSON.stringify(entry), entry.frame, String(entry.snr ?? ''), String(entry.rssi ?? ''), String(this.ttlMs))
  }
}

/** A rule's per-device cooldown: taken when the rule passes, by one instance for all. */
export interface Cooldowns { acquire (key: string, ms: number): Promise<boolean> }

export class MemoryCooldowns implements Cooldowns {
  private readonly until = new Map<string, number>()
  constructor (private readonly now: () => number = Date.now) {}
  async acquire (key: string, ms: number): Promise<boolean> {
    const t = this.now()
    if ((this.until.get(key) ?? 0) > t) return false
    this.until.set(key, t + ms)
    if (this.until.size > 100_000) for (const [k, u] of this.until) if (u <= t) this.until.delete(k)
    return true
  }
}

export class RedisCooldowns implements Cooldowns {
  constructor (private readonly redis: RedisConnection, private readonly prefix: string) {}
  async acquire (key: string, ms: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}cooldown:${key}`, '1', 'PX', Math.max(1, ms), 'NX')) === 'OK'
  }
}

/**
 * Which instance holds an MQTT client's connection. A Conduit may sit on any instance behind the
 * load balancer; another instance routing it a downlink, or seeing its old connection close after
 * a takeover, must know. Entries expire unless their instance refreshes them, so a killed
 * instance's clients do not look connected for long.
 */
export interface ClientLocator {
  connected (clientId: string): Promise<void>
  /** Forgets the client unless another instance holds it now; true if it was ours. */
  disconnected (clientId: string): Promise<boolean>
  /** The instance holding the client, if any. */
  holder (clientId: string): Promise<string | undefined>
  close (): void
}

export class MemoryClientLocator implements ClientLocator {
  private readonly held = new Set<string>()
  constructor (private readonly instance: string) {}
  async connected (clientId: string): Promise<void> { this.held.add(clientId) }
  async disconnected (clientId: string): Promise<boolean> { return this.held.delete(clientId) }
  async holder (clientId: string): Promise<string | undefined> { return this.held.has(clientId) ? this.instance : undefined }
  close (): void {}
}

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`

export class RedisClientLocator implements ClientLocator {
  private readonly held = new Set<string>()
  private readonly refresher: NodeJS.Timeout

  constructor (private readonly redis: RedisConnection, private readonly prefix: string, private readonly instance: string, private readonly ttlMs = 60_000) {
    this.refresher = setInterval(() => { void this.refresh() }, ttlMs / 3)
    this.refresher.unref()
  }

  private key (clientId: string): string { return `${this.prefix}client:${clientId}` }

  async connected (clientId: string): Promise<void> {
    this.held.add(clientId)
    await this.redis.set(this.key(clientId), this.instance, 'PX', this.ttlMs)
  }

  async disconnected (clientId: string): Promise<boolean> {
    this.held.delete(clientId)
    return (await this.redis.eval(RELEASE, 1, this.key(clientId), this.instance)) === 1
  }

  async holder (clientId: string): Promise<string | undefined> {
    return (await this.redis.get(this.key(clientId))) ?? undefined
  }

  private async refresh (): Promise<void> {
    if (this.held.size === 0 || this.redis.status !== 'ready') return
    // Separate commands, not one pipeline: on a Redis Cluster the keys live in different slots.
    await Promise.all([...this.held].map(id => this.redis.set(this.key(id), this.instance, 'PX', this.ttlMs))).catch(() => undefined)
  }

  close (): void { clearInterval(this.refresher) }
}
