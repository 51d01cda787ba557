/**
 * Who may publish and subscribe where (PRODUCT.md §6). Pure functions of an identity and a topic,
 * so that the rules can be read and tested without a broker.
 *
 * - admin: everything (anonymous clients on a loopback listener are admins, as on Mosquitto's
 *   local-only default listener).
 * - gateway: only `lorawan/…` (app-connect's own topics). Bound to a GW-UUID (`--gateway`), every
 *   level that is a GW-UUID must be its own and wildcards are refused, so it cannot read other
 *   Conduits' downlinks or requests. v1.0 per-device topics (`lorawan/{APPEUI}/{DEVEUI}/down`) carry
 *   no GW-UUID and stay allowed.
 * - consumer: reads `{root}/{app}/…` of its applications (`*` = every application, gateway status
 *   and daemon topics); publishes `{root}/{app}/devices/{devEui}/down|clear` only with `downlink`.
 * - `$SYS/…` is for admins only, and nobody publishes there.
 */
import type { Role } from './users-file.js'
import { normalizeGatewayId } from '../model/eui.js'
import { commandOf } from '../model/topics.js'

export interface Identity {
  /** The user name; undefined for anonymous clients. */
  user: string | undefined
  role: Role
  apps: readonly string[]
  downlink: boolean
  /** Normalized GW-UUID (32 lower-case hex digits) a gateway is bound to. */
  gateway: string | undefined
  /** `token`: a one-time secret minted by the web console for an admin session. */
  via: 'password' | 'certificate' | 'certificate+password' | 'token' | 'anonymous'
}

export type Decision = { allowed: true } | { allowed: false, reason: string }

const ALLOW: Decision = { allowed: true }
const deny = (reason: string): Decision => ({ allowed: false, reason })

/**
 * app-connect v1.0 spells the GW-UUID as 32 upper-case hex digits, v1.1 as a dashed lower-case
 * UUID (multitech-app-connect.md §0); both name the same Conduit. Bindings are stored as 32 digits.
 */
export function normalizeGatewayUuid (value: string): string | undefined {
  return normalizeGatewayId(value)?.replace(/-/g, '')
}

function gatewayTopic (identity: Identity, topic: string, isFilter: boolean): Decision {
  const levels = topic.split('/')
  if (levels[0] !== 'lorawan' || levels.length < 2) return deny('gateways may only use lorawan/… topics')
  if (identity.gateway === undefined) return ALLOW
  if (isFilter && levels.some(l => l === '+' || l === '#')) return deny('a bound gateway may not use wildcards')
  for (const level of levels.slice(1)) {
    const uuid = normalizeGatewayUuid(level)
    if (uuid !== undefined && uuid !== identity.gateway) return deny('topic names another gateway')
  }
  return ALLOW
}

function consumerMayRead (identity: Identity, root: string, filter: string): Decision {
  const levels = filter.split('/')
  if (levels[0] !== root) return deny(`consumers may only read ${root}/… topics`)
  if (identity.apps.includes('*')) return ALLOW
  const app = levels[1]
  if (app === undefined || app === '+' || app === '#') return deny('filter spans applications the consumer is not granted')
  if (!identity.apps.includes(app)) return deny(`application "${app}" is not granted`)
  return ALLOW
}

function consumerMayPublish (identity: Identity, root: string, topic: string): Decision {
  const command = commandOf(root, topic)
  if (command === undefined) return deny(`consumers may only publish ${root}/{app}/devices/{devEui}/down|clear`)
  if (!identity.downlink) return deny('downlink is not granted')
  const app = command.app
  if (!identity.apps.includes('*') && !identity.apps.includes(app)) return deny(`application "${app}" is not granted`)
  return ALLOW
}

export function mayPublish (identity: Identity, root: string, topic: string): Decision {
  if (topic.startsWith('$')) return deny('$-topics are reserved for the broker')
  switch (identity.role) {
    case 'admin': return ALLOW
    case 'gateway': return gatewayTopic(identity, topic, false)
    case 'consumer': return consumerMayPublish(identity, root, topic)
  }
}

export function maySubscribe (identity: Identity, root: string, filter: string): Decision {
  if (filter.startsWith('$')) return identity.role === 'admin' ? ALLOW : deny('$SYS is for admins')
  switch (identity.role) {
    case 'admin': return ALLOW
    case 'gateway': return gatewayTopic(identity, filter, true)
    case 'consumer': return consumerMayRead(identity, root, filter)
  }
}
