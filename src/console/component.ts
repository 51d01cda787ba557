/**
 * The admin web console (docs/console.md), served by the daemon on its HTTP listeners: a login
 * page, a single-page console (gateways, devices, a live tail over MQTT-over-WebSocket, rules and a
 * dry run), and the JSON API behind it. It owns the sessions, the one-time MQTT secrets and the
 * gateway/device views; everything else it shows comes from the components that keep it.
 */
import { Counter } from 'prom-client'
import type { Component } from '../component.js'
import type { Config, HttpListenerConfig } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { UsersStore } from '../auth/users-file.js'
import type { Authenticator } from '../auth/authenticator.js'
import type { Broker } from '../broker/broker.js'
import type { EventBus } from '../core/bus.js'
import type { RouteTable } from '../core/routes.js'
import type { RulesComponent } from '../rules/component.js'
import type { RouteRegistrar } from '../http/http-listeners.js'
import { loadAssets, type Asset } from './assets.js'
import { ConsoleState } from './state.js'
import { createDeviceHistory, type DeviceHistoryStore } from './device-history.js'
import { ConsoleTokens, LoginLimiter, SessionStore, type SessionEndReason } from './sessions.js'
import { isLoopbackHost } from '../util/net.js'
import { consoleRoutes, type ConsoleRefusal } from './routes.js'
import type { WebConsoleDeps } from './deps.js'
import { RuleEditor } from './rule-editor.js'

export type { WebConsoleDeps } from './deps.js'

const SWEEP_MS = 60_000
/** The device history's downlink topics: requests and their outcomes. */
const DOWN_KINDS = ['/down', '/down/queued', '/down/sent', '/down/acked', '/down/failed']

/** A console session that ended, with every one-time MQTT secret minted for it (spent or not). */
export interface EndedSession {
  user: string
  session: string
  reason: SessionEndReason
  secrets: string[]
}

export class WebConsole implements Component {
  readonly name = 'console'
  readonly sessions: SessionStore
  readonly state: ConsoleState
  /** Device pages: recent uplinks and downlinks per device (device-history.ts). */
  readonly history: DeviceHistoryStore
  readonly ruleEditor: RuleEditor
  readonly limiter = new LoginLimiter()
  readonly httpRoutes: RouteRegistrar
  /** Undefined until started, or when the files are missing (the console then answers 503). */
  assets: Map<string, Asset> | undefined
  readonly refusals: Counter<'code'>
  private unsubscribe: Array<() => Promise<void>> = []
  private unobserve: (() => void) | undefined
  private sweeper: NodeJS.Timeout | undefined
  private readonly endListeners = new Set<(ended: EndedSession) => void>()

  constructor (private readonly deps: WebConsoleDeps) {
    const { config, metrics } = deps
    this.sessions = new SessionStore({
      idleMs: config.http.console.sessionIdleMinutes * 60_000,
      maxAgeMs: config.http.console.sessionMaxHours * 3_600_000,
      ...(deps.now !== undefined ? { now: deps.now } : {}),
    })
    this.sessions.onEnd = (s, reason) => {
      const ended: EndedSession = { user: s.user, session: s.id, reason, secrets: deps.tokens.revokeSession(s.id) }
      for (const listener of this.endListeners) listener(ended)
    }
    this.state = new ConsoleState(config.topics.root)
    const h = config.http.console.history
    this.history = createDeviceHistory(config.topics.root, { uplinks: h.uplinks, downlinks: h.downlinks, maxAgeMs: h.maxAgeHours * 3_600_000, devices: h.devices }, deps.log, deps.redis, deps.now)
    this.ruleEditor = new RuleEditor(deps)
    this.refusals = new Counter({ name: 'lorabridge_console_refused_total', help: 'Web console requests refused (no session, other origin, malformed, too large), by error code', labelNames: ['code'] as const, registers: [metrics.registry] })
    this.httpRoutes = (app, listener) => { if (this.servedOn(listener)) consoleRoutes(app, listener, { ...deps, console: this, refuse: r => { this.refuse(r) } }) }
  }

  /** Loopback listeners by default; any other only when it says `console: true`. */
  servedOn (listener: HttpListenerConfig): boolean {
    return listener.console ?? (this.deps.config.http.console.enabled && isLoopbackHost(listener.host))
  }

  /**
   * Calls `listener` for every session that ends (logout, expiry, its user removed or no longer an
   * admin, daemon stop), with the one-time MQTT secrets minted for it: whoever keeps the broker's
   * connections can close the ones those secrets opened. Returns the unsubscribe function.
   */
  onSessionEnd (listener: (ended: EndedSession) => void): () => void {
    this.endListeners.add(listener)
    return () => { this.endListeners.delete(listener) }
  }

  /** Counts and logs a refusal; login failures are authentication failures, the rest console refusals. */
  refuse (r: ConsoleRefusal): void {
    const login = r.code === 'LB_ERR_CONSOLE_LOGIN' || r.code === 'LB_ERR_CONSOLE_FORBIDDEN' || r.code === 'LB_ERR_CONSOLE_LOGIN_RATE'
    if (login) this.deps.metrics.authFailures.inc({ code: r.code })
    else this.refusals.inc({ code: r.code })
    // A page left open past its session asks a few more times before it shows the login form.
    const level = r.code === 'LB_ERR_CONSOLE_SESSION' ? 'debug' : 'warn'
    this.deps.log[level]({ code: r.code, address: r.address, user: r.user, url: r.url, reason: r.reason, ...(r.host !== undefined ? { host: r.host } : {}) }, login ? 'console login refused' : 'console request refused')
  }

  async start (): Promise<void> {
    const { config, log, bus, broker } = this.deps
    if (!config.http.listeners.some(l => this.servedOn(l))) return
    try {
      this.assets = await loadAssets()
    } catch (err) {
      log.error({ code: 'LB_ERR_CONSOLE_ASSETS', err }, 'web console files missing; the console answers 503')
    }
    // One subscription per filter, each message parsed once for the views and the uplink history.
    const root = config.topics.root
    const upTopic = (topic: string): boolean => topic.endsWith('/up')
    for (const filter of this.state.filters) {
      this.unsubscribe.push(await bus.subscribe(filter, (topic, payload, local) => {
        let body = bus.bodyOf(payload)
        if (body === undefined) {
          try { body = JSON.parse(payload.toString('utf8')) } catch { return }
        }
        this.state.take(topic, payload, body)
        if (upTopic(topic)) this.history.take(topic, body, local)
      }))
    }
    // Downlink requests and their outcomes are observed in-process, not subscribed to: a
    // subscription would make every rule's echo and every outcome a broker publication (about a
    // third more CPU per uplink in the pipeline bench), where nobody else listens. Only this
    // instance's own requests and outcomes are kept, as the Redis history keeps only local events.
    const downPrefix = `${root}/`
    this.unobserve = bus.observe((topic, body) => {
      if (topic.startsWith(downPrefix) && DOWN_KINDS.some(k => topic.endsWith(k))) this.history.take(topic, body, true)
    })
    // Statuses retained before this start (another instance, or a restart with Redis).
    try {
      for await (const p of broker.retained(`${config.topics.root}/gateways/+/status`)) this.state.take(p.topic, p.payload)
    } catch (err) {
      log.warn({ err }, 'could not read retained gateway statuses')
    }
    await this.ruleEditor.start()
    this.sweeper = setInterval(() => { this.sessions.sweep() }, SWEEP_MS)
    this.sweeper.unref()
    log.info({ listeners: config.http.listeners.filter(l => this.servedOn(l)).map(l => l.protocol) }, 'web console ready at /')
  }

  async stop (): Promise<void> {
    clearInterval(this.sweeper)
    // History writes still on their way to Redis get a moment, not the whole stop: Redis may be away.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.history.flush(), new Promise<void>(resolve => { timer = setTimeout(resolve, 2000) })])
    clearTimeout(timer)
    // Ends every session, which closes their MQTT-over-WebSocket connections.
    this.sessions.clear()
    this.deps.tokens.clear()
    await this.ruleEditor.stop()
    this.unobserve?.()
    this.unobserve = undefined
    await Promise.all(this.unsubscribe.splice(0).map(u => u().catch(() => {})))
  }
}
