/**
 * Turns what a client presents — username/password, a verified client certificate, both, or
 * nothing — into an Identity, or a refusal with the proper MQTT 3.1.1 CONNACK code
 * (3: server unavailable, for now — too many failures or password checks; 4: bad user name or
 * password; 5: not authorized).
 *
 * Every password check costs one scrypt derivation, whether the user exists, has no password
 * (certificate only) or has one: a decoy hash stands in for the missing ones, so that the time to
 * refuse does not tell which user names exist. Derivations for credentials not already verified go
 * through a HashGate (bounded, fair across source addresses), and a user name with too many
 * failures in a window is refused without one (docs/security.md).
 */
import { createHash, randomBytes } from 'node:crypto'
import type { ErrorCode } from '../errors.js'
import { LorabridgeError } from '../errors.js'
import { normalizeGatewayUuid, type Identity } from './acl.js'
import { hashPassword, verifyPassword } from './password.js'
import type { User, UsersStore } from './users-file.js'
import type { CertificateFacts } from '../tls/server-options.js'
import { certificateRecordRefusal } from './certificate-records.js'
import { FailureLimiter } from './failure-limiter.js'
import { HashGate } from './hash-gate.js'

export interface Credentials {
  username: string | undefined
  password: Buffer | undefined
  /** Identity from a verified client certificate, if one was presented. */
  certificateUser: string | undefined
  /** Fingerprint, serial and issue date of that certificate (checked against the users file's records). */
  certificate?: CertificateFacts | undefined
  /** Whether the listener allows clients without credentials. */
  anonymousAllowed: boolean
  /** The peer's address: waiting password checks are served fairly across addresses. */
  address?: string | undefined
  /**
   * Whether a console one-time secret may stand for the password: only on the console's own
   * MQTT-over-WebSocket channel, so that a leaked secret opens nothing else.
   */
  oneTimeAllowed?: boolean
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

/** `auth.failedAuth` (src/config/schema.ts). */
export interface FailedAuthLimits {
  perUser: number
  windowSeconds: number
  maxConcurrentHashes: number
  maxWaitingHashes: number
}

export const DEFAULT_FAILED_AUTH: FailedAuthLimits = { perUser: 20, windowSeconds: 60, maxConcurrentHashes: 2, maxWaitingHashes: 256 }

export interface AuthenticatorOptions {
  /** Verified (user, password, hash) digests remembered. */
  cacheSize?: number
  oneTime?: OneTimeSecrets | undefined
  failedAuth?: FailedAuthLimits
  now?: () => number
}

export class Authenticator {
  /**
   * Digests of recently verified (user, password, hash) triples. scrypt is deliberately slow, and a
   * reconnect storm of Conduits would otherwise queue thousands of derivations; only successes are
   * remembered, so guessing stays expensive. A changed hash changes the digest.
   */
  private readonly verified = new Map<string, true>()
  private readonly cacheSize: number
  private readonly oneTime: OneTimeSecrets | undefined
  /** Failed password checks per user name as given (existing or not, so that this tells nothing either). */
  private readonly failures: FailureLimiter
  /** Addresses with a failed password check within the window: their checks wait behind the others'. */
  private readonly failingAddresses: FailureLimiter
  private readonly gate: HashGate
  private decoy: Promise<string> | undefined

  constructor (private readonly users: UsersStore, opts: AuthenticatorOptions = {}) {
    const limits = opts.failedAuth ?? DEFAULT_FAILED_AUTH
    this.cacheSize = opts.cacheSize ?? 10000
    this.oneTime = opts.oneTime
    this.failures = new FailureLimiter(limits.perUser, limits.windowSeconds * 1000, 10_000, opts.now)
    this.failingAddresses = new FailureLimiter(1, limits.windowSeconds * 1000, 10_000, opts.now)
    this.gate = new HashGate(limits.maxConcurrentHashes, limits.maxWaitingHashes, address => this.failingAddresses.blockedFor(address) > 0)
  }

  async authenticate (c: Credentials): Promise<Identity> {
    const username = c.username !== undefined && c.username !== '' ? c.username : undefined
    const address = c.address ?? 'unknown'
    if (c.certificateUser !== undefined) {
      if (username !== undefined && username !== c.certificateUser) {
        throw new AuthFailure('LB_ERR_AUTH_IDENTITY_MISMATCH', `username "${username}" differs from certificate identity "${c.certificateUser}"`, 5)
      }
      const user = await this.users.get(c.certificateUser)
      if (user === undefined) throw new AuthFailure('LB_ERR_AUTH_NOT_AUTHORIZED', `no user for certificate identity "${c.certificateUser}"`, 5)
      const unrecorded = certificateRecordRefusal(user, c.certificate)
      if (unrecorded !== undefined) throw new AuthFailure('LB_ERR_AUTH_CERT_NOT_REGISTERED', unrecorded, 5)
      // Both together: when a password is sent as well, it must be right too.
      if (c.password !== undefined) {
        await this.checkPassword(user.name, user, c.password, address)
        return identityOf(user, 'certificate+password')
      }
      return identityOf(user, 'certificate')
    }
    if (username !== undefined) {
      const user = await this.users.get(username)
      if (c.oneTimeAllowed === true && user !== undefined && c.password !== undefined && this.oneTime?.consume(user.name, c.password) === true) return identityOf(user, 'token')
      await this.checkPassword(username, user, c.password, address)
      return identityOf(user!, 'password')
    }
    if (c.anonymousAllowed) return ANONYMOUS
    throw new AuthFailure('LB_ERR_AUTH_NOT_AUTHORIZED', 'no credentials and anonymous access is off on this listener', 5)
  }

  /** Resolves when `password` is `user`'s; `user` is undefined for a name that does not exist. */
  private async checkPassword (name: string, user: User | undefined, password: Buffer | undefined, address: string): Promise<void> {
    const stored = user?.passwordHash
    if (password === undefined) {
      // Nothing to derive: refused at once, whether the user exists or not.
      this.failures.fail(name)
      throw new AuthFailure('LB_ERR_AUTH_BAD_CREDENTIALS', user === undefined ? `unknown user "${name}" (no password sent)` : `user "${name}" sent no password`, 4)
    }
    const digest = stored !== undefined ? createHash('sha256').update(name).update('\0').update(password).update('\0').update(stored).digest('base64') : undefined
    // A client that proved this very password before stays fast, whatever an attacker does to its name.
    if (digest !== undefined && this.verified.has(digest)) return
    this.refuseIfOverBudget(name)
    if (!await this.gate.acquire(address)) throw new AuthFailure('LB_ERR_AUTH_RATE_LIMITED', 'too many password checks waiting; try again later', 3)
    let ok: boolean
    try {
      // The budget may have run out while this check waited.
      this.refuseIfOverBudget(name)
      ok = await verifyPassword(password.toString('utf8'), stored ?? await this.decoyHash())
    } finally {
      this.gate.release()
    }
    if (!ok || stored === undefined || digest === undefined) {
      this.failures.fail(name)
      this.failingAddresses.fail(address)
      const reason = user === undefined ? `unknown user "${name}"` : stored === undefined ? `user "${name}" has no password (certificate only)` : `wrong password for "${name}"`
      throw new AuthFailure('LB_ERR_AUTH_BAD_CREDENTIALS', reason, 4)
    }
    this.failures.succeed(name)
    if (this.verified.size >= this.cacheSize) this.verified.delete(this.verified.keys().next().value as string)
    this.verified.set(digest, true)
  }

  private refuseIfOverBudget (name: string): void {
    const wait = this.failures.blockedFor(name)
    if (wait > 0) throw new AuthFailure('LB_ERR_AUTH_RATE_LIMITED', `too many failed logins for "${name}"; refused without a password check for ${wait} s`, 3)
  }

  /** A hash of a random password with today's parameters: what a missing hash costs to check. */
  private decoyHash (): Promise<string> {
    this.decoy ??= hashPassword(randomBytes(16).toString('base64'))
    return this.decoy
  }
}
