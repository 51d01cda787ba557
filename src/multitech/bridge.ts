/**
 * The MultiTech Conduit side (STYLE §2): one app-connect ingest and one registry of Conduits,
 * shared by two network adapters — app-connect over MQTT (mqtt-adapter.ts) and over HTTP(S)
 * (below, with its routes in http-adapter.ts and its downlink queue in http-queue.ts).
 */
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { AdapterContext } from '../adapter-context.js'
import type { DownlinkTarget, NetworkAdapter, SendResult } from '../core/adapter.js'
import type { DownlinkRequest } from '../model/events.js'
import type { GatewayPresence } from '../core/presence.js'
import type { Broker } from '../broker/broker.js'
import type { EventBus } from '../core/bus.js'
import type { RouteRegistrar } from '../http/http-listeners.js'
import { ConduitRegistry } from './conduits.js'
import { AppConnectIngest, MULTITECH_HTTP } from './ingest.js'
import { MultitechMqttAdapter } from './mqtt-adapter.js'
import { appConnectRoutes } from './http-adapter.js'
import { HttpDownlinkQueue } from './http-queue.js'
import { multitechRoute, networkOf } from './route.js'
import { instanceName } from '../core/instance-status.js'

/** The retained message on `topic`, parsed; undefined when there is none or it is not JSON. */
async function retainedStatus (broker: Broker, topic: string): Promise<Record<string, unknown> | undefined> {
  for await (const p of broker.retained(topic)) {
    try { return JSON.parse(p.payload.toString('utf8')) as Record<string, unknown> } catch { return undefined }
  }
  return undefined
}

const NOT_OURS: SendResult = { status: 'failed', reason: 'unsupported', detail: 'the device\'s route was not recorded by the HTTP Conduit adapter' }

/**
 * app-connect's HTTP(S) mode (NetworkAdapter `multitech-http`): Conduits post their messages and
 * fetch their downlinks, which wait in lorabridge's queue until then.
 */
export class MultitechHttpAdapter implements NetworkAdapter {
  readonly name = MULTITECH_HTTP
  readonly network = 'multitech' as const
  readonly httpRoutes: RouteRegistrar | undefined
  private silenceCheck: NodeJS.Timeout | undefined

  constructor (private readonly deps: { config: Config, queue: HttpDownlinkQueue, presence: GatewayPresence, broker: Broker, bus: EventBus, log: Logger, now: () => Date, routes: RouteRegistrar | undefined }) {
    this.httpRoutes = deps.routes
  }

  async start (): Promise<void> {
    const held = await this.deps.queue.load()
    if (held > 0) this.deps.log.info({ held }, 'holding again the downlinks HTTP Conduits had not fetched before the restart')
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
    this.deps.queue.close()
  }

  async send (target: DownlinkTarget, req: DownlinkRequest): Promise<SendResult> {
    const route = multitechRoute(target.route)
    if (route === undefined) return NOT_OURS
    if (req.flush) this.deps.queue.flush(target.devEui, 'replaced', req.id)
    return this.deps.queue.enqueue({ app: target.app, devEui: target.devEui, route }, req)
  }

  async clear (target: DownlinkTarget): Promise<SendResult> {
    const route = multitechRoute(target.route)
    if (route === undefined) return NOT_OURS
    // app-connect's HTTP mode has no clear; what lorabridge still holds for the device is dropped.
    this.deps.queue.flush(target.devEui, 'flushed')
    return { status: 'queued', network: networkOf(route) }
  }
}

/** The two MultiTech adapters and what they share. */
export class Multitech {
  readonly conduits = new ConduitRegistry()
  readonly ingest: AppConnectIngest
  readonly queue: HttpDownlinkQueue
  readonly mqtt: MultitechMqttAdapter
  readonly http: MultitechHttpAdapter

  constructor (ctx: AdapterContext) {
    const { config, events, presence, metrics } = ctx
    const log = ctx.log('multitech')
    this.ingest = new AppConnectIngest({
      events,
      ready: ctx.ready,
      presence,
      apps: ctx.apps,
      conduits: this.conduits,
      log,
      metrics,
      includeRaw: config.events.includeRaw,
      maxPayloadBytes: config.multitech.maxPayloadBytes,
      now: ctx.now,
    })
    this.queue = new HttpDownlinkQueue(config.multitech.http.maxPendingPerDevice, config.multitech.http.downlinkTtlSeconds * 1000, (kind, o, network) => events.outcome(kind, o, network), config.downlinks.conduitAckRetries,
      { kv: ctx.kv, prefix: `httpq:${instanceName(config.dataDir)}:`, held: (app, devEui, req) => { events.held(app, devEui, req) } })
    this.mqtt = new MultitechMqttAdapter({ broker: ctx.broker, ingest: this.ingest, conduits: this.conduits, presence, locator: ctx.locator, log, ackRetries: config.downlinks.conduitAckRetries })
    const routes = config.multitech.http.enabled
      ? appConnectRoutes({
        config, ingest: this.ingest, queue: this.queue, users: ctx.users, log, metrics,
        polled: async gatewayId => {
          const conduit = this.conduits.get(gatewayId)
          // Only a Conduit that announced itself (init) over HTTP is kept alive by its polls.
          if (conduit?.transport === 'http') await presence.seen(gatewayId, { network: 'multitech', protocol: conduit.version, transport: 'http' })
        },
      })
      : undefined
    this.http = new MultitechHttpAdapter({ config, queue: this.queue, presence, broker: ctx.broker, bus: ctx.bus, log, now: ctx.now, routes })
  }

  get adapters (): NetworkAdapter[] { return [this.mqtt, this.http] }
}

