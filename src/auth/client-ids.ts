/**
 * Which client ids an identity may connect with. A client id names a session: whoever connects
 * with it takes over the live connection and inherits the stored session (its subscriptions and
 * queued QoS 1 messages). app-connect derives a Conduit's client id from its GW-UUID
 * (`lorawan/<app eui>/<GW-UUID>`), and lorabridge attributes a connection's traffic and presence
 * to the Conduit its client id names — so those ids belong to gateways, and a bound gateway may
 * only use ids that name its own GW-UUID. Ownership of other ids is SessionOwners' job.
 */
import { normalizeGatewayUuid, type Decision, type Identity } from './acl.js'

const ALLOW: Decision = { allowed: true }

export function mayUseClientId (identity: Identity, clientId: string): Decision {
  if (identity.role === 'admin') return ALLOW
  if (clientId.includes('\u0000')) return { allowed: false, reason: 'client id contains U+0000' }
  if (!clientId.startsWith('lorawan/')) return ALLOW
  if (identity.role !== 'gateway') return { allowed: false, reason: 'client ids lorawan/… are reserved for gateways' }
  if (identity.gateway === undefined) return ALLOW
  for (const level of clientId.split('/').slice(1)) {
    const uuid = normalizeGatewayUuid(level)
    if (uuid !== undefined && uuid !== identity.gateway) return { allowed: false, reason: 'client id names another gateway' }
  }
  return ALLOW
}
