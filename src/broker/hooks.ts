/**
 * The Aedes hooks, as small named functions over one context (STYLE §6). Aedes hooks are
 * callback-style: promises are bridged with `.then(ok, err)` so that a rejection can never leave a
 * client hanging, and `authorizeForward` stays synchronous.
 */
import type { Client, AuthenticateError, PublishPacket, Subscription } from 'aedes'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { mayPublish, maySubscribe } from '../auth/acl.js'
import { AuthFailure, type Authenticator } from '../auth/authenticator.js'
import { LorabridgeError } from '../errors.js'
import type { ConnectionRegistry } from './connections.js'

export interface HookContext {
  log: Logger
  metrics: Metrics
  authenticator: Authenticator
  connections: ConnectionRegistry
  topicRoot: string
  /**
   * Work that must be done before a publication is acknowledged (the app-connect ingest): Aedes
   * writes PUBACK right after this hook, so a message is acknowledged only once it is kept. A
   * rejection closes the connection without PUBACK; the client sends the message again.
   */
  beforeAck: { gate?: (clientId: string | undefined, packet: PublishPacket) => Promise<void> | undefined }
}

export function makeAuthenticate (ctx: HookContext) {
  return function authenticate (client: Client, username: string | undefined, password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    const info = ctx.connections.get(client.conn)
    if (info === undefined) {
      // Every connection goes through a listener that registers it; anything else is a bug.
      done(Object.assign(new Error('unknown connection'), { returnCode: 3 }) as AuthenticateError, false)
      return
    }
    ctx.authenticator.authenticate({
      username,
      password,
      certificateUser: info.certificateUser,
      anonymousAllowed: info.listener.anonymous,
      address: info.remoteAddress,
    }).then(identity => {
      // A will is published after its owner is gone (by another instance, in a cluster, with no
      // client to check), so its topic is checked now. Aedes keeps the CONNECT's will on `_will`.
      const willTopic = (client as Client & { _will?: { topic?: string } })._will?.topic
      if (willTopic !== undefined && !mayPublish(identity, ctx.topicRoot, willTopic).allowed) {
        throw new AuthFailure('LB_ERR_AUTH_NOT_AUTHORIZED', `will topic "${willTopic}" is not allowed for this user`, 5)
      }
      return identity
    }).then(identity => {
      ctx.connections.setIdentity(client, identity)
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
    const pass = (): void => {
      const pending = ctx.beforeAck.gate?.(client?.id, packet)
      if (pending === undefined) { callback(null); return }
      pending.then(() => callback(null), (err: unknown) => callback(err as Error))
    }
    if (client === null) { pass(); return }
    ctx.metrics.mqttMessagesReceived.inc()
    const identity = ctx.connections.identity(client)
    const decision = identity === undefined ? { allowed: false as const, reason: 'not authenticated' } : mayPublish(identity, ctx.topicRoot, packet.topic)
    if (decision.allowed) { pass(); return }
    ctx.metrics.mqttDenied.inc({ action: 'publish', role: identity?.role ?? 'none' })
    ctx.log.warn({ code: 'LB_ERR_MQTT_PUBLISH_DENIED', clientId: client.id, user: identity?.user, topic: packet.topic, reason: decision.reason }, 'publish denied')
    callback(new PublishDenied(decision.reason))
  }
}

export function makeAuthorizeSubscribe (ctx: HookContext) {
  return function authorizeSubscribe (client: Client, sub: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void {
    const identity = ctx.connections.identity(client)
    const decision = identity === undefined ? { allowed: false as const, reason: 'not authenticated' } : maySubscribe(identity, ctx.topicRoot, sub.topic)
    if (decision.allowed) { callback(null, sub); return }
    ctx.metrics.mqttDenied.inc({ action: 'subscribe', role: identity?.role ?? 'none' })
    ctx.log.warn({ code: 'LB_ERR_MQTT_SUBSCRIBE_DENIED', clientId: client.id, user: identity?.user, topic: sub.topic, reason: decision.reason }, 'subscription denied')
    // null (not an error) makes Aedes answer SUBACK 0x80 for this filter and keep the client.
    callback(null, null)
  }
}
