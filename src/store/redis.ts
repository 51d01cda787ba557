/**
 * ioredis connections from `redis.url` plus pass-through `redis.options` (sentinels, tls,
 * cluster settings: PRODUCT.md §7). Every connection retries forever with a capped backoff, so a
 * Redis outage heals without a restart; readiness reports the outage meanwhile.
 */
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { Config } from '../config/schema.js'
import { LorabridgeError } from '../errors.js'
import type { Logger } from '../log.js'

export type RedisConfig = NonNullable<Config['redis']>

/** A connection to one Redis (with Sentinel if the options say so) or to a Redis Cluster. */
export type RedisConnection = Redis | Cluster

const backoff = (times: number): number => Math.min(100 * 2 ** Math.min(times, 6), 2000)

/** Redis's answers to wrong or missing credentials (requirepass, ACL users). */
const AUTH_ERROR = /WRONGPASS|NOAUTH|invalid password|invalid username-password|without any password configured/i

/** The last credentials refusal per connection, until it becomes ready. */
const authRefusals = new WeakMap<RedisConnection, Error>()

/** `redis.tls` names files; ioredis (Node's tls.connect) wants their contents. */
function tlsOptions (cfg: RedisConfig): ConnectionOptions | undefined {
  const passed = (cfg.options as RedisOptions | undefined)?.tls
  if (cfg.tls === undefined) return passed
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new LorabridgeError('LB_ERR_TLS_FILE', `cannot read the Redis TLS ${what} ${file}: ${(err as Error).message}`, { cause: err })
    }
  }
  const { ca, cert, key, servername } = cfg.tls
  return {
    ...passed,
    ...(ca !== undefined ? { ca: read(ca, 'CA bundle') } : {}),
    ...(cert !== undefined ? { cert: read(cert, 'certificate') } : {}),
    ...(key !== undefined ? { key: read(key, 'private key') } : {}),
    ...(servername !== undefined ? { servername } : {}),
  }
}

export function createRedisConnection (cfg: RedisConfig, name: string, log: Logger, extra: RedisOptions = {}): RedisConnection {
  const tls = tlsOptions(cfg)
  const options: RedisOptions = {
    connectionName: `lorabridge-${name}`,
    retryStrategy: backoff,
    maxRetriesPerRequest: null,
    ...(cfg.options as RedisOptions | undefined),
    ...(tls !== undefined ? { tls } : {}),
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
  conn.on('error', (err: Error) => {
    if (AUTH_ERROR.test(err.message)) {
      // Not an outage: retrying will not fix a wrong password. One line per connection; the reason
      // is Redis's own message, which never contains the password.
      if (!authRefusals.has(conn)) log.error({ code: 'LB_ERR_REDIS_AUTH', connection: name, reason: err.message }, 'redis refused the credentials')
      authRefusals.set(conn, err)
      return
    }
    report(err)
  })
  conn.on('close', () => { report() })
  conn.on('ready', () => {
    authRefusals.delete(conn)
    if (lost) log.info({ connection: name }, 'redis connection restored')
    lost = false
  })
  return conn
}

/**
 * Start-up check: resolves once the connection is ready, or when Redis is not reachable yet (an
 * outage heals by itself and readiness reports it meanwhile); rejects with LB_ERR_REDIS_AUTH when
 * Redis refuses the credentials, which no retry will fix.
 */
export async function verifyRedisCredentials (conn: RedisConnection, waitMs = 5000): Promise<void> {
  const refused = (err: Error): LorabridgeError =>
    new LorabridgeError('LB_ERR_REDIS_AUTH', `Redis refused the credentials (${err.message}): check the password in redis.url or redis.options`)
  const known = authRefusals.get(conn)
  if (known !== undefined) throw refused(known)
  if (conn.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer)
      conn.off('ready', onReady)
      conn.off('error', onError)
      if (err === undefined) resolve()
      else reject(refused(err))
    }
    const onReady = (): void => { done() }
    // Any other error means Redis is not reachable yet: carry on, the retries and readiness take over.
    const onError = (err: Error): void => { done(AUTH_ERROR.test(err.message) ? err : undefined) }
    const timer = setTimeout(() => { done() }, waitMs)
    conn.on('ready', onReady)
    conn.on('error', onError)
  })
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
