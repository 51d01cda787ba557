/**
 * app-connect over MQTT: every publication a client makes on `lorawan/…` goes to the ingest, and
 * the broker's connection events drive presence — including a socket that dies without a will,
 * as on a Conduit's first connection (§1 "Last Will": the will is set only from the second).
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { Logger } from '../log.js'
import type { GatewayPresence } from '../core/presence.js'
import type { AppConnectIngest } from './ingest.js'
import { ConduitRegistry, parseConduitClientId } from './conduits.js'
import { classifyTopic } from './topics.js'

export class AppConnectMqtt {
  private detach: (() => void) | undefined

  constructor (private readonly deps: { broker: () => Aedes, ingest: AppConnectIngest, conduits: ConduitRegistry, presence: GatewayPresence, log: Logger }) {}

  start (): void {
    const broker = this.deps.broker()
    const onPublish = (packet: AedesPublishPacket, client: Client | null): void => {
      // Only what clients publish: our own publications (client null) are not app-connect input.
      if (client === null || !packet.topic.startsWith('lorawan/')) return
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      this.deps.ingest.handle({ shape: classifyTopic(packet.topic), payload, transport: 'mqtt', clientId: client.id })
        .catch((err: unknown) => { this.deps.log.error({ err, topic: packet.topic, clientId: client.id }, 'app-connect message not processed') })
    }
    const onClient = (client: Client): void => {
      const parsed = parseConduitClientId(client.id)
      if (parsed === undefined) return
      const known = this.deps.conduits.byClientId(client.id) !== undefined
      const conduit = this.deps.conduits.learn(parsed.gatewayWire, { clientId: client.id, transport: 'mqtt', appEui: parsed.appEui })
      // A Conduit we know coming back is alive; v1.0/v1.1 send nothing on reconnect (§1 "Reconnect").
      if (known) void this.deps.presence.seen(conduit.gatewayId, { network: 'multitech', protocol: conduit.version, transport: 'mqtt' })
    }
    const onDisconnect = (client: Client): void => {
      const conduit = this.deps.conduits.byClientId(client.id)
      if (conduit === undefined) return
      // A takeover (same client id reconnecting) closes the old connection after the new one exists.
      const current = (broker as unknown as { clients: Record<string, Client | undefined> }).clients[client.id]
      if (current !== undefined && current !== client) return
      void this.deps.presence.offline(conduit.gatewayId, 'connection-lost')
    }
    broker.on('publish', onPublish)
    broker.on('client', onClient)
    broker.on('clientDisconnect', onDisconnect)
    this.detach = () => {
      broker.off('publish', onPublish)
      broker.off('client', onClient)
      broker.off('clientDisconnect', onDisconnect)
    }
  }

  stop (): void {
    this.detach?.()
    this.detach = undefined
  }
}
