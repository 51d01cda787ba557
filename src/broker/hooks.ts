/**
 * The Aedes hooks, as small named functions over one context (STYLE §6). Aedes hooks are
 * callback-style: promises are bridged with `.then(ok, err)` so that a rejection can never leave a
 * client hanging, and `authorizeForward` stays synchronous.
 */
import type { Client, AuthenticateError, AedesPublishPacket, PublishPacket, Subscription } from 'aedes'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { mayPublish, maySubscribe } from '../auth/acl.js'
import { AuthFailure, type Authenticator } from '../auth/authenticator.js'
import { mayUseClientId } from '../auth/client-ids.js'
import { LorabridgeError } from '../errors.js'
import type { ConnectionRegistry } from './connections.js'
import type { SessionOwners } from './session-owners.js'
import type { OutboundQueues } from './outbound-queues.js'
import type { RetainedBudget } from './retained-budget.js'
import type { BanList } from './bans.js'
import type { PublishRateLimiter } from './publish-rate.js'
import type { IngestGates } from './ingest-gates.js'

export interface HookContext {
  log: Logger
  metrics: Metrics
  authenticator: Authenticator
  connections: ConnectionRegistry
  topicRoot: string
  /** Work done on clients' publications before they are acknowledged (ingest-gates.ts). */
  gates: IngestGates
  owners: SessionOwners
  queues: OutboundQueues
  retained: RetainedBudget
  bans: BanList
  publishRate: PublishRateLimiter
}

/** [MQTT-1.5.3-2]: U+0000 is not allowed in a topic; libmosquitto clients disconnect on it. */
const hasNul = (s: string): boolean => s.includes('\u0000')

export function makeAuthenticate (ctx: HookContext) {
  return function authenticate (client: Client, username: string | undefined, password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    const info = ctx.connections.get(client.conn)
    if (info === undefined) {
      // Every connection goes through a listener that registers it; anything else is a bug.
      done(Object.assign(new Error('unknown connection'), { returnCode: 3 }) as AuthenticateError, false)
      return
    }
    // Bans first: a banned client costs no password hash.
    const banned = ctx.bans.match({ address: info.remoteAddress, clientId: client.id, user: username !== undefined && username !== '' ? username : info.certificateUser })
    const authentication = banned !== undefined
      ? Promise.reject(new AuthFailure('LB_ERR_MQTT_BANNED', `banned ${banned.kind} "${banned.value}"${banned.reason !== undefined ? ` (${banned.reason})` : ''}`, 5))
      : ctx.authenticator.authenticate({
        username,
        password,
        certificateUser: info.certificateUser,
        certificate: info.certificate,
        anonymousAllowed: info.listener.anonymous,
        address: info.remoteAddress,
        oneTimeAllowed: info.console === true,
      })
    authentication.then(identity => {
      // A will is published after its owner is gone (by another instance, in a cluster, with no
      // client to check), so its topic is checked now. Aedes keeps the CONNECT's will on `_will`.
      const willTopic = (client as Client & { _will?: { topic?: string } })._will?.topic
      if (willTopic !== undefined && (hasNul(willTopic) || !mayPublish(identity, ctx.topicRoot, willTopic).allowed)) {
        throw new AuthFailure('LB_ERR_AUTH_NOT_AUTHORIZED', `will topic "${willTopic}" is not allowed for this user`, 5)
      }
      const id = mayUseClientId(identity, client.id)
      if (!id.allowed) throw new AuthFailure('LB_ERR_AUTH_CLIENT_ID', id.reason, 5)
      // Last: the claim is the one check with a lasting effect.
      return ctx.owners.claim(client.id, identity).then(owned => {
        if (!owned.allowed) throw new AuthFailure('LB_ERR_AUTH_CLIENT_ID_TAKEN', owned.reason, 2)
        return identity
      })
    }).then(identity => {
      ctx.connections.setIdentity(client, identity)
      // Kept so that the console session's end can close what its secret opened.
      if (identity.via === 'token' && password !== undefined) ctx.connections.setSecret(client, password.toString('utf8'))
      ctx.log.info({ clientId: client.id, user: identity.user, role: identity.role, via: identity.via, protocol: info.protocol, address: info.remoteAddress }, 'client authenticated')
      done(null, true)
    }, (err: unknown) => {
      const failure = err instanceof AuthFailure ? err : undefined
      const code = failure?.code ?? 'LB_ERR_AUTH_NOT_AUTHORIZED'
      ctx.metrics.authFailures.inc({ code })
      ctx.log.warn({ code, clientId: client.id, user: username, address: info.remoteAddress, protocol: info.protocol, reason: (err as Error).message }, 'authentication refused')
      const returnCode = failure?.returnCode ?? 5
      done(Object.assign(new Error((err as Error).message), { returnCode }) as AuthenticateError, false)
    })
  }
}

/** Refusal of a publish: Aedes closes the connection [MQTT-3.3.5-2], so the error says why. */
export class PublishDenied extends LorabridgeError {
  constructor (reason: string) { super('LB_ERR_MQTT_PUBLISH_DENIED', reason) }
}

export function makeAuthorizePublish (ctx: HookContext) {
  return function authorizePublish (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    // client is null for a will Aedes publishes on a dead broker's behalf; it was authorized when
    // the owner connected (see authorizeWill below).
    const identity = client === null ? undefined : ctx.connections.identity(client)
    const accept = (): void => {
      if (packet.retain && identity !== undefined) {
        const verdict = ctx.retained.check(identity.user ?? 'anonymous', packet.topic, packet.payload.length === 0)
        if (!verdict.keep) packet.retain = false
      }
      callback(null)
    }
    const pass = (): void => {
      const pending = ctx.gates.run(packet, { clientId: client?.id, boundGateway: identity?.gateway })
      if (pending === undefined) { accept(); return }
      pending.then(accept, (err: unknown) => callback(err as Error))
    }
    if (client === null) { pass(); return }
    ctx.metrics.mqttMessagesReceived.inc()
    if (hasNul(packet.topic)) {
      ctx.log.warn({ code: 'LB_ERR_MQTT_TOPIC_INVALID', clientId: client.id, user: identity?.user, topic: packet.topic }, 'publish to a topic containing U+0000; closing the connection')
      callback(new LorabridgeError('LB_ERR_MQTT_TOPIC_INVALID', 'topic contains U+0000 [MQTT-1.5.3-2]'))
      return
    }
    const decision = identity === undefined ? { allowed: false as const, reason: 'not authenticated' } : mayPublish(identity, ctx.topicRoot, packet.topic)
    if (decision.allowed) {
      const hold = ctx.publishRate.enabled ? ctx.publishRate.delay(client, packet.payload.length) : 0
      if (hold === 0) { pass(); return }
      ctx.metrics.mqttThrottled.inc()
      setTimeout(pass, hold)
      return
    }
    ctx.metrics.mqttDenied.inc({ action: 'publish', role: identity?.role ?? 'none' })
    ctx.log.warn({ code: 'LB_ERR_MQTT_PUBLISH_DENIED', clientId: client.id, user: identity?.user, topic: packet.topic, reason: decision.reason }, 'publish denied')
    callback(new PublishDenied(decision.reason))
  }
}

export function makeAuthorizeSubscribe (ctx: HookContext) {
  return function authorizeSubscribe (client: Client, sub: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void {
    const identity = ctx.connections.identity(client)
    if (hasNul(sub.topic)) {
      ctx.metrics.mqttClientErrors.inc({ code: 'LB_ERR_MQTT_TOPIC_INVALID' })
      ctx.log.warn({ code: 'LB_ERR_MQTT_TOPIC_INVALID', clientId: client.id, user: identity?.user, topic: sub.topic }, 'subscription to a filter containing U+0000 refused')
      callback(null, null)
      return
    }
    const decision = identity === undefined ? { allowed: false as const, reason: 'not authenticated' } : maySubscribe(identity, ctx.topicRoot, sub.topic)
    if (decision.allowed) { callback(null, sub); return }
    ctx.metrics.mqttDenied.inc({ action: 'subscribe', role: identity?.role ?? 'none' })
    ctx.log.warn({ code: 'LB_ERR_MQTT_SUBSCRIBE_DENIED', clientId: client.id, user: identity?.user, topic: sub.topic, reason: decision.reason }, 'subscription denied')
    // null (not an error) makes Aedes answer SUBACK 0x80 for this filter and keep the client.
    callback(null, null)
  }
}

/**
 * Every delivery to a client passes here. Live deliveries match a subscription the ACL allowed;
 * messages of a stored session may have been queued under another identity (before a user lost a
 * grant, or for a session taken over), so what the client may not read is dropped. Then the
 * client's outbound queue decides whether it is written (outbound-queues.ts).
 */
export function makeAuthorizeForward (ctx: HookContext) {
  // One log line per client: a stored session can hold thousands of such messages.
  const reported = new WeakSet<Client>()
  return function authorizeForward (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null | undefined {
    const identity = ctx.connections.identity(client)
    if (identity === undefined || (identity.role !== 'admin' && !maySubscribe(identity, ctx.topicRoot, packet.topic).allowed)) {
      ctx.metrics.mqttDropped.inc({ reason: 'not-authorized' })
      if (!reported.has(client)) {
        reported.add(client)
        ctx.log.warn({ code: 'LB_ERR_MQTT_SUBSCRIBE_DENIED', clientId: client.id, user: identity?.user, topic: packet.topic }, 'messages of a stored session not delivered: the client may not read them (counted in lorabridge_mqtt_dropped_total)')
      }
      return null
    }
    if (ctx.queues.admit(client) === 'drop') return null
    ctx.metrics.mqttMessagesSent.inc()
    return packet
  }
}
