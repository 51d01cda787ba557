/**
 * Downlinks to Conduits, in each Conduit's own dialect (multitech-app-connect.md §2.1, §4):
 * v1.1/1.1.1 `lorawan/{GW}/down` with `deveui` in the body; v1.0 the per-device
 * `lorawan/{APPEUI}/{DEVEUI}/down`; base64, or hex for an encodeHex Conduit; QoS 1, never retained
 * (a retained downlink is replayed on every re-subscribe, §7.5).
 */
import type { Broker } from '../broker/broker.js'
import type { DownlinkRequest } from '../model/events.js'
import { dashedEui } from '../model/eui.js'
import type { SendResult } from '../core/adapter.js'
import type { ClientLocator } from '../store/cluster-state.js'
import { networkOf, type MultitechRoute } from './route.js'

export interface ConduitCommand { topic: string, body: Record<string, unknown> }

/**
 * The Conduit's downlink JSON (§4): `data` base64 or hex, `port`, `ack` for confirmed, with
 * `ack_retries` (how many times the network server retransmits it without an ACK: what
 * `not-acknowledged` is concluded from, docs/downlinks.md).
 */
export function downlinkBody (route: MultitechRoute, devEui: string, req: DownlinkRequest, ackRetries: number): Record<string, unknown> {
  const body: Record<string, unknown> = {
    deveui: dashedEui(devEui),
    data: route.encoding === 'hex' ? req.bytes.toString('hex') : req.bytes.toString('base64'),
    port: req.fPort,
    ack: req.confirmed,
  }
  if (req.confirmed) body.ack_retries = ackRetries
  return body
}

/** app-connect over MQTT hands a downlink to the Conduit's network server at once: an expiry cannot be kept. */
export const MQTT_EXPIRY_CAVEAT = 'expiresAt/ttlSeconds: app-connect over MQTT has no expiry; the Conduit\'s network server sends it at the device\'s next receive window, however late'

export function downlinkCommand (route: MultitechRoute, devEui: string, req: DownlinkRequest, ackRetries: number): ConduitCommand | { unsupported: string } {
  const body = downlinkBody(route, devEui, req, ackRetries)
  if (route.protocol !== '1.0') {
    if (route.gatewayWire === '') return { unsupported: 'the Conduit of this device is not known yet' }
    return { topic: `lorawan/${route.gatewayWire}/down`, body }
  }
  if (route.appEui !== undefined) return { topic: `lorawan/${route.appEui}/${dashedEui(devEui)}/down`, body }
  if (route.gatewayWire !== '') return { topic: `lorawan/${route.gatewayWire}/${dashedEui(devEui)}/down`, body }
  return { unsupported: 'neither the AppEUI nor the Conduit of this device is known' }
}

/** v1.1 has no clear topic; 1.1.1 clears by `deveui`; v1.0 per device with a JSON body (§7.6: `{}`, not empty). */
export function clearCommand (route: MultitechRoute, devEui: string): ConduitCommand | { unsupported: string } {
  if (route.protocol === '1.1') return { unsupported: 'app-connect v1.1 has no clear; 1.1.1 and 1.0 do' }
  if (route.protocol === '1.1.1') {
    return route.gatewayWire === '' ? { unsupported: 'the Conduit of this device is not known yet' } : { topic: `lorawan/${route.gatewayWire}/clear`, body: { deveui: dashedEui(devEui) } }
  }
  if (route.appEui !== undefined) return { topic: `lorawan/${route.appEui}/${dashedEui(devEui)}/clear`, body: {} }
  return { unsupported: 'the AppEUI of this device is not known' }
}

/** MQTT topic filter matching [MQTT-4.7]. */
export function filterMatches (filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false
  }
  return f.length === t.length
}

/** Downlinks to Conduits connected over MQTT: published on the Conduit's own topics. */
export class ConduitMqttDownlinks {
  constructor (private readonly broker: Broker, private readonly locator: ClientLocator, private readonly ackRetries: number) {}

  /**
   * "Handed to the Conduit's session" (issue scope): the Conduit's client is connected and
   * subscribed to the topic, or its persistent session (clean=false) holds a matching subscription
   * and will receive the message on reconnect.
   */
  private async sessionFor (clientId: string | undefined, topic: string): Promise<'connected' | 'persistent' | 'not-subscribed' | 'offline'> {
    if (clientId === undefined) return 'offline'
    const filters = this.broker.clientFilters(clientId)
    if (filters !== undefined) return filters.some(f => filterMatches(f, topic)) ? 'connected' : 'not-subscribed'
    // Connected to another instance of the cluster: the publication reaches it through Redis.
    if (await this.locator.holder(clientId) !== undefined) return 'connected'
    return (await this.broker.sessionSubscribers(topic)).includes(clientId) ? 'persistent' : 'offline'
  }

  private async deliver (route: MultitechRoute, cmd: ConduitCommand | { unsupported: string }): Promise<SendResult> {
    const network = networkOf(route)
    if ('unsupported' in cmd) return { status: 'failed', reason: 'unsupported', detail: cmd.unsupported, network }
    const session = await this.sessionFor(route.clientId, cmd.topic)
    if (session === 'offline') return { status: 'failed', reason: 'gateway-offline', detail: 'the Conduit is not connected and has no persistent session', network }
    if (session === 'not-subscribed') {
      return { status: 'failed', reason: 'unsupported', detail: `the Conduit is not subscribed to ${cmd.topic} (app-connect v1.0 subscribes per device only for devices it knew at start; prefer v1.1)`, network }
    }
    await this.broker.publish(cmd.topic, Buffer.from(JSON.stringify(cmd.body)), { qos: 1, retain: false })
    return { status: 'queued', network }
  }

  async send (route: MultitechRoute, devEui: string, req: DownlinkRequest): Promise<SendResult> {
    if (req.flush) {
      const cleared = await this.deliver(route, clearCommand(route, devEui))
      if (cleared.status === 'failed') return { ...cleared, detail: `flush: ${cleared.detail}` }
    }
    const sent = await this.deliver(route, downlinkCommand(route, devEui, req, this.ackRetries))
    return sent.status === 'queued' && req.expiresAt !== undefined ? { ...sent, caveats: [MQTT_EXPIRY_CAVEAT] } : sent
  }

  clear (route: MultitechRoute, devEui: string): Promise<SendResult> {
    return this.deliver(route, clearCommand(route, devEui))
  }
}
