/**
 * Classifies app-connect topics (multitech-app-connect.md §2.1) by segment count and segment
 * format, never by position alone: v1.0, v1.1 and 1.1.1 share the `lorawan/` root, v1.0 has two
 * GW-UUID spellings, joined may carry an empty AppEUI segment (§3 code quirk), v1.1 uplinks can
 * arrive on the v1.0 topic (§2.5), and lora-mqtt-bridge's `lorawan/<DEVEUI>/down` has the same
 * three levels as v1.1's `lorawan/<GWUUID>/down` (§5: told apart by segment length).
 */
import { isEui, isGatewayUuid, normalizeEui, normalizeGatewayId } from '../model/eui.js'

export const GATEWAY_EVENTS = ['init', 'connected', 'disconnected', 'close', 'lora_res', 'api_res', 'log_res'] as const
export const DEVICE_EVENTS = ['up', 'joined', 'moved'] as const
/** Topics that carry commands *to* a Conduit; published by back-ends, never normalized. */
export const COMMAND_EVENTS = ['down', 'clear', 'lora_req', 'api_req', 'log_req', 'config'] as const

export type GatewayEvent = typeof GATEWAY_EVENTS[number]
export type DeviceEvent = typeof DEVICE_EVENTS[number]

export type TopicShape =
  /** `lorawan/{GW}/{evt}` (v1.1) or `lorawan/{APP}/{GW}/{evt}` (v1.0). */
  | { kind: 'gateway', event: GatewayEvent, family: '1.0' | '1.1', gatewayWire: string, gatewayId: string, appEui?: string }
  /** `lorawan/{DAPP}/{DEVEUI}/{evt}` (v1.0, or v1.1 on a leftover v1.0 template), `lorawan/{GW}/{DEVEUI}/joined` (v1.0's second joined), `lorawan/{GW}/{DAPP}/{DEVEUI}/{evt}` (v1.1). */
  | { kind: 'device', event: DeviceEvent, family: '1.0' | '1.1', devEui: string, appEui?: string, gatewayWire?: string, gatewayId?: string }
  /** Commands to a Conduit (or, with a DevEUI in the 3-level shape, to a lora-mqtt-bridge device). */
  | { kind: 'command', event: string, target: 'gateway' | 'device' | 'other' }
  | { kind: 'unknown', reason: string }

function member<T extends string> (list: readonly T[], value: string): value is T {
  return (list as readonly string[]).includes(value)
}

export function classifyTopic (topic: string): TopicShape {
  const levels = topic.split('/')
  if (levels[0] !== 'lorawan') return { kind: 'unknown', reason: 'not an app-connect topic' }
  const event = levels[levels.length - 1] as string
  const mid = levels.slice(1, -1)

  if (member(COMMAND_EVENTS, event)) {
    // `lorawan/<GWUUID>/down` (v1.1, 36 characters) vs lora-mqtt-bridge's `lorawan/<DEVEUI>/down` (23).
    const target = mid.length === 1 ? (isGatewayUuid(mid[0]!) ? 'gateway' : isEui(mid[0]!) ? 'device' : 'other') : 'other'
    return { kind: 'command', event, target }
  }

  if (member(GATEWAY_EVENTS, event)) {
    if (mid.length === 1 && isGatewayUuid(mid[0]!)) {
      return { kind: 'gateway', event, family: '1.1', gatewayWire: mid[0]!, gatewayId: normalizeGatewayId(mid[0]!)! }
    }
    if (mid.length === 2 && (mid[0] === '' || isEui(mid[0]!)) && isGatewayUuid(mid[1]!)) {
      const appEui = normalizeEui(mid[0])
      return { kind: 'gateway', event, family: '1.0', gatewayWire: mid[1]!, gatewayId: normalizeGatewayId(mid[1]!)!, ...(appEui !== undefined ? { appEui } : {}) }
    }
    return { kind: 'unknown', reason: `${event} with an unrecognized gateway segment` }
  }

  if (member(DEVICE_EVENTS, event)) {
    if (mid.length === 3 && isGatewayUuid(mid[0]!) && (mid[1] === '' || isEui(mid[1]!)) && isEui(mid[2]!)) {
      const appEui = normalizeEui(mid[1])
      return { kind: 'device', event, family: '1.1', devEui: normalizeEui(mid[2])!, gatewayWire: mid[0]!, gatewayId: normalizeGatewayId(mid[0]!)!, ...(appEui !== undefined ? { appEui } : {}) }
    }
    // lora-mqtt-bridge with an `uplink_pattern` of `lorawan/%(deveui)s/up` (§5).
    if (mid.length === 1 && isEui(mid[0]!) && event !== 'moved') {
      return { kind: 'device', event, family: '1.0', devEui: normalizeEui(mid[0])! }
    }
    if (mid.length === 2 && isEui(mid[1]!)) {
      // v1.0's second joined topic names the gateway instead of the AppEUI (F8).
      if (isGatewayUuid(mid[0]!)) {
        return { kind: 'device', event, family: '1.0', devEui: normalizeEui(mid[1])!, gatewayWire: mid[0]!, gatewayId: normalizeGatewayId(mid[0]!)! }
      }
      if (mid[0] === '' || isEui(mid[0]!)) {
        const appEui = normalizeEui(mid[0])
        return { kind: 'device', event, family: '1.0', devEui: normalizeEui(mid[1])!, ...(appEui !== undefined ? { appEui } : {}) }
      }
    }
    return { kind: 'unknown', reason: `${event} with unrecognized EUI segments` }
  }
  return { kind: 'unknown', reason: `unknown event "${event}"` }
}
