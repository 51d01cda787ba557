// aedes-persistence-redis ships no types; we only construct it and hand it to Aedes.
declare module 'aedes-persistence-redis' {
  import type { Redis, Cluster } from 'ioredis'
  interface RedisPersistenceOptions {
    conn?: Redis | Cluster
    cluster?: unknown
    maxSessionDelivery?: number
    packetTTL?: (packet: unknown) => number
    [key: string]: unknown
  }
  function persistence (opts?: RedisPersistenceOptions): unknown
  export default persistence
}
