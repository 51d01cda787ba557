/**
 * The ThingPark adapter (STYLE §2): one uplink endpoint per configured connection on the HTTP
 * listeners, and the token-signed downlink transport.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Component } from '../component.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { LorabridgeError } from '../errors.js'
import type { ApplicationResolver } from '../model/applications.js'
import type { EventBus } from '../core/bus.js'
import type { Deduplicator } from '../core/dedup.js'
import type { OutcomeReporter } from '../core/downlinks.js'
import type { RouteTable } from '../core/routes.js'
import type { RouteRegistrar } from '../http/http-listeners.js'
import type { KeyValueStore } from '../store/kv.js'
import type { FailureBudget } from '../util/failure-budget.js'
import { ThingParkDownlinks, type TpConnection } from './downlink.js'
import { ThingParkIngest, type TpAnswer, type TpHeadOk } from './ingest.js'
import type { ReplayMemory } from './replay-memory.js'

export interface ThingParkDeps {
  config: Config
  /** Publishes downlink outcomes (sent reports finish them later). */
  report: OutcomeReporter
  bus: EventBus
  dedup: Deduplicator
  /** Tokens accepted, until their Time leaves the window; shared through Redis in a cluster. */
  replays: ReplayMemory
  /** Refused unauthenticated requests per sender (thingpark.failedTokenLimit). */
  failures: FailureBudget
  routes: RouteTable
  apps: ApplicationResolver
  kv: KeyValueStore
  log: Logger
  metrics: Metrics
  now: () => Date
  ready: () => boolean
  env?: NodeJS.ProcessEnv
}

/** The AS key from `asKey` or the variable `asKeyEnv` names; read at start, never logged. */
export function resolveConnections (config: Config, env: NodeJS.ProcessEnv): Map<string, TpConnection> {
  const out = new Map<string, TpConnection>()
  for (const c of config.thingpark.connections) {
    const key = c.asKey ?? (c.asKeyEnv !== undefined ? env[c.asKeyEnv] : undefined)
    if (key === undefined || !/^[0-9a-fA-F]{32}$/.test(key)) {
      throw new LorabridgeError('LB_ERR_THINGPARK_KEY', `ThingPark connection "${c.name}": ${c.asKeyEnv !== undefined ? `environment variable ${c.asKeyEnv}` : 'asKey'} must hold 32 hex digits`)
    }
    out.set(c.name, { name: c.name, asId: c.asId, asKey: key, downlinkUrl: c.downlinkUrl, validitySeconds: c.downlinkValiditySeconds })
  }
  return out
}

export class ThingParkBridge implements Component {
  readonly name = 'thingpark'
  readonly downlinks: ThingParkDownlinks
  readonly ingest: ThingParkIngest
  readonly httpRoutes: RouteRegistrar
  private connections = new Map<string, TpConnection>()

  constructor (private readonly deps: ThingParkDeps) {
    const { config } = deps
    this.downlinks = new ThingParkDownlinks({ config, report: deps.report, kv: deps.kv, connections: this.connections, log: deps.log, metrics: deps.metrics })
    this.ingest = new ThingParkIngest({
      bus: deps.bus, dedup: deps.dedup, replays: deps.replays, failures: deps.failures, replayHorizonSeconds: config.thingpark.replayHorizonSeconds, routes: deps.routes, apps: deps.apps, downlinks: this.downlinks,
      report: deps.report, log: deps.log, metrics: deps.metrics, includeRaw: config.events.includeRaw, now: deps.now, ready: deps.ready,
    })
    this.httpRoutes = app => { this.register(app) }
  }

  private register (app: FastifyInstance): void {
    const { config, metrics, log } = this.deps
    app.register(async scope => {
      // The body is hashed from its fields, so it is taken as bytes and parsed here, whatever the type.
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.thingpark.maxBodyBytes }, (_req, b, done) => { done(null, b) })
      scope.setErrorHandler((err: Error & { statusCode?: number, code?: string }, req, reply) => {
        const tooLarge = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        const code = tooLarge ? 'LB_ERR_THINGPARK_TOO_LARGE' : 'LB_ERR_THINGPARK_BODY'
        // The sender passed the cheap checks but sent no report we could read: one failure spent.
        this.ingest.failed(req.socket.remoteAddress)
        metrics.ingestErrors.inc({ network: 'thingpark', code })
        log.warn({ code, url: req.url.split('?')[0], address: req.socket.remoteAddress, reason: err.message.slice(0, 200) }, 'ThingPark report refused')
        void reply.code(err.statusCode ?? 400).send({ error: code, message: err.message.slice(0, 200) })
      })
      for (const c of config.thingpark.connections) {
        // The checks that need no body run before it is read (onRequest); what they found is kept for the handler.
        const heads = new WeakMap<object, TpHeadOk>()
        const head = (req: FastifyRequest) => {
          const connection = this.connections.get(c.name)
          if (connection === undefined) return undefined
          const url = req.raw.url ?? ''
          const i = url.indexOf('?')
          return { connection, maxTimeDeviation: c.maxTimeDeviation, rawQuery: i < 0 ? '' : url.slice(i + 1), contentType: req.headers['content-type'], address: req.socket.remoteAddress }
        }
        const send = (reply: FastifyReply, answer: TpAnswer): FastifyReply => answer.body === undefined ? reply.code(answer.status).send() : reply.code(answer.status).send(answer.body)
        scope.post(c.path, {
          onRequest: async (req, reply) => {
            const h = head(req)
            if (h === undefined) return reply.code(503).send({ error: 'LB_ERR_COMPONENT_START', message: 'not started' })
            const pre = this.ingest.precheck(h)
            if ('status' in pre) return send(reply, pre)
            heads.set(req, pre)
          },
        }, async (req, reply) => {
          const h = head(req)
          const pre = heads.get(req)
          if (h === undefined || pre === undefined) return reply.code(503).send({ error: 'LB_ERR_COMPONENT_START', message: 'not started' })
          const answer = await this.ingest.handle({
            ...h,
            answerTimeoutMs: config.thingpark.answerTimeoutMs,
            body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
          }, pre)
          return send(reply, answer)
        })
      }
    })
  }

  async start (): Promise<void> {
    for (const [name, c] of resolveConnections(this.deps.config, this.deps.env ?? process.env)) this.connections.set(name, c)
    await this.downlinks.start()
  }

  async stop (): Promise<void> {
    await this.downlinks.stop()
  }
}
