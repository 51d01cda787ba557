/**
 * ioredis connections from `redis.url` plus pass-through `redis.options` (sentinels, tls,
 * cluster settings: PRODUCT.md §7). Every connection retries forever with a capped backoff, so a
 * Redis outage heals without a restart; readiness reports the outage meanwhile.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'

export type RedisConfig = NonNullable<Config['redis']>

/** A connection to one Redis (with Sentinel if the options say so) or to a Redis Cluster. */
export type RedisConnection = Redis | Cluster

const backoff = (times: number): number => Math.min(100 * 2 ** Math.min(times, 6), 2000)

export function createRedisConnection (cfg: RedisConfig, name: string, log: Logger, extra: RedisOptions = {}): RedisConnection {
  const options: RedisOptions = {
    connectionName: `lorabridge-${name}`,
    retryStrategy: backoff,
    maxRetriesPerRequest: null,
    ...(cfg.options as RedisOptions | undefined),
    ...extra,
  }
  const conn: RedisConnection = cfg.cluster !== undefined
    ? new Cluster(cfg.cluster, { redisOptions: options, clusterRetryStrategy: backoff, enableReadyCheck: extra.enableReadyCheck ?? true })
    : new Redis(cfg.url, options)
  // One line per outage, not one per retry.
  let lost = false
  const report = (err?: Error): void => {
    if (lost || closing.has(conn)) return
    lost = true
    log.warn({ code: 'LB_ERR_REDIS', connection: name, ...(err !== undefined ? { err } : {}) }, 'redis connection lost; retrying')
  }
  conn.on('error', (err: Error) => { report(err) })
  conn.on('close', () => { report() })
  conn.on('ready', () => {
    if (lost) log.info({ connection: name }, 'redis connection restored')
    lost = false
  })
  return conn
}

/** Connections being closed on purpose, whose 'close' is not an outage. */
const closing = new WeakSet<RedisConnection>()

export async function closeRedis (conn: RedisConnection): Promise<void> {
  closing.add(conn)
  if (conn.status === 'end') return
  // Someone else is closing it already (mqemitter-redis quits its connections on broker.close()
  // without handling the promise): cutting it now would reject that quit unheard. Wait instead.
  if (conn.status === 'close' || (conn as unknown as { manuallyClosing?: boolean }).manuallyClosing === true) {
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { conn.disconnect(); resolve() }, 2000)
      conn.once('end', () => { clearTimeout(timer); resolve() })
    })
    return
  }
  try {
    if (conn.status === 'ready') await conn.quit()
    else conn.disconnect()
  } catch {
    conn.disconnect()
  }
}
