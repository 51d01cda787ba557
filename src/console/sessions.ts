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
  /** Called for every session that ends (logout, expiry, eviction). */
  onEnd: (s: Session) => void = () => {}

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
    while (this.sessions.size > this.maxSessions) this.end(this.sessions.keys().next().value as string)
    return s
  }

  /** The live session with this id, its idle clock reset; an expired one is ended. */
  touch (id: string | undefined): Session | undefined {
    if (id === undefined) return undefined
    const s = this.sessions.get(id)
    if (s === undefined) return undefined
    const t = this.now()
    if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) {
      this.end(id)
      return undefined
    }
    s.lastSeen = t
    return s
  }

  /** Seconds until the session ends at the latest (for the cookie's Max-Age). */
  maxAgeSeconds (s: Session): number {
    return Math.max(1, Math.floor((s.createdAt + this.limits.maxAgeMs - this.now()) / 1000))
  }

  end (id: string): void {
    const s = this.sessions.get(id)
    if (s === undefined) return
    this.sessions.delete(id)
    for (const socket of s.sockets) socket.destroy()
    s.sockets.clear()
    this.onEnd(s)
  }

  /** Ends the sessions that have expired; returns how many. */
  sweep (): number {
    const t = this.now()
    let n = 0
    for (const [id, s] of this.sessions) {
      if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) { this.end(id); n++ }
    }
    return n
  }

  clear (): void {
    for (const id of [...this.sessions.keys()]) this.end(id)
  }
}

const TOKEN_PREFIX = 'lbc1.'

/**
 * Single-use MQTT secrets, each good for one CONNECT of the session's user within `ttlMs`. The
 * Authenticator consumes them in place of a password (identity `via: token`).
 */
export class ConsoleTokens implements OneTimeSecrets {
  private readonly tokens = new Map<string, { user: string, session: string, expiresAt: number }>()

  constructor (private readonly ttlMs = 60_000, private readonly maxTokens = 10_000, private readonly now: () => number = Date.now) {}

  mint (user: string, session: string): { secret: string, expiresInSeconds: number } {
    this.sweep()
    while (this.tokens.size >= this.maxTokens) this.tokens.delete(this.tokens.keys().next().value as string)
    const secret = TOKEN_PREFIX + randomId()
    this.tokens.set(secret, { user, session, expiresAt: this.now() + this.ttlMs })
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

  /** A session that ends takes its unspent secrets with it. */
  revokeSession (session: string): void {
    for (const [k, t] of this.tokens) if (t.session === session) this.tokens.delete(k)
  }

  private sweep (): void {
    const t = this.now()
    for (const [k, v] of this.tokens) if (v.expiresAt < t) this.tokens.delete(k)
  }

  clear (): void { this.tokens.clear() }
}

/** Failed logins per address in a fixed window; past `maxFailures` the address is refused until the window ends. */
export class LoginLimiter {
  private readonly failures = new Map<string, { count: number, since: number }>()

  constructor (private readonly maxFailures = 10, private readonly windowMs = 15 * 60_000, private readonly maxAddresses = 10_000, private readonly now: () => number = Date.now) {}

  /** Seconds until the address may try again; 0 when it may now. */
  blockedFor (address: string): number {
    const f = this.failures.get(address)
    if (f === undefined) return 0
    const left = f.since + this.windowMs - this.now()
    if (left <= 0) { this.failures.delete(address); return 0 }
    return f.count >= this.maxFailures ? Math.ceil(left / 1000) : 0
  }

  fail (address: string): void {
    const t = this.now()
    let f = this.failures.get(address)
    if (f === undefined || t - f.since > this.windowMs) {
      if (f === undefined && this.failures.size >= this.maxAddresses) this.sweep()
      if (this.failures.size >= this.maxAddresses) this.failures.delete(this.failures.keys().next().value as string)
      f = { count: 0, since: t }
      this.failures.set(address, f)
    }
    f.count++
  }

  succeed (address: string): void { this.failures.delete(address) }

  private sweep (): void {
    const t = this.now()
    for (const [a, f] of this.failures) if (t - f.since > this.windowMs) this.failures.delete(a)
  }
}

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
