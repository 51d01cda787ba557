/**
 * The broker's persistence and message emitter: Aedes's in-memory defaults, or, with `redis.url`,
 * aedes-persistence-redis + mqemitter-redis so that sessions, retained messages and QoS 1 queues
 * survive a restart and several instances form one cluster. Version choice: docs/dependencies.md.
 */
import persistenceRedis from 'aedes-persistence-redis'
import mqemitterRedis from 'mqemitter-redis'
import type { Redis } from 'ioredis'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import { createRedisConnection, closeRedis } from '../store/redis.js'

export interface BrokerStore {
  kind: 'memory' | 'redis'
  /** Options for Aedes.createBroker. */
  aedesOptions: { persistence?: unknown, mq?: unknown }
  /** True when every backing connection is usable. */
  ready (): boolean
  close (): Promise<void>
}

export function createBrokerStore (config: Config, log: Logger): BrokerStore {
  if (config.redis === undefined) {
    return { kind: 'memory', aedesOptions: {}, ready: () => true, close: async () => {} }
  }
  const conns: Redis[] = [
    createRedisConnection(config.redis, 'persistence', log),
    createRedisConnection(config.redis, 'pub', log),
    createRedisConnection(config.redis, 'sub', log),
  ]
  const [conn, pubConn, subConn] = conns as [Redis, Redis, Redis]
  const mq = mqemitterRedis({ pubConn, subConn })
  const persistence = persistenceRedis({ conn })
  return {
    kind: 'redis',
    aedesOptions: { persistence, mq },
    ready: () => conns.every(c => c.status === 'ready'),
    close: async () => {
      await Promise.all(conns.map(closeRedis))
    },
  }
}
