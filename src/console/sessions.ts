/**
 * The web console's server-side state of who is logged in: sessions behind an HttpOnly cookie,
 * one-time MQTT secrets minted for them, and a count of failed logins per address. All in memory,
 * bounded, and per instance (docs/console.md).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { OneTimeSecrets } from '../auth/authenticator.js'

export const COOKIE_NAME = 'lorabridge_console'

export interface Session {
  id: string
  user: string
  createdAt: number
  lastSeen: number
  /** MQTT-over-WebSocket connections opened with this session; closed when it ends. */
  readonly sockets: Set<Duplex>
}

/** logout; expired (idle or too old); evicted (too many sessions); revoked (the user is gone or no longer an admin); stopped (the daemon stops). */
export type SessionEndReason = 'logout' | 'expired' | 'evicted' | 'revoked' | 'stopped'

export interface SessionLimits {
  idleMs: number
  maxAgeMs: number
  /** Oldest sessions are ended past this many. */
  maxSessions?: number
  now?: () => number
}

const randomId = (): string => randomBytes(32).toString('base64url')

export class SessionStore {
  private readonly sessions = new Map<string, Session>()
  private readonly maxSessions: number
  private readonly now: () => number
  /** Called for every session that ends, with why. */
  onEnd: (s: Session, reason: SessionEndReason) => void = () => {}

  constructor (private readonly limits: SessionLimits) {
    this.maxSessions = limits.maxSessions ?? 1000
    this.now = limits.now ?? Date.now
  }

  get size (): number { return this.sessions.size }

  create (user: string): Session {
    const t = this.now()
    const s: Session = { id: randomId(), user, createdAt: t, lastSeen: t, sockets: new Set() }
    this.sessions.set(s.id, s)
    // Map order is insertion order: the first entries are the oldest logins.
    while (this.sessions.size > this.maxSessions) this.end(this.sessions.keys().next().value as string, 'evicted')
    return s
  }

  /** The live session with this id, its idle clock reset; an expired one is ended. */
  touch (id: string | undefined): Session | undefined {
    if (id === undefined) return undefined
    const s = this.sessions.get(id)
    if (s === undefined) return undefined
    const t = this.now()
    if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) {
      this.end(id, 'expired')
      return undefined
    }
    s.lastSeen = t
    return s
  }

  /** Seconds until the session ends at the latest (for the cookie's Max-Age). */
  maxAgeSeconds (s: Session): number {
    return Math.max(1, Math.floor((s.createdAt + this.limits.maxAgeMs - this.now()) / 1000))
  }

  end (id: string, reason: SessionEndReason): void {
    const s = this.sessions.get(id)
    if (s === undefined) return
    this.sessions.delete(id)
    for (const socket of s.sockets) socket.destroy()
    s.sockets.clear()
    this.onEnd(s, reason)
  }

  /** Ends the sessions that have expired; returns how many. */
  sweep (): number {
    const t = this.now()
    let n = 0
    for (const [id, s] of this.sessions) {
      if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) { this.end(id, 'expired'); n++ }
    }
    return n
  }

  clear (): void {
    for (const id of [...this.sessions.keys()]) this.end(id, 'stopped')
  }
}

const TOKEN_PREFIX = 'lbc1.'
const MINTED_PER_SESSION = 256

/**
 * Single-use MQTT secrets, each good for one CONNECT of the session's user within `ttlMs`. The
 * Authenticator consumes them in place of a password (identity `via: token`).
 */
export class ConsoleTokens implements OneTimeSecrets {
  private readonly tokens = new Map<string, { user: string, session: string, expiresAt: number }>()
  /** Every secret minted per session, spent or not (the newest 256), until the session is revoked. */
  private readonly minted = new Map<string, string[]>()

  constructor (private readonly ttlMs = 60_000, private readonly maxTokens = 10_000, private readonly now: () => number = Date.now) {}

  mint (user: string, session: string): { secret: string, expiresInSeconds: number } {
    this.sweep()
    while (this.tokens.size >= this.maxTokens) this.tokens.delete(this.tokens.keys().next().value as string)
    const secret = TOKEN_PREFIX + randomId()
    this.tokens.set(secret, { user, session, expiresAt: this.now() + this.ttlMs })
    const mine = this.minted.get(session) ?? []
    mine.push(secret)
    if (mine.length > MINTED_PER_SESSION) mine.shift()
    this.minted.set(session, mine)
    return { secret, expiresInSeconds: Math.round(this.ttlMs / 1000) }
  }

  consume (user: string, secret: Buffer): boolean {
    // Anything that does not look like a token goes on to the password check untouched.
    if (secret.length !== TOKEN_PREFIX.length + 43 || !secret.subarray(0, TOKEN_PREFIX.length).equals(Buffer.from(TOKEN_PREFIX))) return false
    const key = secret.toString('utf8')
    const t = this.tokens.get(key)
    if (t === undefined) return false
    this.tokens.delete(key)
    const a = Buffer.from(t.user)
    const b = Buffer.from(user)
    return t.expiresAt >= this.now() && a.length === b.length && timingSafeEqual(a, b)
  }

  /**
   * A session that ends takes its unspent secrets with it. Returns every secret minted for it,
   * spent ones included: the connections that used them belong to the session too.
   */
  revokeSession (session: string): string[] {
    for (const [k, t] of this.tokens) if (t.session === session) this.tokens.delete(k)
    const minted = this.minted.get(session) ?? []
    this.minted.delete(session)
    return minted
  }

  private sweep (): void {
    const t = this.now()
    for (const [k, v] of this.tokens) if (v.expiresAt < t) this.tokens.delete(k)
  }

  clear (): void { this.tokens.clear(); this.minted.clear() }
}

/** Failed console logins per address; past 10 within 15 minutes the address gets 429. */
export { FailureLimiter as LoginLimiter } from '../auth/failure-limiter.js'

/** The value of one cookie from a Cookie header (RFC 6265 §5.4); no dependency needed for one name. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

export function sessionCookie (value: string, opts: { maxAgeSeconds: number, secure: boolean }): string {
  return [`${COOKIE_NAME}=${value}`, 'Path=/', `Max-Age=${opts.maxAgeSeconds}`, 'HttpOnly', 'SameSite=Strict', ...(opts.secure ? ['Secure'] : [])].join('; ')
}
