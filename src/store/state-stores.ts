/**
 * lorabridge's own state, chosen once for the whole daemon: in memory for a single instance, or in
 * Redis (under `<redis.keyPrefix>lorabridge:`, beside the broker's persistence) when `redis` is
 * configured, so that the instances of a cluster agree (docs/cluster.md): the key-value store,
 * frames already published, device routes, which instance holds which MQTT client, ThingPark
 * tokens accepted, and rule cooldowns.
 */
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import { MemoryDeduplicator, type Deduplicator } from '../core/dedup.js'
import { MemoryRouteTable, type RouteTable } from '../core/routes.js'
import { MemoryReplayMemory, RedisReplayMemory, type ReplayMemory } from '../thingpark/replay-memory.js'
import { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from './kv.js'
import { closeRedis, createRedisConnection, verifyRedisCredentials, type RedisConnection } from './redis.js'
import { MemoryClientLocator, MemoryCooldowns, RedisClientLocator, RedisCooldowns, RedisDeduplicator, RedisRouteTable, type ClientLocator, type Cooldowns } from './cluster-state.js'

export interface StateStores {
  kind: 'memory' | 'redis'
  kv: KeyValueStore
  dedup: Deduplicator
  routes: RouteTable
  locator: ClientLocator
  replays: ReplayMemory
  cooldowns: Cooldowns
  /** The Redis connection and key prefix, for state other modules keep there (the console's device history). */
  redis: { connection: RedisConnection, prefix: string } | undefined
  /** Start-up: rejects with LB_ERR_REDIS_AUTH when Redis refuses the credentials. */
  verify (): Promise<void>
  /** Stops the stores' timers (sweepers, the locator's refresh). */
  stop (): void
  /** Closes the Redis connection, after everything that uses it has stopped. */
  close (): Promise<void>
}

export interface StateStoreOptions {
  /** This instance's id in the cluster. */
  instance: string
  /** The daemon's clock: in-memory expiries follow it (tests inject one to cross windows). */
  clockMs: () => number
  /** A ThingPark token forgotten before its time because the in-memory replay memory was full. */
  onReplayEviction: () => void
}

export function createStateStores (config: Config, log: Logger, o: StateStoreOptions): StateStores {
  const dedupMs = config.events.dedupWindowSeconds * 1000
  const spreadMs = config.events.dedupSpreadSeconds * 1000
  const redis: RedisConnection | undefined = config.redis !== undefined ? createRedisConnection(config.redis, 'state', log) : undefined
  const stores = redis === undefined
    ? {
        kind: 'memory' as const,
        kv: new MemoryKeyValueStore(),
        dedup: new MemoryDeduplicator(dedupMs, undefined, o.clockMs, spreadMs),
        routes: new MemoryRouteTable(),
        locator: new MemoryClientLocator(o.instance),
        replays: new MemoryReplayMemory(config.thingpark.replayMemoryMaxEntries, o.clockMs, o.onReplayEviction),
        cooldowns: new MemoryCooldowns(),
      }
    : (() => {
        const prefix = `${config.redis?.keyPrefix ?? ''}lorabridge:`
        return {
          kind: 'redis' as const,
          kv: new RedisKeyValueStore(redis, prefix),
          dedup: new RedisDeduplicator(redis, prefix, dedupMs, spreadMs),
          routes: new RedisRouteTable(redis, prefix),
          locator: new RedisClientLocator(redis, prefix, o.instance),
          replays: new RedisReplayMemory(redis, prefix, o.clockMs),
          cooldowns: new RedisCooldowns(redis, prefix),
        }
      })()
  return {
    ...stores,
    redis: redis === undefined ? undefined : { connection: redis, prefix: `${config.redis?.keyPrefix ?? ''}lorabridge:` },
    verify: async () => { if (redis !== undefined) await verifyRedisCredentials(redis) },
    stop: () => { stores.dedup.close(); stores.replays.close(); stores.locator.close() },
    close: async () => { if (redis !== undefined) await closeRedis(redis) },
  }
}
