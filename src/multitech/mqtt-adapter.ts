/**
 * app-connect over MQTT (NetworkAdapter `multitech-mqtt`): every publication a client makes on
 * `lorawan/…` goes to the ingest before the broker acknowledges it, the broker's connection
 * events drive presence — including a socket that dies without a will, as on a Conduit's first
 * connection (§1 "Last Will": the will is set only from the second) — and downlinks are published
 * on the Conduit's own topics.
 */
import type { Client, PublishPacket } from 'aedes'
import type { Broker } from '../broker/broker.js'
import type { Logger } from '../log.js'
import type { GatewayPresence } from '../core/presence.js'
import type { ClientLocator } from '../store/cluster-state.js'
import type { DownlinkTarget, NetworkAdapter, SendResult } from '../core/adapter.js'
import type { DownlinkRequest } from '../model/events.js'
import type { PublishOrigin } from '../broker/ingest-gates.js'
import { MULTITECH_MQTT, type AppConnectIngest } from './ingest.js'
import { ConduitRegistry, parseConduitClientId } from './conduits.js'
import { classifyTopic } from './topics.js'
import { normalizeGatewayId } from '../model/eui.js'
import { ConduitMqttDownlinks } from './downlink.js'
import { multitechRoute } from './route.js'

const NOT_OURS: SendResult = { status: 'failed', reason: 'unsupported', detail: 'the device\'s route was not recorded by the MQTT Conduit adapter' }

export class MultitechMqttAdapter implements NetworkAdapter {
  readonly name = MULTITECH_MQTT
  readonly network = 'multitech' as const
  private detach: (() => void) | undefined
  private readonly downlinks: ConduitMqttDownlinks

  constructor (private readonly deps: {
    broker: Broker
    ingest: AppConnectIngest
    conduits: ConduitRegistry
    presence: GatewayPresence
    locator: ClientLocator
    log: Logger
    /** Retransmissions of confirmed downlinks (downlinks.conduitAckRetries). */
    ackRetries: number
  }) {
    this.downlinks = new ConduitMqttDownlinks(deps.broker, deps.locator, deps.ackRetries)
  }

  /**
   * Clients' lorawan/… publications are processed before the broker acknowledges them: a Conduit's
   * uplink is PUBACKed only once its normalized event is kept. If that fails (the store is down),
   * the connection closes without PUBACK and app-connect sends the message again.
   */
  private ingest (packet: PublishPacket, origin: PublishOrigin): Promise<void> {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const shape = classifyTopic(packet.topic)
    // app-connect retains every uplink and join (§1 "Publish QoS / retain"). Their normalized
    // events replace them, so the broker does not keep one retained copy per device and topic
    // (in Redis, one more write per uplink): the raw message is still delivered live.
    if (shape.kind === 'device' && packet.payload.length > 0) packet.retain = false
    // A gateway user bound to a GW-UUID speaks for that Conduit only, whatever its messages say.
    const bound = origin.boundGateway !== undefined ? normalizeGatewayId(origin.boundGateway) : undefined
    return this.deps.ingest.keep({ shape, payload, transport: 'mqtt', clientId: origin.clientId, ...(bound !== undefined ? { boundGateway: bound } : {}) }).then(() => undefined)
  }

  async start (): Promise<void> {
    const { broker, conduits, presence, locator, log } = this.deps
    const onClient = (client: Client): void => {
      locator.connected(client.id).catch((err: unknown) => { log.warn({ err, clientId: client.id }, 'could not record the client\'s instance') })
      const parsed = parseConduitClientId(client.id)
      if (parsed === undefined) return
      const known = conduits.byClientId(client.id) !== undefined
      const conduit = conduits.learn(parsed.gatewayWire, { clientId: client.id, transport: 'mqtt', appEui: parsed.appEui })
      // A Conduit we know coming back is alive; v1.0/v1.1 send nothing on reconnect (§1 "Reconnect").
      if (known) void presence.seen(conduit.gatewayId, { network: 'multitech', protocol: conduit.version, transport: 'mqtt' })
    }
    const onDisconnect = (client: Client): void => {
      // A takeover (the same client id reconnecting, here or on another instance) closes the old
      // connection after the new one exists: then the gateway is not offline.
      const current = broker.connectedClient(client.id)
      if (current !== undefined && current !== client) return
      locator.disconnected(client.id).then(ours => {
        const conduit = conduits.byClientId(client.id)
        if (ours && conduit !== undefined) return presence.offline(conduit.gatewayId, 'connection-lost')
      }).catch((err: unknown) => { log.warn({ err, clientId: client.id }, 'could not settle a disconnected client') })
    }
    const removeGate = broker.gates.add({ owner: this.name, claims: topic => topic.startsWith('lorawan/'), handle: (packet, origin) => this.ingest(packet, origin) })
    const detachClients = broker.onClients({ connected: onClient, disconnected: onDisconnect })
    this.detach = () => { removeGate(); detachClients() }
  }

  async stop (): Promise<void> {
    this.detach?.()
    this.detach = undefined
  }

  send (target: DownlinkTarget, request: DownlinkRequest): Promise<SendResult> {
    const route = multitechRoute(target.route)
    return route === undefined ? Promise.resolve(NOT_OURS) : this.downlinks.send(route, target.devEui, request)
  }

  clear (target: DownlinkTarget): Promise<SendResult> {
    const route = multitechRoute(target.route)
    return route === undefined ? Promise.resolve(NOT_OURS) : this.downlinks.clear(route, target.devEui)
  }
}
