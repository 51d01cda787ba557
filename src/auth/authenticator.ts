/**
 * Turns what a client presents — username/password, a verified client certificate, both, or
 * nothing — into an Identity, or a refusal with the proper MQTT 3.1.1 CONNACK code
 * (4: bad user name or password, 5: not authorized).
 */
import { createHash } from 'node:crypto'
import type { ErrorCode } from '../errors.js'
import { LorabridgeError } from '../errors.js'
import { normalizeGatewayUuid, type Identity } from './acl.js'
import { verifyPassword } from './password.js'
import type { User, UsersStore } from './users-file.js'

export interface Credentials {
  username: string | undefined
  password: Buffer | undefined
  /** Identity from a verified client certificate, if one was presented. */
  certificateUser: string | undefined
  /** Whether the listener allows clients without credentials. */
  anonymousAllowed: boolean
}

export class AuthFailure extends LorabridgeError {
  constructor (code: ErrorCode, message: string, readonly returnCode: 2 | 3 | 4 | 5) {
    super(code, message)
  }
}

function identityOf (user: User, via: Identity['via']): Identity {
  return {
    user: user.name,
    role: user.role,
    apps: user.apps,
    downlink: user.downlink,
    gateway: user.gateway !== undefined ? normalizeGatewayUuid(user.gateway) ?? user.gateway.toLowerCase() : undefined,
    via,
  }
}

/**
 * Short-lived, single-use secrets that stand for a user's password: the web console mints one per
 * MQTT-over-WebSocket connection of an admin session (docs/console.md), so that the page never
 * holds the admin's password.
 */
export interface OneTimeSecrets {
  /** True, and the secret is spent, when `secret` is a live one minted for `user`. */
  consume (user: string, secret: Buffer): boolean
}

const ANONYMOUS: Identity = { user: undefined, role: 'admin', apps: ['*'], downlink: true, gateway: undefined, via: 'anonymous' }

export class Authenticator {
  /**
   * Digests of recently verified (user, password, hash) triples. scrypt is deliberately slow, and a
   * reconnect storm of Conduits would otherwise queue thousands of derivations; only successes are
   * remembered, so guessing stays expensive. A changed hash changes the digest.
   */
  private readonly verified = new Map<string, true>()

  constructor (private readonly users: UsersStore, private readonly cacheSize = 10000, private readonly oneTime?: OneTimeSecrets) {}

  async authenticate (c: Credentials): Promise<Identity> {
    const username = c.username !== undefined && c.username !== '' ? c.username : undefined
    if (c.certificateUser !== undefined) {
      if (username !== undefined && username !== c.certificateUser) {
        throw new AuthFailure('LB_ERR_AUTH_IDENTITY_MISMATCH', `username "${username}" differs from certificate identity "${c.certificateUser}"`, 5)
      }
      const user = await this.users.get(c.certificateUser)
      if (user === undefined) throw new AuthFailure('LB_ERR_AUTH_NOT_AUTHORIZED', `no user for certificate identity "${c.certificateUser}"`, 5)
      // Both together: when a password is sent as well, it must be right too.
      if (c.password !== undefined) {
        await this.checkPassword(user, c.password)
        return identityOf(user, 'certificate+password')
      }
      return identityOf(user, 'certificate')
    }
    if (username !== undefined) {
      const user = await this.users.get(username)
      if (user === undefined) throw new AuthFailure('LB_ERR_AUTH_BAD_CREDENTIALS', `unknown user "${username}"`, 4)
      if (c.password !== undefined && this.oneTime?.consume(user.name, c.password) === true) return identityOf(user, 'token')
      await this.checkPassword(user, c.password)
      return identityOf(user, 'password')
    }
    if (c.anonymousAllowed) return ANONYMOUS
    throw new AuthFailure('LB_ERR_AUTH_NOT_AUTHORIZED', 'no credentials and anonymous access is off on this listener', 5)
  }

  private async checkPassword (user: User, password: Buffer | undefined): Promise<void> {
    if (user.passwordHash === undefined || password === undefined) {
      throw new AuthFailure('LB_ERR_AUTH_BAD_CREDENTIALS', `user "${user.name}" ${user.passwordHash === undefined ? 'has no password (certificate only)' : 'sent no password'}`, 4)
    }
    const digest = createHash('sha256').update(user.name).update('\0').update(password).update('\0').update(user.passwordHash).digest('base64')
    if (this.verified.has(digest)) return
    if (!await verifyPassword(password.toString('utf8'), user.passwordHash)) {
      throw new AuthFailure('LB_ERR_AUTH_BAD_CREDENTIALS', `wrong password for "${user.name}"`, 4)
    }
    if (this.verified.size >= this.cacheSize) this.verified.delete(this.verified.keys().next().value as string)
    this.verified.set(digest, true)
  }
}
