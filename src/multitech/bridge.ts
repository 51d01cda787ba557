/**
 * The MultiTech Conduit adapter (STYLE §2: one network server behind one small interface): the
 * app-connect ingest shared by MQTT and HTTP, the MQTT hook-up, the HTTP routes and the downlink
 * transport.
 */
import type { Broker } from '../broker/broker.js'
import type { Component } from '../component.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { UsersStore } from '../auth/users-file.js'
import type { ApplicationResolver } from '../model/applications.js'
import type { EventBus } from '../core/bus.js'
import type { Deduplicator } from '../core/dedup.js'
import type { GatewayPresence } from '../core/presence.js'
import type { RouteTable } from '../core/routes.js'
import type { RouteRegistrar } from '../http/http-listeners.js'
import { ConduitRegistry } from './conduits.js'
import { AppConnectIngest } from './ingest.js'
import { AppConnectMqtt } from './mqtt-adapter.js'
import { appConnectRoutes } from './http-adapter.js'
import { HttpDownlinkQueue } from './http-queue.js'
import { ConduitDownlinks } from './downlink.js'
import type { ClientLocator } from '../store/cluster-state.js'
import type { OutcomeReporter } from '../core/downlink-outcomes.js'
import type { HookContext } from '../broker/hooks.js'

export interface MultitechDeps {
  config: Config
  /** Publishes downlink outcomes (HTTP Conduits fetch theirs later). */
  report: OutcomeReporter
  broker: Broker
  bus: EventBus
  dedup: Deduplicator
  routes: RouteTable
  presence: GatewayPresence
  apps: ApplicationResolver
  users: UsersStore
  locator: ClientLocator
  beforeAck: HookContext['beforeAck']
  log: Logger
  metrics: Metrics
  now: () => Date
  ready: () => boolean
}

/** The retained message on `topic`, parsed; undefined when there is none or it is not JSON. */
async function retainedStatus (broker: Broker, topic: string): Promise<Record<string, unknown> | undefined> {
  for await (const p of broker.retained(topic)) {
    try { return JSON.parse(p.payload.toString('utf8')) as Record<string, unknown> } catch { return undefined }
  }
  return undefined
}

export class MultitechBridge implements Component {
  readonly name = 'multitech'
  readonly conduits = new ConduitRegistry()
  readonly ingest: AppConnectIngest
  readonly queue: HttpDownlinkQueue
  readonly downlinks: ConduitDownlinks
  readonly httpRoutes: RouteRegistrar
  private readonly mqtt: AppConnectMqtt

  constructor (private readonly deps: MultitechDeps) {
    const { config } = deps
    this.ingest = new AppConnectIngest({
      bus: deps.bus,
      dedup: deps.dedup,
      routes: deps.routes,
      presence: deps.presence,
      apps: deps.apps,
      conduits: this.conduits,
      log: deps.log,
      metrics: deps.metrics,
      includeRaw: config.events.includeRaw,
      maxPayloadBytes: config.multitech.maxPayloadBytes,
      now: deps.now,
    })
    this.queue = new HttpDownlinkQueue(config.multitech.http.maxPendingPerDevice, config.multitech.http.downlinkTtlSeconds * 1000, deps.report)
    this.downlinks = new ConduitDownlinks(deps.broker, deps.bus, this.queue, deps.locator)
    this.mqtt = new AppConnectMqtt({ broker: deps.broker, beforeAck: deps.beforeAck, ingest: this.ingest, conduits: this.conduits, presence: deps.presence, locator: deps.locator, log: deps.log })
    this.httpRoutes = appConnectRoutes({
      config, ingest: this.ingest, queue: this.queue, users: deps.users, log: deps.log, metrics: deps.metrics, ready: deps.ready,
      polled: async gatewayId => {
        const conduit = this.conduits.get(gatewayId)
        // Only a Conduit that announced itself (init) over HTTP is kept alive by its polls.
        if (conduit?.transport === 'http') await deps.presence.seen(gatewayId, { network: 'multitech', protocol: conduit.version, transport: 'http' })
      },
    })
  }

  private silenceCheck: NodeJS.Timeout | undefined

  async start (): Promise<void> {
    this.mqtt.start()
    const { pollIntervalSeconds, silentAfterSeconds } = this.deps.config.multitech.http
    const every = Math.max(1000, Math.min(pollIntervalSeconds, silentAfterSeconds / 4) * 1000)
    this.silenceCheck = setInterval(() => {
      this.markSilentOffline().catch((err: unknown) => { this.deps.log.warn({ err }, 'could not check HTTP Conduits\' presence') })
    }, every)
    this.silenceCheck.unref()
  }

  /**
   * HTTP Conduits have no connection whose end says they are gone: one that sends nothing for
   * `silentAfterSeconds` goes offline. In a cluster its requests may reach another instance, which
   * keeps the retained status's `lastSeen` moving: that counts too.
   */
  private async markSilentOffline (): Promise<void> {
    const { presence, config, bus, broker } = this.deps
    const cutoff = this.deps.now().getTime() - config.multitech.http.silentAfterSeconds * 1000
    for (const gatewayId of presence.silentSince(cutoff, 'http')) {
      const retained = await retainedStatus(broker, bus.gatewayTopic(gatewayId))
      if (retained !== undefined && retained.online === true && Date.parse(String(retained.lastSeen)) >= cutoff) continue
      await presence.offline(gatewayId, 'silent')
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.silenceCheck)
    this.mqtt.stop()
    this.queue.close()
  }
}
