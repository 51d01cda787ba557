/**
 * How lorabridge reaches a device behind a Conduit again: the MultiTech adapters' own route, kept
 * opaque by the pipeline (and in Redis in a cluster, hence the check on the way back).
 */
import type { MultitechNetwork } from '../model/events.js'
import type { RouteSummary } from '../core/routes.js'

export interface MultitechRoute {
  transport: 'mqtt' | 'http'
  protocol: '1.0' | '1.1' | '1.1.1'
  /** GW-UUID as this Conduit spells it on the wire (v1.0: 32 upper-case hex; v1.1: dashed). */
  gatewayWire: string
  /** GW-UUID, dashed lower case: the gateway's id in normalized topics. */
  gatewayId: string
  /** The device's AppEUI, dashed (v1.0 down topics are per AppEUI). */
  appEui?: string | undefined
  encoding: 'hex' | 'base64'
  /** MQTT client id of the Conduit's connection. */
  clientId?: string | undefined
}

const str = (v: unknown): v is string => typeof v === 'string'

/** The route, if `value` is one (it comes back from the route table, possibly written by another version). */
export function multitechRoute (value: unknown): MultitechRoute | undefined {
  const r = value as Partial<Record<keyof MultitechRoute, unknown>> | null
  if (r === null || typeof r !== 'object') return undefined
  if ((r.transport !== 'mqtt' && r.transport !== 'http') || (r.protocol !== '1.0' && r.protocol !== '1.1' && r.protocol !== '1.1.1')) return undefined
  if (!str(r.gatewayWire) || !str(r.gatewayId) || (r.encoding !== 'hex' && r.encoding !== 'base64')) return undefined
  if ((r.appEui !== undefined && !str(r.appEui)) || (r.clientId !== undefined && !str(r.clientId))) return undefined
  return { transport: r.transport, protocol: r.protocol, gatewayWire: r.gatewayWire, gatewayId: r.gatewayId, appEui: r.appEui, encoding: r.encoding, clientId: r.clientId }
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

export function summaryOf (route: MultitechRoute): RouteSummary {
  return { network: 'multitech', gateway: route.gatewayId, transport: route.transport, protocol: route.protocol }
}
