/**
 * The console's HTTP side on one listener: `/` (the login page without a session, the console with
 * one), its files under `/console/static/`, the JSON API under `/console/api/`, and MQTT over
 * WebSocket at `/console/mqtt`.
 *
 * Cross-site requests: the session cookie is SameSite=Strict, every POST must be
 * `application/json` (which no cross-site form can send without a CORS preflight we never answer),
 * and an `Origin` other than the console's own is refused. The console's own origin is only worth
 * something once `Host` is known to name this machine (DNS rebinding): see host-check.ts.
 *
 * Logins: every failure (unknown user, wrong password, no password, not an admin) gets one and the
 * same answer, and only an admin's successful login clears the address's failure count.
 */
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { HttpListenerConfig } from '../config/schema.js'
import type { ErrorCode } from '../errors.js'
import { AuthFailure } from '../auth/authenticator.js'
import type { Identity } from '../auth/acl.js'
import { normalizeAddress } from '../util/net.js'
import { EVENT_KINDS, type CompiledFile } from '../rules/compile.js'
import type { RulesComponent } from '../rules/component.js'
import type { EventKind } from '../model/events.js'
import { dryRun } from '../cli/rules.js'
import { PUBLIC_ASSETS } from './assets.js'
import { COOKIE_NAME, readCookie, sessionCookie, type Session } from './sessions.js'
import { MQTT_WS_PATH, serveMqttOverWebSocket } from './mqtt-ws.js'
import type { WebConsoleDeps } from './deps.js'
import type { Asset } from './assets.js'
import type { ConsoleState } from './state.js'
import type { LoginLimiter, SessionStore } from './sessions.js'
import { ConsoleHosts } from './host-check.js'
import { deviceRoutes } from './device-routes.js'
import type { DeviceHistoryStore } from './device-history.js'
import { ruleEditorRoutes, type RuleEditor } from './rule-editor.js'

export interface ConsoleRefusal {
  code: ErrorCode
  address: string
  user?: string | undefined
  url?: string | undefined
  reason: string
  /** The Host header of a request refused for it. */
  host?: string | undefined
}

/** What the routes use of the console component. */
export interface ConsoleParts {
  readonly sessions: SessionStore
  readonly state: ConsoleState
  readonly history: DeviceHistoryStore
  readonly limiter: LoginLimiter
  readonly ruleEditor: RuleEditor
  readonly assets: Map<string, Asset> | undefined
}

export interface ConsoleRouteDeps extends WebConsoleDeps {
  console: ConsoleParts
  refuse: (r: ConsoleRefusal) => void
}

/** Try-it events and logins are small; the listener-wide limit is for ThingPark and app-connect. */
export const API_BODY_LIMIT = 64 * 1024
const MAX_CREDENTIAL_LENGTH = 1024
/** The one answer to every failed login: it must not tell which user names exist, nor confirm a password. */
const LOGIN_FAILED = 'login failed'

// mqtt.js keeps its keepalive timers in a worker made from a blob, so that a background tab's
// throttled timers do not let the broker drop the tail: hence `worker-src blob:`.
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

/** The daemon's running rule set, as the files `rules test` would compile: the last good version of each. */
export function loadedRuleFiles (rules: RulesComponent): CompiledFile[] {
  const { rules: compiledRules, decoders } = rules.engine.loaded()
  const files = new Map<string, CompiledFile>()
  const file = (name: string): CompiledFile => {
    let f = files.get(name)
    if (f === undefined) { f = { file: name, rules: [], decoders: [] }; files.set(name, f) }
    return f
  }
  for (const d of decoders) file(d.file).decoders.push(d)
  for (const r of compiledRules) file(r.file).rules.push(r)
  return [...files.values()]
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The origin a browser on this listener sends; undefined Origin (same-origin GET, curl) passes. */
function sameOrigin (headers: IncomingMessage['headers'], secure: boolean): boolean {
  const origin = headers.origin
  if (origin === undefined) return true
  return origin === `${secure ? 'https' : 'http'}://${headers.host ?? ''}`
}

export function consoleRoutes (app: FastifyInstance, listener: HttpListenerConfig, deps: ConsoleRouteDeps): void {
  const { config, users, authenticator, tokens, console: web } = deps
  const secure = listener.protocol === 'https'
  const sessionOf = new WeakMap<FastifyRequest, Session>()
  const hosts = new ConsoleHosts(listener.host, config.http.console.allowedHosts)

  /** The live session of a request, while its user still exists and is an admin. */
  const liveSession = async (cookieHeader: string | undefined): Promise<Session | undefined> => {
    const session = web.sessions.touch(readCookie(cookieHeader, COOKIE_NAME))
    if (session === undefined) return undefined
    const user = await users.get(session.user)
    if (user?.role !== 'admin') { web.sessions.end(session.id, 'revoked'); return undefined }
    return session
  }

  /** Logs and counts the refusal under `code` with `reason`, and answers `status` with `code` and `message`. */
  const fail = (reply: FastifyReply, req: FastifyRequest, status: number, code: ErrorCode, message: string, user?: string, reason = message, answerCode = code): FastifyReply => {
    deps.refuse({ code, address: normalizeAddress(req.socket.remoteAddress), user, url: req.url.split('?')[0], reason, ...(code === 'LB_ERR_CONSOLE_HOST' ? { host: req.headers.host } : {}) })
    return reply.code(status).headers({ 'cache-control': 'no-store' }).send({ error: answerCode, message })
  }

  /** preHandler of everything behind the login. */
  const needSession = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (!sameOrigin(req.headers, secure)) return fail(reply, req, 403, 'LB_ERR_CONSOLE_ORIGIN', 'request from another origin')
    const session = await liveSession(req.headers.cookie)
    if (session === undefined) return fail(reply, req, 401, 'LB_ERR_CONSOLE_SESSION', 'log in first')
    sessionOf.set(req, session)
    return undefined
  }

  /** The JSON body of a POST, or undefined after answering 415/400. */
  const jsonBody = (req: FastifyRequest, reply: FastifyReply): Record<string, unknown> | undefined => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    if (type !== 'application/json') { void fail(reply, req, 415, 'LB_ERR_CONSOLE_REQUEST', 'the body must be application/json'); return undefined }
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : ''
    let value: unknown
    try {
      value = raw.trim() === '' ? {} : JSON.parse(raw)
    } catch (err) {
      void fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', `the body is not valid JSON: ${(err as Error).message}`)
      return undefined
    }
    if (!isObject(value)) { void fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', 'the body must be a JSON object'); return undefined }
    return value
  }

  const assetsOr503 = (req: FastifyRequest, reply: FastifyReply): NonNullable<ConsoleParts['assets']> | undefined => {
    if (web.assets !== undefined) return web.assets
    void fail(reply, req, 503, 'LB_ERR_CONSOLE_ASSETS', 'the web console files are missing from this installation')
    return undefined
  }

  app.register(async scope => {
    // Bodies are taken as bytes and parsed here, so that every refusal carries our own code.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: API_BODY_LIMIT }, (_req, body, done) => { done(null, body) })
    // Before anything else, even the login page: a rebound name gets nothing of the console.
    scope.addHook('onRequest', async (req, reply) => {
      if (!hosts.allows(req.headers.host)) return fail(reply, req, 421, 'LB_ERR_CONSOLE_HOST', 'the console is not served under this host name')
      return undefined
    })
    scope.setErrorHandler((err: Error & { statusCode?: number, code?: string }, req, reply) => {
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fail(reply, req, 413, 'LB_ERR_CONSOLE_TOO_LARGE', `the body exceeds ${API_BODY_LIMIT} bytes`)
      if (err.statusCode !== undefined && err.statusCode < 500) return fail(reply, req, err.statusCode, 'LB_ERR_CONSOLE_REQUEST', err.message)
      deps.log.error({ err, url: req.url.split('?')[0] }, 'console request failed')
      return reply.code(500).send({ error: 'internal', message: 'internal error' })
    })

    scope.get('/', async (req, reply) => {
      const assets = assetsOr503(req, reply)
      if (assets === undefined) return reply
      const page = await liveSession(req.headers.cookie) !== undefined ? 'console.html' : 'login.html'
      const asset = assets.get(page)!
      return reply.headers(SECURITY_HEADERS).type(asset.type).send(asset.body)
    })

    scope.get<{ Params: { name: string } }>('/console/static/:name', async (req, reply) => {
      const assets = assetsOr503(req, reply)
      if (assets === undefined) return reply
      const asset = assets.get(req.params.name)
      if (asset === undefined) return reply.code(404).send({ error: 'not-found', message: 'no such file' })
      if (!PUBLIC_ASSETS.has(req.params.name) && await liveSession(req.headers.cookie) === undefined) {
        return fail(reply, req, 401, 'LB_ERR_CONSOLE_SESSION', 'log in first')
      }
      return reply.headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' }).type(asset.type).send(asset.body)
    })

    scope.post('/console/api/login', async (req, reply) => {
      if (!sameOrigin(req.headers, secure)) return fail(reply, req, 403, 'LB_ERR_CONSOLE_ORIGIN', 'request from another origin')
      const body = jsonBody(req, reply)
      if (body === undefined) return reply
      const { username, password } = body
      if (typeof username !== 'string' || typeof password !== 'string' || username === '' || username.length > MAX_CREDENTIAL_LENGTH || password.length > MAX_CREDENTIAL_LENGTH) {
        return fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', 'username and password must be non-empty strings')
      }
      const address = normalizeAddress(req.socket.remoteAddress)
      const wait = web.limiter.blockedFor(address)
      if (wait > 0) return fail(reply.header('retry-after', String(wait)), req, 429, 'LB_ERR_CONSOLE_LOGIN_RATE', `too many failed logins; try again in ${wait} s`, username)
      /** One answer for every failure; the log keeps the real reason, under `code`. */
      const badLogin = (reason: string, code: ErrorCode = 'LB_ERR_CONSOLE_LOGIN'): FastifyReply => {
        web.limiter.fail(address)
        return fail(reply, req, 401, code, LOGIN_FAILED, username, reason, 'LB_ERR_CONSOLE_LOGIN')
      }
      let identity: Identity
      try {
        // Unknown users and users without a password cost a derivation too (a decoy hash).
        identity = await authenticator.authenticate({ username, password: Buffer.from(password, 'utf8'), certificateUser: undefined, anonymousAllowed: false, address })
      } catch (err) {
        if (!(err instanceof AuthFailure)) throw err
        if (err.code === 'LB_ERR_AUTH_RATE_LIMITED') {
          // The name (or the daemon) is refusing password checks for now: say so, as for any name.
          web.limiter.fail(address)
          return fail(reply.header('retry-after', String(Math.ceil(config.auth.failedAuth.windowSeconds))), req, 429, 'LB_ERR_CONSOLE_LOGIN_RATE', 'too many failed logins; try again later', username, err.message)
        }
        return badLogin(err.message)
      }
      // A one-time MQTT secret is not a password.
      if (identity.via !== 'password') return badLogin('a one-time MQTT secret is not a console password')
      if (identity.role !== 'admin') return badLogin(`role ${identity.role}: the console is for admins`, 'LB_ERR_CONSOLE_FORBIDDEN')
      // Only now: a right password of any other kind of user must not clear the count.
      web.limiter.succeed(address)
      const session = web.sessions.create(username)
      deps.log.info({ user: username, address }, 'console login')
      return reply.header('set-cookie', sessionCookie(session.id, { maxAgeSeconds: web.sessions.maxAgeSeconds(session), secure }))
        .headers({ 'cache-control': 'no-store' }).send({ user: username })
    })

    scope.post('/console/api/logout', async (req, reply) => {
      if (!sameOrigin(req.headers, secure)) return fail(reply, req, 403, 'LB_ERR_CONSOLE_ORIGIN', 'request from another origin')
      if (jsonBody(req, reply) === undefined) return reply
      const session = web.sessions.touch(readCookie(req.headers.cookie, COOKIE_NAME))
      if (session !== undefined) {
        web.sessions.end(session.id, 'logout')
        deps.log.info({ user: session.user, address: normalizeAddress(req.socket.remoteAddress) }, 'console logout')
      }
      return reply.code(204).header('set-cookie', sessionCookie('', { maxAgeSeconds: 0, secure })).send()
    })

    scope.get('/console/api/session', { preHandler: needSession }, async req => {
      const session = sessionOf.get(req)!
      return {
        user: session.user,
        topicRoot: config.topics.root,
        mqttPath: MQTT_WS_PATH,
        idleMinutes: config.http.console.sessionIdleMinutes,
        expiresAt: new Date(session.createdAt + config.http.console.sessionMaxHours * 3_600_000).toISOString(),
      }
    })

    scope.post('/console/api/mqtt-token', { preHandler: needSession }, async (req, reply) => {
      if (jsonBody(req, reply) === undefined) return reply
      const session = sessionOf.get(req)!
      const { secret, expiresInSeconds } = tokens.mint(session.user, session.id)
      return reply.headers({ 'cache-control': 'no-store' }).send({ path: MQTT_WS_PATH, username: session.user, password: secret, expiresInSeconds })
    })

    scope.get('/console/api/gateways', { preHandler: needSession }, async () => ({ gateways: web.state.gatewayList() }))

    scope.get('/console/api/devices', { preHandler: needSession }, async () => {
      const devices = web.state.deviceList(500)
      // The way back (PRODUCT.md §3) is kept by the route table, in Redis when clustered.
      const routes = await Promise.all(devices.map(d => deps.routes.get(d.devEui).catch(() => undefined)))
      return {
        count: web.state.deviceCount,
        rate: web.state.totalRate(),
        devices: devices.map((d, i) => {
          const route = routes[i]?.summary
          return { ...d, ...(route !== undefined ? { route } : {}) }
        }),
      }
    })

    deviceRoutes(scope, deps, { needSession, jsonBody, sessionOf, history: web.history })

    scope.get('/console/api/rules', { preHandler: needSession }, async () => ({ dir: config.rules.dir, ...deps.rules.status() }))

    scope.post('/console/api/rules/try', { preHandler: needSession }, async (req, reply) => {
      const body = jsonBody(req, reply)
      if (body === undefined) return reply
      const on = body.on ?? 'up'
      if (typeof on !== 'string' || !(EVENT_KINDS as string[]).includes(on)) return fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', `"on" must be one of ${EVENT_KINDS.join(', ')}`)
      if (!isObject(body.event)) return fail(reply, req, 400, 'LB_ERR_CONSOLE_REQUEST', '"event" must be a JSON object (a normalized event)')
      // The function `lorabridge rules test` runs, on the rules this daemon is running.
      return dryRun(config, loadedRuleFiles(deps.rules), on as EventKind, body.event)
    })

    ruleEditorRoutes(scope, { editor: web.ruleEditor, needSession, user: req => sessionOf.get(req)?.user, jsonBody, refuse: deps.refuse })
  })

  serveMqttOverWebSocket(app.server, listener, {
    config,
    log: deps.log,
    metrics: deps.metrics,
    broker: deps.broker,
    session: async req => {
      if (!hosts.allows(req.headers.host)) return { status: 421, code: 'LB_ERR_CONSOLE_HOST' }
      if (!sameOrigin(req.headers, secure)) return { status: 403, code: 'LB_ERR_CONSOLE_ORIGIN' }
      const session = await liveSession(req.headers.cookie)
      return session !== undefined ? { session } : { status: 401, code: 'LB_ERR_CONSOLE_SESSION' }
    },
    refused: (code, address, reason) => { deps.refuse({ code, address, url: MQTT_WS_PATH, reason }) },
  })
}
