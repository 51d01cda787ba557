/**
 * Downlinks to Conduits, in each Conduit's own dialect (multitech-app-connect.md §2.1, §4):
 * v1.1/1.1.1 `lorawan/{GW}/down` with `deveui` in the body; v1.0 the per-device
 * `lorawan/{APPEUI}/{DEVEUI}/down`; base64, or hex for an encodeHex Conduit; QoS 1, never retained
 * (a retained downlink is replayed on every re-subscribe, §7.5).
 */
import type { Broker } from '../broker/broker.js'
import type { DownlinkRequest, MultitechNetwork } from '../model/events.js'
import { dashedEui } from '../model/eui.js'
import type { EventBus } from '../core/bus.js'
import type { DownlinkTarget, DownlinkTransport, SendResult } from '../core/downlinks.js'
import type { MultitechRoute } from '../core/routes.js'
import type { HttpDownlinkQueue } from './http-queue.js'
import type { ClientLocator } from '../store/cluster-state.js'

export interface ConduitCommand { topic: string, body: Record<string, unknown> }

/** The Conduit's downlink JSON (§4): `data` base64 or hex, `port`, `ack` for confirmed. */
export function downlinkBody (route: MultitechRoute, devEui: string, req: DownlinkRequest): Record<string, unknown> {
  return {
    deveui: dashedEui(devEui),
    data: route.encoding === 'hex' ? req.bytes.toString('hex') : req.bytes.toString('base64'),
    port: req.fPort,
    ack: req.confirmed,
  }
}

export function downlinkCommand (route: MultitechRoute, devEui: string, req: DownlinkRequest): ConduitCommand | { unsupported: string } {
  const body = downlinkBody(route, devEui, req)
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

export function networkOf (route: MultitechRoute): MultitechNetwork {
  return {
    type: 'multitech',
    transport: route.transport,
    protocol: route.protocol,
    ...(route.gatewayId !== '' ? { gateway: route.gatewayId } : {}),
    ...(route.appEui !== undefined ? { appEui: route.appEui } : {}),
  }
}

export class ConduitDownlinks implements DownlinkTransport {
  constructor (private readonly broker: Broker, private readonly bus: EventBus, private readonly httpQueue: HttpDownlinkQueue, private readonly locator: ClientLocator) {}

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

  private async deliver (target: DownlinkTarget, cmd: ConduitCommand | { unsupported: string }): Promise<SendResult> {
    const route = target.entry.route as MultitechRoute
    const network = networkOf(route)
    if ('unsupported' in cmd) return { status: 'failed', reason: 'unsupported', detail: cmd.unsupported, network }
    const session = await this.sessionFor(route.clientId, cmd.topic)
    if (session === 'offline') return { status: 'failed', reason: 'gateway-offline', detail: 'the Conduit is not connected and has no persistent session', network }
    if (session === 'not-subscribed') {
      return { status: 'failed', reason: 'unsupported', detail: `the Conduit is not subscribed to ${cmd.topic} (app-connect v1.0 subscribes per device only for devices it knew at start; prefer v1.1)`, network }
    }
    await this.bus.publish(cmd.topic, cmd.body, { qos: 1, retain: false })
    return { status: 'queued', network }
  }

  async send (target: DownlinkTarget, req: DownlinkRequest): Promise<SendResult> {
    const route = target.entry.route as MultitechRoute
    if (route.transport === 'http') {
      if (req.flush) this.httpQueue.flush(target.devEui)
      return this.httpQueue.enqueue(target, req)
    }
    if (req.flush) {
      const cleared = await this.deliver(target, clearCommand(route, target.devEui))
      if (cleared.status === 'failed') return { ...cleared, detail: `flush: ${cleared.detail}` }
    }
    return this.deliver(target, downlinkCommand(route, target.devEui, req))
  }

  async clear (target: DownlinkTarget): Promise<SendResult> {
    const route = target.entry.route as MultitechRoute
    if (route.transport === 'http') {
      // app-connect's HTTP mode has no clear; what lorabridge still holds for the device is dropped.
      this.httpQueue.flush(target.devEui)
      return { status: 'queued', network: networkOf(route) }
    }
    return this.deliver(target, clearCommand(route, target.devEui))
  }
}
