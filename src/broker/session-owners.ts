/**
 * Who owns each MQTT session. Connecting with a client id takes over the live connection and the
 * stored session (subscriptions, queued QoS 1 messages), so a client id belongs to the first user
 * that connects with it, for as long as its session may live: a user connecting with someone
 * else's client id is refused before Aedes kicks the owner or hands over the session. Kept in the
 * key-value store, so that a cluster agrees; admins may use any id (they can read everything
 * anyway) without taking the ownership.
 */
import type { Decision, Identity } from '../auth/acl.js'
import type { KeyValueStore } from '../store/kv.js'

const ALLOW: Decision = { allowed: true }

function ownerOf (identity: Identity): string {
  return identity.user === undefined ? 'anonymous' : `user:${identity.user}`
}

export class SessionOwners {
  constructor (private readonly kv: KeyValueStore, private readonly ttlMs: number) {}

  private key (clientId: string): string { return `session-owner:${clientId}` }

  async claim (clientId: string, identity: Identity): Promise<Decision> {
    const me = ownerOf(identity)
    if (identity.role === 'admin') {
      const current = await this.kv.get(this.key(clientId))
      if (current === undefined || current === me) await this.kv.claim(this.key(clientId), me, this.ttlMs)
      return ALLOW
    }
    const owner = await this.kv.claim(this.key(clientId), me, this.ttlMs)
    if (owner === me) return ALLOW
    return { allowed: false, reason: 'the session of this client id belongs to another user' }
  }

  /** A clean session ends with its connection: its id is free again. */
  async release (clientId: string, identity: Identity): Promise<void> {
    await this.kv.release(this.key(clientId), ownerOf(identity))
  }
}
