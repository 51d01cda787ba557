/**
 * The composition root (STYLE §1): builds every component from one configuration, starts them in
 * order, and stops them in reverse. A component that fails to start stops the ones already started.
 */
import type { DestinationStream } from 'pino'
import type { Component } from './component.js'
import type { Config } from './config/schema.js'
import { createLogger, resolveLogFormat, type LogFormat, type Logger } from './log.js'
import { createMetrics, type Metrics } from './metrics.js'
import { describeStartupFailure, StartupError } from './startup-failure.js'
import { listenerUrl, onAllInterfaces } from './util/listener-url.js'
import { UsersStore } from './auth/users-file.js'
import { Authenticator } from './auth/authenticator.js'
import { createBrokerStore, type BrokerStore } from './broker/store.js'
import { Broker } from './broker/broker.js'
import { BanList } from './broker/bans.js'
import { MqttListeners } from './broker/listeners.js'
import { HttpListeners, type Readiness } from './http/http-listeners.js'
import { loadServerTls, type ServerTls, type TlsFileSettings } from './tls/server-options.js'
import { DevCertificates } from './tls/dev-certificates.js'
import { EventBus } from './core/bus.js'
import { GatewayPresence } from './core/presence.js'
import { InstanceStatus, instanceName } from './core/instance-status.js'
import { Pipeline } from './core/pipeline.js'
import type { AdapterContext } from './adapter-context.js'
import type { NetworkAdapter } from './core/adapter.js'
import { ApplicationResolver } from './model/applications.js'
import { Multitech } from './multitech/bridge.js'
import { ThingParkAdapter } from './thingpark/bridge.js'
import { FailureBudget } from './util/failure-budget.js'
import { RulesComponent } from './rules/component.js'
import { WebConsole } from './console/component.js'
import { ConsoleTokens } from './console/sessions.js'
import type { KeyValueStore } from './store/kv.js'
import { createStateStores } from './store/state-stores.js'
import { randomUUID } from 'node:crypto'

export interface DaemonOptions {
  config: Config
  /** Where log lines go; stdout by default. */
  logDestination?: DestinationStream
  /** Log format on stdout (`start --log-format`); default: config.log.format. Ignored with logDestination. */
  logFormat?: LogFormat
  /** The bridge clock for `receivedAt` and time windows (tests pin it). */
  now?: () => Date
  env?: NodeJS.ProcessEnv
}

/** How long one component may take to stop (it may be waiting on a Redis that does not answer). */
const STOP_TIMEOUT_MS = 5000

/** A registration (an ingest gate) as a Component: added on start, removed on stop. */
function gateComponent (name: string, add: () => () => void): Component {
  let remove: (() => void) | undefined
  return component(name, async () => { remove = add() }, async () => { remove?.(); remove = undefined })
}

/** Adapts a plain start/stop pair to a Component. */
function component (name: string, start: () => Promise<void>, stop: () => Promise<void>, ready?: () => boolean): Component {
  return { name, start, stop, ...(ready !== undefined ? { ready } : {}) }
}

export class Daemon {
  readonly log: Logger
  readonly metrics: Metrics
  readonly broker: Broker
  readonly mqtt: MqttListeners
  readonly http: HttpListeners
  readonly store: BrokerStore
  readonly bus: EventBus
  readonly pipeline: Pipeline<Omit<AdapterContext, 'events'>>
  readonly multitech: Multitech
  readonly thingpark: ThingParkAdapter
  readonly rules: RulesComponent
  readonly kv: KeyValueStore
  readonly console: WebConsole
  private readonly components: Component[]
  private readonly started: Component[] = []
  private stopping: Promise<void> | undefined

  constructor (readonly opts: DaemonOptions) {
    const { config } = opts
    this.log = createLogger(config.log.level, opts.logDestination, opts.logFormat ?? resolveLogFormat(config.log.format))
    this.metrics = createMetrics()
    const child = (name: string): Logger => this.log.child({ component: name })

    const users = new UsersStore(config.auth.usersFile ?? '', 1000, err => {
      child('auth').error({ code: 'LB_ERR_USERS_FILE', err }, 'users file not reloaded; keeping the previous users')
    })
    const devCerts = new DevCertificates(config, child('tls'))
    let defaultTls: Promise<ServerTls> | undefined
    const tls = (own?: TlsFileSettings): Promise<ServerTls> => {
      if (own !== undefined) return loadServerTls(config, own)
      defaultTls ??= loadServerTls(config)
      return defaultTls
    }
    this.store = createBrokerStore(config, child('redis'))
    // The web console mints one-time MQTT secrets that the broker's authenticator accepts (docs/console.md).
    const consoleTokens = new ConsoleTokens()
    const authenticator = new Authenticator(users, { oneTime: consoleTokens, failedAuth: config.auth.failedAuth })
    const now = opts.now ?? (() => new Date())
    // In-memory expiries follow the daemon's clock (tests inject one to cross windows instantly).
    const clockMs = (): number => now().getTime()
    // With Redis, instances form one cluster: what they must agree on lives there.
    const instance = randomUUID()
    const state = createStateStores(config, child('redis'), { instance, clockMs, onReplayEviction: () => { this.metrics.thingparkReplayEvictions.inc() } })
    this.kv = state.kv
    const { dedup, routes, locator, replays } = state
    const bans = new BanList(config.auth.bansFile ?? '', 1000, err => {
      child('auth').error({ code: 'LB_ERR_BANS_FILE', err }, 'ban list not reloaded; keeping the previous bans')
    })
    this.broker = new Broker({ config, log: child('broker'), metrics: this.metrics, store: this.store, authenticator, kv: this.kv, bans })
    this.mqtt = new MqttListeners({ config, log: child('mqtt'), metrics: this.metrics, broker: this.broker, tls, bans })
    // A new ban reaches the connections it covers.
    bans.onChange(() => {
      this.broker.revoke((identity, client, info) => bans.match({ address: info?.remoteAddress, clientId: client.id, user: identity.user }) !== undefined, 'banned')
    })
    // Access ends with the grant: a user removed or changed in the users file loses its connections.
    users.onChange(changed => {
      this.broker.revoke(identity => identity.user !== undefined && changed.has(identity.user), 'the user was removed or changed in the users file')
    })

    this.bus = new EventBus(this.broker, config.topics.root)
    const tpFailures = new FailureBudget(config.thingpark.failedTokenLimit.perAddress, config.thingpark.failedTokenLimit.windowSeconds, clockMs)
    const presence = new GatewayPresence(this.bus, child('presence'))
    const apps = new ApplicationResolver(config.applications)
    const storeReady = (): boolean => this.store.ready() && this.kv.ready()
    this.rules = new RulesComponent({ config, bus: this.bus, log: child('rules'), metrics: this.metrics, cooldowns: state.cooldowns })
    // The network adapters are built by the pipeline, from one context, with it as their sink.
    let multitech: Multitech | undefined
    let thingpark: ThingParkAdapter | undefined
    this.pipeline = new Pipeline({
      bus: this.bus, dedup, routes, rules: this.rules, log: child('pipeline'), metrics: this.metrics,
      context: {
        config, log: child, metrics: this.metrics, broker: this.broker, bus: this.bus, presence, apps, users, kv: this.kv, locator,
        replays, failures: tpFailures, now, ready: storeReady, env: opts.env ?? process.env,
      },
      // Looked up per downlink: a map made once.
      regions: (byApp => (app: string) => byApp.get(app) ?? config.downlinks.region)(new Map(config.applications.flatMap(a => a.region !== undefined ? [[a.name, a.region] as const] : []))),
      acks: {
        uplinksWithoutAck: network => network === 'thingpark' ? config.downlinks.thingparkUplinksWithoutAck : config.downlinks.conduitAckRetries + 2,
        timeoutMs: config.downlinks.ackTimeoutSeconds * 1000,
      },
      adapters: ctx => {
        multitech = new Multitech(ctx)
        thingpark = new ThingParkAdapter(ctx)
        return [...multitech.adapters, thingpark]
      },
    })
    this.multitech = multitech!
    this.thingpark = thingpark!
    const adapters: readonly NetworkAdapter[] = this.pipeline.adapters

    this.console = new WebConsole({ config, log: child('console'), metrics: this.metrics, users, authenticator, tokens: consoleTokens, broker: this.broker, bus: this.bus, routes, rules: this.rules, downlink: (app, devEui, request, body) => this.pipeline.router.fromRule(app, devEui, request, body), redis: state.redis })
    // A console session that ends (logout, expiry, eviction) takes the connections its one-time secrets opened.
    this.console.onSessionEnd(ended => {
      const secrets = new Set(ended.secrets)
      this.broker.revoke((identity, client) => identity.via === 'token' && secrets.has(this.broker.connections.secret(client) ?? ''), `console session ended (${ended.reason})`)
    })

    this.http = new HttpListeners({
      config, log: child('http'), metrics: this.metrics, readiness: () => this.readiness(), tls,
      routes: [...adapters.flatMap(a => a.httpRoutes !== undefined ? [a.httpRoutes] : []), this.console.httpRoutes],
    })

    this.components = [
      devCerts,
      component('users', async () => {
        await users.load(); users.watch()
        await bans.load(); bans.watch()
      }, async () => { users.unwatch(); bans.unwatch() }),
      // A wrong Redis password ends start-up here, with its code, instead of an endless retry.
      component('store', async () => {
        await Promise.all([this.store.verify(), state.verify()])
      }, async () => {
        await this.store.close()
        await state.close()
      }, () => this.store.ready()),
      // Health and readiness answer while the broker waits for Redis.
      this.http,
      this.broker,
      // Before the adapters: decoders must be in place for the first uplink.
      this.rules,
      // Follows gateway and device events from the first one on.
      this.console,
      // The adapters; ThingPark's pending retries resume and report their outcomes through the pipeline.
      ...adapters,
      // Applications' downlink commands, taken before the broker acknowledges them.
      gateComponent('downlink-commands', () => this.broker.gates.add(this.pipeline.router.gate)),
      component('cluster-state', async () => {}, async () => { state.stop(); tpFailures.close(); this.pipeline.close() }),
      // Last: clients connect only once everything that handles their messages is in place.
      this.mqtt,
      // Stopping before the listeners: downlinks still waiting for an HTTP Conduit end in
      // down/failed `shutdown` while subscribers are connected to hear it.
      component('http-downlink-drain', async () => {}, () => this.multitech.queue.drain()),
      // Says the instance runs once it does (and, stopping first, that it stops).
      new InstanceStatus({
        bus: this.bus, log: child('instance'), instanceName: instanceName(config.dataDir), instance, store: this.store.kind,
        listeners: () => [...this.mqtt.bound.map(b => ({ kind: 'mqtt' as const, ...b })), ...this.http.bound.map(b => ({ kind: 'http' as const, ...b }))],
      }),
    ]
  }

  readiness (): Readiness {
    const checks: Record<string, boolean> = {
      started: this.started.length === this.components.length && this.stopping === undefined,
    }
    if (this.store.kind === 'redis') checks.redis = this.store.ready() && this.kv.ready()
    return { ready: Object.values(checks).every(Boolean), checks }
  }

  async start (): Promise<void> {
    for (const c of this.components) {
      if (this.stopping !== undefined) return
      try {
        await c.start()
        this.started.push(c)
      } catch (err) {
        const failure = describeStartupFailure(err, this.opts.config, c.name)
        // The reason once, without a stack, for a foreseen failure (a port in use, a bad file); a
        // bug keeps its stack here. `lorabridge start` also prints it as one line on stderr.
        this.log.error({ code: failure.code, component: c.name, reason: failure.message, fix: failure.fix, ...(failure.known ? {} : { err }) }, 'component failed to start')
        // It may have started in part (one listener of three bound): let it release what it holds.
        await c.stop().catch(() => {})
        await this.stop()
        throw new StartupError(failure, err)
      }
    }
    const listeners = [
      ...this.mqtt.bound.map((b, i) => ({ url: listenerUrl(b), path: `mqtt.listeners[${i}]`, address: b.address })),
      ...this.http.bound.map((b, i) => ({ url: listenerUrl(b), path: `http.listeners[${i}]`, address: b.address })),
    ]
    // Said at start-up: the default mqtts listener is on 0.0.0.0, reachable from other machines.
    for (const l of listeners.filter(l => onAllInterfaces(l.address))) {
      this.log.warn({ listener: l.url, config: l.path }, `${l.url} listens on every interface: reachable from other machines (set ${l.path}.host to 127.0.0.1 to keep it local)`)
    }
    this.log.info({ listeners: listeners.map(l => l.url) }, 'lorabridge started')
  }

  /** Idempotent; stops what was started, in reverse order, and keeps going past failures. */
  stop (): Promise<void> {
    this.stopping ??= (async () => {
      const timeoutMs = STOP_TIMEOUT_MS
      for (const c of [...this.started].reverse()) {
        // A component waiting on an unreachable Redis (a publication, a QUIT) must not hold the
        // stop forever: past the timeout the stop goes on without it.
        let timer: NodeJS.Timeout | undefined
        const timedOut = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
        try {
          if (await Promise.race([c.stop().then(() => 'stopped' as const), timedOut]) === 'timeout') {
            this.log.error({ code: 'LB_ERR_COMPONENT_STOP', component: c.name, timeoutMs }, 'component did not stop in time; going on without it')
          }
        } catch (err) {
          this.log.error({ component: c.name, err }, 'component failed to stop cleanly')
        } finally {
          clearTimeout(timer)
        }
      }
      this.started.length = 0
      this.log.info('lorabridge stopped')
      await new Promise<void>(resolve => { this.log.flush(() => resolve()) })
    })()
    return this.stopping
  }
}
