/**
 * What a device page of the console shows (docs/console.md#device-pages): per device, its recent
 * uplinks and its downlink requests with their outcomes, taken from the normalized topics. Bounded
 * four ways: uplinks and downlink requests per device, age, and the number of devices (the least
 * recently heard forgotten first).
 *
 * Kept in memory, or in Redis when the daemon has Redis (one sorted set per device and stream,
 * scored by time), so that a restart or another instance of the cluster shows the same history.
 * Every instance receives every normalized message; in Redis only the instance that published it
 * writes it, and since a record is a pure function of the message, a second writer would only add
 * the same member again.
 */
import type { Logger } from '../log.js'
import type { RedisConnection } from '../store/redis.js'
import { parseDeviceTopic } from '../model/topics.js'

export interface HistoryLimits {
  uplinks: number
  downlinks: number
  maxAgeMs: number
  devices: number
}

export interface UplinkRecord {
  at: string
  id: string
  fCnt?: number
  fPort?: number
  hex?: string
  confirmed?: boolean
  ack?: boolean
  dataRate?: string
  decoded?: unknown
  /** The decoded values were larger than what is kept per uplink. */
  decodedTooLarge?: true
  decodeErrors?: string[]
  decodeWarnings?: string[]
  gateways: Array<{ id: string, rssi?: number, snr?: number }>
}

/** A request seen on `…/down` (`kind: 'down'`), or one of its outcomes. */
export interface DownlinkRecord {
  at: string
  id: string
  kind: 'down' | 'down/queued' | 'down/sent' | 'down/acked' | 'down/failed'
  fPort?: number
  hex?: string
  object?: unknown
  confirmed?: boolean
  reason?: string
  detail?: string
  caveats?: string[]
  codecErrors?: string[]
  ackedBy?: { id?: string, fCnt?: number }
  fCntDn?: number
}

/** One request and what became of it, oldest outcome first. */
export interface DownlinkHistory {
  id: string
  at: string
  /** Undefined when only outcomes were seen (a rule's request on a single instance nobody heard, or one older than the window). */
  request?: DownlinkRecord
  outcomes: DownlinkRecord[]
  /** The latest outcome's kind, or `requested`. */
  state: string
}

export interface DeviceHistory {
  uplinks: UplinkRecord[]
  downlinks: DownlinkHistory[]
}

export type Stream = 'up' | 'down'

const OUTCOMES = new Set(['down/queued', 'down/sent', 'down/acked', 'down/failed'])
/** Enough per request: a request, queued, sent (ThingPark may say it twice), and its end. */
const EVENTS_PER_REQUEST = 6
/** Caps on what one record keeps of a message: a page of history must stay small. */
const MAX_HEX = 1024
const MAX_DECODED_JSON = 4096
const MAX_TEXT = 512
const MAX_LIST = 10
const MAX_GATEWAYS = 8

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
const num = (v: unknown): number | undefined => typeof v === 'number' && Number.isFinite(v) ? v : undefined
const text = (v: unknown, max = MAX_TEXT): string | undefined => typeof v === 'string' ? v.slice(0, max) : undefined
const texts = (v: unknown): string[] | undefined => Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, MAX_LIST).map(x => x.slice(0, MAX_TEXT)) : undefined

/** Sets `key` only when `value` is defined: records stay free of `undefined` members. */
function put<T extends object, K extends keyof T> (o: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) o[key] = value
}

function uplinkRecord (e: Record<string, unknown>, fallbackAt: string): UplinkRecord {
  const r: UplinkRecord = { at: text(e.receivedAt, 64) ?? fallbackAt, id: text(e.id, 128) ?? '?', gateways: [] }
  put(r, 'fCnt', num(e.fCnt))
  put(r, 'fPort', num(e.fPort))
  put(r, 'hex', text(e.hex, MAX_HEX))
  if (typeof e.confirmed === 'boolean') r.confirmed = e.confirmed
  if (e.ack === true) r.ack = true
  if (isObject(e.radio)) put(r, 'dataRate', text(e.radio.dataRate, 32))
  if (e.decoded !== undefined) {
    const json = JSON.stringify(e.decoded)
    if (json.length <= MAX_DECODED_JSON) r.decoded = e.decoded
    else r.decodedTooLarge = true
  }
  put(r, 'decodeErrors', texts(e.decodeErrors))
  put(r, 'decodeWarnings', texts(e.decodeWarnings))
  for (const g of (Array.isArray(e.gateways) ? e.gateways : []).filter(isObject).slice(0, MAX_GATEWAYS)) {
    const reception: UplinkRecord['gateways'][number] = { id: text(g.id, 64) ?? '?' }
    put(reception, 'rssi', num(g.rssi))
    put(reception, 'snr', num(g.snr))
    r.gateways.push(reception)
  }
  return r
}

function requestRecords (body: unknown, fallbackAt: string): DownlinkRecord[] {
  // A publication on `…/down` may carry an array of requests.
  const items = (Array.isArray(body) ? body : [body]).filter(isObject).slice(0, MAX_LIST)
  return items.map(e => {
    // Without an id in the request, the router makes one that only its outcomes carry.
    const r: DownlinkRecord = { at: fallbackAt, id: text(e.id, 128) ?? '(no id)', kind: 'down' }
    put(r, 'fPort', num(e.fPort))
    put(r, 'hex', text(e.hex, MAX_HEX) ?? (typeof e.data === 'string' ? Buffer.from(e.data.slice(0, MAX_HEX), 'base64').toString('hex') : undefined))
    if (isObject(e.object) && JSON.stringify(e.object).length <= MAX_DECODED_JSON) r.object = e.object
    if (typeof e.confirmed === 'boolean') r.confirmed = e.confirmed
    return r
  })
}

function outcomeRecord (kind: DownlinkRecord['kind'], e: Record<string, unknown>, fallbackAt: string): DownlinkRecord {
  const r: DownlinkRecord = { at: text(e.receivedAt, 64) ?? fallbackAt, id: text(e.id, 128) ?? '?', kind }
  put(r, 'reason', text(e.reason, 64))
  put(r, 'detail', text(e.detail))
  put(r, 'caveats', texts(e.caveats))
  put(r, 'codecErrors', texts(e.codecErrors))
  put(r, 'fCntDn', num(e.fCntDn))
  if (isObject(e.ackedBy)) {
    const by: NonNullable<DownlinkRecord['ackedBy']> = {}
    put(by, 'id', text(e.ackedBy.id, 128))
    put(by, 'fCnt', num(e.ackedBy.fCnt))
    r.ackedBy = by
  }
  return r
}

/** What one normalized message adds to a device's history; undefined for anything it does not keep. */
export function historyRecords (root: string, topic: string, body: unknown, nowMs: number): { app: string, devEui: string, stream: Stream, records: Array<UplinkRecord | DownlinkRecord> } | undefined {
  const t = parseDeviceTopic(root, topic)
  if (t === undefined) return undefined
  const at = new Date(nowMs).toISOString()
  if (t.kind === 'up') return isObject(body) ? { app: t.app, devEui: t.devEui, stream: 'up', records: [uplinkRecord(body, at)] } : undefined
  if (t.kind === 'down') return { app: t.app, devEui: t.devEui, stream: 'down', records: requestRecords(body, at) }
  if (OUTCOMES.has(t.kind) && isObject(body)) return { app: t.app, devEui: t.devEui, stream: 'down', records: [outcomeRecord(t.kind as DownlinkRecord['kind'], body, at)] }
  return undefined
}

/** Groups a device's downlink records by request id, newest request first, at most `limit`. */
export function groupDownlinks (records: DownlinkRecord[], limit: number): DownlinkHistory[] {
  const byId = new Map<string, DownlinkHistory>()
  for (const r of [...records].sort((a, b) => a.at.localeCompare(b.at))) {
    // Requests without an id cannot be matched with their outcomes: each stands alone.
    const key = r.kind === 'down' && r.id === '(no id)' ? `(no id)@${r.at}` : r.id
    let g = byId.get(key)
    if (g === undefined) { g = { id: r.id, at: r.at, outcomes: [], state: 'requested' }; byId.set(key, g) }
    if (r.kind === 'down') g.request = r
    else { g.outcomes.push(r); g.state = r.kind.slice(5) }
  }
  return [...byId.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, limit)
}

const timeOf = (r: { at: string }, fallback: number): number => {
  const t = Date.parse(r.at)
  return Number.isFinite(t) ? t : fallback
}

export interface DeviceHistoryStore {
  readonly kind: 'memory' | 'redis'
  /**
   * Takes one normalized message already parsed; `local`: published on this instance (only those
   * are written to Redis). Never throws, never waits.
   */
  take (topic: string, body: unknown, local: boolean): void
  /** The device's history within the window; undefined when nothing is kept for it in this application. */
  read (app: string, devEui: string): Promise<DeviceHistory | undefined>
  /** Resolves once what was taken so far is written (a page read after an event shows it). */
  flush (): Promise<void>
}

interface MemoryDevice { up: Array<{ t: number, r: UplinkRecord }>, down: Array<{ t: number, r: DownlinkRecord }> }

export class MemoryDeviceHistory implements DeviceHistoryStore {
  readonly kind = 'memory'
  private readonly devices = new Map<string, MemoryDevice>()

  constructor (private readonly root: string, private readonly limits: HistoryLimits, private readonly now: () => number = Date.now) {}

  /** Every message: a single instance publishes them all (a cluster keeps its history in Redis). */
  take (topic: string, body: unknown, _local?: boolean): void {
    const now = this.now()
    const h = historyRecords(this.root, topic, body, now)
    if (h === undefined || h.records.length === 0) return
    const key = `${h.app}/${h.devEui}`
    let d = this.devices.get(key)
    if (d === undefined) {
      d = { up: [], down: [] }
      if (this.devices.size >= this.limits.devices) this.devices.delete(this.devices.keys().next().value as string)
    }
    // Re-inserted: map order is least recently heard first.
    this.devices.delete(key)
    this.devices.set(key, d)
    if (h.stream === 'up') {
      for (const r of h.records as UplinkRecord[]) d.up.push({ t: timeOf(r, now), r })
      if (d.up.length > this.limits.uplinks) d.up.splice(0, d.up.length - this.limits.uplinks)
    } else {
      for (const r of h.records as DownlinkRecord[]) d.down.push({ t: timeOf(r, now), r })
      const cap = this.limits.downlinks * EVENTS_PER_REQUEST
      if (d.down.length > cap) d.down.splice(0, d.down.length - cap)
    }
  }

  async read (app: string, devEui: string): Promise<DeviceHistory | undefined> {
    const d = this.devices.get(`${app}/${devEui}`)
    if (d === undefined) return undefined
    const since = this.now() - this.limits.maxAgeMs
    const up = d.up.filter(x => x.t >= since)
    const down = d.down.filter(x => x.t >= since)
    if (up.length === 0 && down.length === 0) return undefined
    return {
      uplinks: up.map(x => x.r).reverse(),
      downlinks: groupDownlinks(down.map(x => x.r), this.limits.downlinks),
    }
  }

  async flush (): Promise<void> {}
}

/** Writes waiting for Redis beyond this are dropped (and counted in the log): Redis is slow or away. */
const MAX_IN_FLIGHT = 10_000

export class RedisDeviceHistory implements DeviceHistoryStore {
  readonly kind = 'redis'
  private readonly inFlight = new Set<Promise<void>>()
  private dropped = 0
  private lastWarning = 0
  private writes = 0

  constructor (
    private readonly root: string,
    private readonly limits: HistoryLimits,
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private key (app: string, devEui: string, stream: Stream): string {
    // One hash tag per device: its two streams live in one cluster slot.
    return `${this.prefix}console:history:{${app}/${devEui}}:${stream}`
  }

  private get index (): string { return `${this.prefix}console:history:devices` }

  take (topic: string, body: unknown, local: boolean): void {
    if (!local) return
    const now = this.now()
    const h = historyRecords(this.root, topic, body, now)
    if (h === undefined || h.records.length === 0) return
    if (this.inFlight.size >= MAX_IN_FLIGHT) {
      this.dropped++
      this.warn(new Error('too many history writes waiting for Redis'))
      return
    }
    const p = this.write(h.app, h.devEui, h.stream, h.records, now).catch((err: unknown) => { this.warn(err) })
    this.inFlight.add(p)
    void p.finally(() => { this.inFlight.delete(p) })
  }

  private async write (app: string, devEui: string, stream: Stream, records: Array<UplinkRecord | DownlinkRecord>, now: number): Promise<void> {
    const key = this.key(app, devEui, stream)
    const keep = stream === 'up' ? this.limits.uplinks : this.limits.downlinks * EVENTS_PER_REQUEST
    const ttl = Math.max(1, Math.ceil(this.limits.maxAgeMs))
    const args: Array<string | number> = []
    for (const r of records) args.push(timeOf(r, now), JSON.stringify(r))
    await Promise.all([
      this.redis.zadd(key, ...args),
      this.redis.zremrangebyrank(key, 0, -(keep + 1)),
      this.redis.zremrangebyscore(key, '-inf', now - this.limits.maxAgeMs),
      this.redis.pexpire(key, ttl),
      this.redis.zadd(this.index, now, `${app}/${devEui}`),
      this.redis.pexpire(this.index, ttl),
    ])
    // The device bound, checked now and then: the least recently heard devices lose their history.
    if (++this.writes % 64 === 1) await this.trimDevices(now)
  }

  private async trimDevices (now: number): Promise<void> {
    const stale = await this.redis.zrangebyscore(this.index, '-inf', now - this.limits.maxAgeMs)
    const count = await this.redis.zcard(this.index)
    const excess = Math.max(0, count - stale.length - this.limits.devices)
    const evicted = excess > 0 ? await this.redis.zrange(this.index, stale.length, stale.length + excess - 1) : []
    const gone = [...stale, ...evicted]
    if (gone.length === 0) return
    await Promise.all(gone.flatMap(member => {
      const [app, devEui] = member.split('/') as [string, string]
      return [this.redis.del(this.key(app, devEui, 'up')), this.redis.del(this.key(app, devEui, 'down')), this.redis.zrem(this.index, member)]
    }))
  }

  async read (app: string, devEui: string): Promise<DeviceHistory | undefined> {
    await this.flush()
    const since = this.now() - this.limits.maxAgeMs
    const [up, down] = await Promise.all([
      this.redis.zrangebyscore(this.key(app, devEui, 'up'), since, '+inf'),
      this.redis.zrangebyscore(this.key(app, devEui, 'down'), since, '+inf'),
    ])
    if (up.length === 0 && down.length === 0) return undefined
    const parse = <T>(members: string[]): T[] => members.flatMap(m => { try { return [JSON.parse(m) as T] } catch { return [] } })
    return {
      uplinks: parse<UplinkRecord>(up).reverse().slice(0, this.limits.uplinks),
      downlinks: groupDownlinks(parse<DownlinkRecord>(down), this.limits.downlinks),
    }
  }

  async flush (): Promise<void> {
    await Promise.allSettled([...this.inFlight])
  }

  private warn (err: unknown): void {
    const now = Date.now()
    if (now - this.lastWarning < 60_000) return
    this.lastWarning = now
    this.log.warn({ code: 'LB_ERR_REDIS', err, dropped: this.dropped }, 'console device history not written to Redis')
  }
}

export function createDeviceHistory (root: string, limits: HistoryLimits, log: Logger, redis: { connection: RedisConnection, prefix: string } | undefined, now?: () => number): DeviceHistoryStore {
  return redis === undefined
    ? new MemoryDeviceHistory(root, limits, now)
    : new RedisDeviceHistory(root, limits, redis.connection, redis.prefix, log, now)
}
