/**
 * The embedded Aedes broker: limits from `mqtt.limits`, the authentication and ACL hooks, and
 * error accounting. Listeners (listeners.ts) hand it authenticated-to-be connections.
 */
import { Aedes, type AedesPublishPacket, type Client } from 'aedes'
import type { Duplex } from 'node:stream'
import type { EventEmitter } from 'node:events'
import type { Component } from '../component.js'
import type { Config } from '../config/schema.js'
import type { ErrorCode } from '../errors.js'
import { LorabridgeError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { Authenticator } from '../auth/authenticator.js'
import type { BrokerStore } from './store.js'
import type { KeyValueStore } from '../store/kv.js'
import type { Identity } from '../auth/acl.js'
import { ConnectionRegistry, type ConnectionInfo } from './connections.js'
import { makeAuthenticate, makeAuthorizeForward, makeAuthorizePublish, makeAuthorizeSubscribe, type HookContext } from './hooks.js'
import { SessionOwners } from './session-owners.js'
import { OutboundQueues } from './outbound-queues.js'
import { RetainedBudget } from './retained-budget.js'
import { PublishRateLimiter } from './publish-rate.js'
import type { BanList } from './bans.js'
import { IngestGates } from './ingest-gates.js'

export interface BrokerDeps {
  config: Config
  log: Logger
  metrics: Metrics
  store: BrokerStore
  authenticator: Authenticator
  /** Where session ownership is kept (Redis in a cluster). */
  kv: KeyValueStore
  bans: BanList
}

/** Maps the errors Aedes reports for a client to our stable codes; undefined: not the client's fault. */
export function classifyClientError (err: Error): ErrorCode | undefined {
  if (err instanceof LorabridgeError) return err.code
  // CONNACK 4/5: refused by our authenticate hook, which counted and logged it already.
  const connackCode = (err as Error & { errorCode?: number }).errorCode
  if (connackCode === 4 || connackCode === 5) return undefined
  const m = err.message
  if (m === 'topic has too many levels') return 'LB_ERR_MQTT_TOPIC_LEVELS'
  if (m === 'drain timeout') return 'LB_ERR_MQTT_DRAIN_TIMEOUT'
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ECONNRESET' || code === 'EPIPE' || m === 'connection closed') return undefined
  return 'LB_ERR_MQTT_PROTOCOL'
}

const CLOSE_TIMEOUT_MS = 2000

/** What the broker facade reads from Aedes's persistence (aedes-persistence's API). */
interface AedesPersistenceReads {
  subscriptionsByTopic (topic: string): Promise<Array<{ clientId: string }>>
  createRetainedStream (pattern: string): AsyncIterable<{ topic: string, payload: Buffer | string }>
}

/** Aedes's own tables and its emitter's topic matcher (mqemitter), which its types do not declare. */
interface AedesInternals {
  clients: Record<string, (Client & { subscriptions?: Record<string, unknown> }) | undefined>
  persistence: AedesPersistenceReads
  mq: { _matcher: { match (topic: string): unknown[] } }
}

export class Broker implements Component {
  readonly name = 'broker'
  readonly connections = new ConnectionRegistry()
  /** What runs on clients' publications before PUBACK (the app-connect ingest, downlink commands). */
  readonly gates = new IngestGates()
  private aedes: Aedes | undefined
  private readonly owners: SessionOwners
  private readonly queues: OutboundQueues

  constructor (private readonly deps: BrokerDeps) {
    const { config, kv, log, metrics } = deps
    this.owners = new SessionOwners(kv, config.mqtt.sessionOwnerDays * 86_400_000)
    const limits = config.mqtt.limits
    this.queues = new OutboundQueues({ maxQueuedMessages: limits.maxQueuedMessages, maxQueuedBytes: limits.maxQueuedBytes, drainTimeout: limits.drainTimeout }, log, metrics)
  }

  /** This broker's id in the cluster (new on every start). */
  get id (): string { return this.instance.id }

  get instance (): Aedes {
    if (this.aedes === undefined) throw new Error('broker not started')
    return this.aedes
  }

  async start (): Promise<void> {
    const { config, log, metrics, store, authenticator } = this.deps
    const limits = config.mqtt.limits
    const hookContext: HookContext = {
      log, metrics, authenticator, connections: this.connections, topicRoot: config.topics.root, gates: this.gates,
      owners: this.owners, queues: this.queues, retained: new RetainedBudget(limits.retained, config.topics.root, log, metrics),
      bans: this.deps.bans, publishRate: new PublishRateLimiter(limits.publishRate),
    }
    const aedes = await Aedes.createBroker({
      ...store.aedesOptions,
      drainTimeout: limits.drainTimeout,
      maxTopicLevels: limits.maxTopicLevels,
      maxInflightInbound: limits.maxInflightInbound,
      maxClientsIdLength: limits.maxClientIdLength,
      // Aedes's in-memory emitter queues publications past 100 deliveries in flight, then drains
      // that queue by recursion (a message nobody subscribes to completes synchronously and hands
      // over the next one): under overload the stack overflowed and the daemon died. Unbounded, it
      // never queues; slow clients are bounded by drainTimeout. (mqemitter-redis never queues.)
      concurrency: 0,
      connectTimeout: limits.connectTimeout,
      authenticate: makeAuthenticate(hookContext),
      authorizePublish: makeAuthorizePublish(hookContext),
      authorizeSubscribe: makeAuthorizeSubscribe(hookContext),
      authorizeForward: makeAuthorizeForward(hookContext) as (client: Client, packet: AedesPublishPacket) => AedesPublishPacket,
    })
    metrics.sources.subscriptions = () => {
      let n = 0
      for (const client of Object.values(this.internals.clients)) n += Object.keys(client?.subscriptions ?? {}).length
      return n
    }
    aedes.on('client', () => { metrics.mqttClients.inc() })
    aedes.on('clientDisconnect', (client: Client) => {
      metrics.mqttClients.dec()
      this.releaseCleanSession(client)
    })
    aedes.on('clientError', (client: Client, err: Error) => { this.onClientError(client, err, 'clientError') })
    aedes.on('connectionError', (client: Client, err: Error) => { this.onClientError(client, err, 'connectionError') })
    // Aedes emits persistence failures (Redis down) as 'error' on the broker; unhandled, that
    // event would end the process (aedes.js DoEnqueues).
    ;(aedes as EventEmitter).on('error', (err: Error) => { log.error({ code: 'LB_ERR_REDIS', err }, 'broker persistence error') })
    aedes.on('keepaliveTimeout', (client: Client) => { log.info({ clientId: client.id }, 'keepalive timeout') })
    this.aedes = aedes
    log.info({ store: store.kind, id: aedes.id }, 'broker started')
  }

  /** Aedes reports one error per write pending on a client it cuts off; one report is enough. */
  private readonly reported = new WeakSet<Client>()

  private onClientError (client: Client, err: Error, kind: string): void {
    const code = classifyClientError(err)
    if (code !== undefined) {
      if (this.reported.has(client)) return
      this.reported.add(client)
    }
    const info = this.connections.get(client.conn)
    if (code === undefined) {
      this.deps.log.debug({ clientId: client.id, err: err.message }, 'client connection ended')
      return
    }
    // Refusals are counted where they are decided (authentication, ACL); count the rest here.
    if (code !== 'LB_ERR_MQTT_PUBLISH_DENIED') this.deps.metrics.mqttClientErrors.inc({ code })
    this.deps.log.warn({ code, kind, clientId: client.id, address: info?.remoteAddress, protocol: info?.protocol, reason: err.message }, 'client disconnected for an error')
  }

  /** Aedes's own tables, which its types do not declare; read only here. */
  private get internals (): AedesInternals {
    return this.instance as unknown as AedesInternals
  }

  /** The client connected to this instance with this id, if any (after a takeover: the new one). */
  connectedClient (clientId: string): Client | undefined {
    return this.internals.clients[clientId]
  }

  /** The filters the client connected here with this id subscribes to; undefined when it is not connected here. */
  clientFilters (clientId: string): string[] | undefined {
    const client = this.internals.clients[clientId]
    return client === undefined ? undefined : Object.keys(client.subscriptions ?? {})
  }

  /** Client ids whose sessions (stored, in Redis shared by the cluster) subscribe to a filter matching `topic`. */
  async sessionSubscribers (topic: string): Promise<string[]> {
    return (await this.internals.persistence.subscriptionsByTopic(topic)).map(s => s.clientId)
  }

  /** The retained messages whose topics match `pattern` (an MQTT filter), from the persistence. */
  async * retained (pattern: string): AsyncIterable<{ topic: string, payload: Buffer }> {
    for await (const p of this.internals.persistence.createRetainedStream(pattern)) yield { topic: p.topic, payload: Buffer.from(p.payload) }
  }

  /**
   * Publishes inside the broker, as the broker itself (no client, no ACL): subscribers,
   * persistence and, with Redis, the other instances see it like any publication. Resolves once
   * Aedes has stored (QoS 1) and dispatched it.
   */
  publish (topic: string, payload: Buffer, opts: { qos: 0 | 1, retain: boolean }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.instance.publish({ cmd: 'publish', topic, payload, qos: opts.qos, retain: opts.retain, dup: false }, err => {
        err === undefined || err === null ? resolve() : reject(err)
      })
    })
  }

  /**
   * Whether a publication on `topic` could reach anyone: a subscription on this instance (a
   * client's, or one made inside the process), or a persistent session that would queue it. With
   * Redis the other instances' subscribers are unknown here: always true.
   */
  async mayBeHeard (topic: string): Promise<boolean> {
    if (this.deps.store.kind === 'redis') return true
    const { mq, persistence } = this.internals
    if (mq._matcher.match(topic).length > 0) return true
    return (await persistence.subscriptionsByTopic(topic)).length > 0
  }

  /**
   * Subscribes inside the broker; returns the unsubscribe function. `local` tells whether the
   * message was published on this instance: in a cluster every instance receives it.
   */
  async subscribe (filter: string, handler: (topic: string, payload: Buffer, local: boolean) => void): Promise<() => Promise<void>> {
    const aedes = this.instance
    const deliver = (packet: AedesPublishPacket, cb: () => void): void => {
      try {
        handler(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), packet.brokerId === undefined || packet.brokerId === aedes.id)
      } finally {
        cb()
      }
    }
    await new Promise<void>(resolve => aedes.subscribe(filter, deliver, resolve))
    return () => new Promise<void>(resolve => aedes.unsubscribe(filter, deliver, resolve))
  }

  /** Follows clients connecting to and disconnecting from this instance; returns the detach function. */
  onClients (listener: { connected?: (client: Client) => void, disconnected?: (client: Client) => void }): () => void {
    const aedes = this.instance
    if (listener.connected !== undefined) aedes.on('client', listener.connected)
    if (listener.disconnected !== undefined) aedes.on('clientDisconnect', listener.disconnected)
    return () => {
      if (listener.connected !== undefined) aedes.off('client', listener.connected)
      if (listener.disconnected !== undefined) aedes.off('clientDisconnect', listener.disconnected)
    }
  }

  /** A clean session ends with its connection, and so does its owner's hold on the client id. */
  private releaseCleanSession (client: Client): void {
    const identity = this.connections.identity(client)
    if (identity === undefined || !client.clean) return
    // Taken over by a new connection of the same owner: the id is still in use.
    const current = this.aedes === undefined ? undefined : this.connectedClient(client.id)
    if (current !== undefined && current !== client) return
    this.owners.release(client.id, identity).catch((err: unknown) => { this.deps.log.warn({ code: 'LB_ERR_REDIS', err, clientId: client.id }, 'could not release a client id') })
  }

  /** Hands a new connection to Aedes, remembering where it came from. */
  handle (stream: Duplex, info: ConnectionInfo): void {
    this.connections.register(stream, info)
    const client = this.instance.handle(stream)
    this.queues.attach(client)
  }

  /**
   * Ends the connections of every identity `revoked` selects (a user removed or changed in the
   * users file, a console session ended): access granted at CONNECT must not outlive the grant.
   */
  revoke (revoked: (identity: Identity, client: Client, info: ConnectionInfo | undefined) => boolean, reason: string): number {
    const aedes = this.aedes
    if (aedes === undefined) return 0
    let n = 0
    for (const client of Object.values(this.internals.clients)) {
      if (client === undefined) continue
      const identity = this.connections.identity(client)
      if (identity === undefined || !revoked(identity, client, this.connections.get(client.conn))) continue
      n++
      this.deps.metrics.mqttRevoked.inc()
      this.deps.log.warn({ code: 'LB_ERR_AUTH_REVOKED', clientId: client.id, user: identity.user, via: identity.via, reason }, 'connection ended: its access was revoked')
      client.close()
    }
    return n
  }

  async stop (): Promise<void> {
    const aedes = this.aedes
    if (aedes === undefined) return
    // broker.close() disconnects every client and closes the emitter; with Redis down, the
    // emitter's QUIT would wait for a reconnect, so shutdown does not wait for it forever.
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)
      aedes.close(() => { clearTimeout(timer); resolve() })
    })
    this.aedes = undefined
  }
}
