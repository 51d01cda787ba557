/**
 * app-connect over MQTT: every publication a client makes on `lorawan/…` goes to the ingest, and
 * the broker's connection events drive presence — including a socket that dies without a will,
 * as on a Conduit's first connection (§1 "Last Will": the will is set only from the second).
 */
import type { Client, PublishPacket } from 'aedes'
import type { Broker } from '../broker/broker.js'
import type { Logger } from '../log.js'
import type { GatewayPresence } from '../core/presence.js'
import type { ClientLocator } from '../store/cluster-state.js'
import type { HookContext } from '../broker/hooks.js'
import type { AppConnectIngest } from './ingest.js'
import { ConduitRegistry, parseConduitClientId } from './conduits.js'
import { classifyTopic } from './topics.js'
import { normalizeGatewayId } from '../model/eui.js'

export class AppConnectMqtt {
  private detach: (() => void) | undefined

  constructor (private readonly deps: {
    broker: Broker
    beforeAck: HookContext['beforeAck']
    ingest: AppConnectIngest
    conduits: ConduitRegistry
    presence: GatewayPresence
    locator: ClientLocator
    log: Logger
  }) {}

  start (): void {
    const broker = this.deps.broker.instance
    // Clients' lorawan/… publications are processed before Aedes acknowledges them: a Conduit's
    // uplink is PUBACKed only once its normalized event is kept. If that fails (the store is
    // down), the connection closes without PUBACK and app-connect sends the message again.
    this.deps.beforeAck.gate = (clientId: string | undefined, packet: PublishPacket, boundGateway: string | undefined) => {
      if (!packet.topic.startsWith('lorawan/')) return undefined
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      const shape = classifyTopic(packet.topic)
      // app-connect retains every uplink and join (§1 "Publish QoS / retain"). Their normalized
      // events replace them, so the broker does not keep one retained copy per device and topic
      // (in Redis, one more write per uplink): the raw message is still delivered live.
      if (shape.kind === 'device' && packet.payload.length > 0) packet.retain = false
      // A gateway user bound to a GW-UUID speaks for that Conduit only, whatever its messages say.
      const bound = boundGateway !== undefined ? normalizeGatewayId(boundGateway) : undefined
      return this.deps.ingest.handle({ shape, payload, transport: 'mqtt', clientId, ...(bound !== undefined ? { boundGateway: bound } : {}) }).then(() => undefined)
    }
    const onClient = (client: Client): void => {
      this.deps.locator.connected(client.id).catch((err: unknown) => { this.deps.log.warn({ err, clientId: client.id }, 'could not record the client\'s instance') })
      const parsed = parseConduitClientId(client.id)
      if (parsed === undefined) return
      const known = this.deps.conduits.byClientId(client.id) !== undefined
      const conduit = this.deps.conduits.learn(parsed.gatewayWire, { clientId: client.id, transport: 'mqtt', appEui: parsed.appEui })
      // A Conduit we know coming back is alive; v1.0/v1.1 send nothing on reconnect (§1 "Reconnect").
      if (known) void this.deps.presence.seen(conduit.gatewayId, { network: 'multitech', protocol: conduit.version, transport: 'mqtt' })
    }
    const onDisconnect = (client: Client): void => {
      // A takeover (the same client id reconnecting, here or on another instance) closes the old
      // connection after the new one exists: then the gateway is not offline.
      const current = this.deps.broker.connectedClient(client.id)
      if (current !== undefined && current !== client) return
      this.deps.locator.disconnected(client.id).then(ours => {
        const conduit = this.deps.conduits.byClientId(client.id)
        if (ours && conduit !== undefined) return this.deps.presence.offline(conduit.gatewayId, 'connection-lost')
      }).catch((err: unknown) => { this.deps.log.warn({ err, clientId: client.id }, 'could not settle a disconnected client') })
    }
    broker.on('client', onClient)
    broker.on('clientDisconnect', onDisconnect)
    this.detach = () => {
      delete this.deps.beforeAck.gate
      broker.off('client', onClient)
      broker.off('clientDisconnect', onDisconnect)
    }
  }

  stop (): void {
    this.detach?.()
    this.detach = undefined
  }
}
