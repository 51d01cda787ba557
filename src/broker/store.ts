/**
 * The broker's persistence and message emitter: Aedes's in-memory defaults, or, with `redis.url`,
 * aedes-persistence-redis + mqemitter-redis so that sessions, retained messages and QoS 1 queues
 * survive a restart and several instances form one cluster. Version choice: docs/dependencies.md.
 */
import persistenceRedis from 'aedes-persistence-redis'
import mqemitterRedis from 'mqemitter-redis'
import type { RedisConnection } from '../store/redis.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import { createRedisConnection, closeRedis, verifyRedisCredentials } from '../store/redis.js'
import { serializeSubscriptionChanges, type SubscriptionStore } from './subscription-changes.js'

export interface BrokerStore {
  kind: 'memory' | 'redis'
  /** Options for Aedes.createBroker. */
  aedesOptions: { persistence?: unknown, mq?: unknown }
  /** True when every backing connection is usable. */
  ready (): boolean
  /** Start-up: rejects with LB_ERR_REDIS_AUTH when Redis refuses the credentials. */
  verify (): Promise<void>
  close (): Promise<void>
}

export function createBrokerStore (config: Config, log: Logger): BrokerStore {
  if (config.redis === undefined) {
    return { kind: 'memory', aedesOptions: {}, ready: () => true, verify: async () => {}, close: async () => {} }
  }
  const cluster = config.redis.cluster
  const conns: RedisConnection[] = [
    createRedisConnection(config.redis, 'persistence', log),
    createRedisConnection(config.redis, 'pub', log),
    // mqemitter-redis subscribes at once; ioredis's ready check (INFO) would then run on a
    // connection already in subscriber mode, fail, and be treated as fatal.
    createRedisConnection(config.redis, 'sub', log, { enableReadyCheck: false }),
  ]
  const [conn, pubConn, subConn] = conns as [RedisConnection, RedisConnection, RedisConnection]
  // mqemitter-redis quits both connections on broker.close() and drops the promises: when the
  // connection ends before Redis answers (a slow stop: closeRedis cuts it after 2 s), that QUIT is
  // rejected with "Connection is closed" and nobody hears it (an unhandled rejection, seen once
  // in a loaded CI run). Their quits are heard here; closeRedis still waits for the end.
  for (const c of [pubConn, subConn]) {
    const quit = c.quit.bind(c) as () => Promise<'OK'>
    c.quit = (() => { const p = quit(); p.catch(() => {}); return p }) as typeof c.quit
  }
  const mq = mqemitterRedis({ pubConn: pubConn as never, subConn: subConn as never })
  // mqemitter-redis re-emits connection errors on `state`; unheard, an 'error' event ends the
  // process. The connections report (and retry) themselves, so here they are only logged.
  ;(mq as unknown as { state: import('node:events').EventEmitter }).state.on('error', (err: Error) => {
    log.debug({ code: 'LB_ERR_REDIS', err }, 'message emitter error')
  })
  // On a Redis Cluster the persistence keeps retained messages under per-topic keys and needs to
  // know it (`cluster: true`). It is given our cluster connection rather than the nodes: with the
  // nodes it would make its own, without redis.options (password, TLS).
  const persistence = serializeSubscriptionChanges((cluster !== undefined ? persistenceRedis({ cluster: true, conn: conn as never }) : persistenceRedis({ conn: conn as never })) as SubscriptionStore)
  return {
    kind: 'redis',
    aedesOptions: { persistence, mq },
    ready: () => conns.every(c => c.status === 'ready'),
    verify: async () => { await Promise.all(conns.map(async c => { await verifyRedisCredentials(c) })) },
    close: async () => {
      await Promise.all(conns.map(closeRedis))
    },
  }
}
