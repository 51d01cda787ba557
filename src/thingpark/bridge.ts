/**
 * The ThingPark adapter (STYLE §2): one uplink endpoint per configured connection on the HTTP
 * listeners, and the token-signed downlink transport.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import { LorabridgeError } from '../errors.js'
import type { DownlinkRequest } from '../model/events.js'
import type { AdapterContext } from '../adapter-context.js'
import type { DownlinkTarget, NetworkAdapter, SendResult } from '../core/adapter.js'
import type { RouteRegistrar } from '../http/http-listeners.js'
import { rawBody, takeRawBodies } from '../http/raw-body.js'
import { ThingParkDownlinks, type TpConnection } from './downlink.js'
import { THINGPARK, ThingParkIngest, type TpAnswer, type TpHeadOk } from './ingest.js'

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

export class ThingParkAdapter implements NetworkAdapter {
  readonly name = THINGPARK
  readonly network = 'thingpark' as const
  readonly downlinks: ThingParkDownlinks
  readonly ingest: ThingParkIngest
  readonly httpRoutes: RouteRegistrar
  private connections = new Map<string, TpConnection>()
  private readonly log: Logger

  constructor (private readonly ctx: AdapterContext) {
    const { config, events, metrics } = ctx
    const log = this.log = ctx.log('thingpark')
    this.downlinks = new ThingParkDownlinks({ config, report: (kind, o, network) => events.outcome(kind, o, network), held: (app, devEui, req) => { events.held(app, devEui, req) }, kv: ctx.kv, connections: this.connections, log, metrics })
    this.ingest = new ThingParkIngest({
      events, replays: ctx.replays, failures: ctx.failures, replayHorizonSeconds: config.thingpark.replayHorizonSeconds, apps: ctx.apps, downlinks: this.downlinks,
      log, metrics, includeRaw: config.events.includeRaw, now: ctx.now, ready: ctx.ready,
    })
    this.httpRoutes = app => { this.register(app) }
  }

  send (target: DownlinkTarget, request: DownlinkRequest): Promise<SendResult> {
    return this.downlinks.send(target, request)
  }

  clear (target: DownlinkTarget): Promise<SendResult> {
    return this.downlinks.clear(target)
  }

  private register (app: FastifyInstance): void {
    const { config, metrics } = this.ctx
    const log = this.log
    app.register(async scope => {
      // The body is hashed from its fields, so it is taken as bytes and parsed here, whatever the type.
      takeRawBodies(scope, config.thingpark.maxBodyBytes)
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
            body: rawBody(req.body),
          }, pre)
          return send(reply, answer)
        })
      }
    })
  }

  async start (): Promise<void> {
    for (const [name, c] of resolveConnections(this.ctx.config, this.ctx.env)) this.connections.set(name, c)
    await this.downlinks.start()
  }

  async stop (): Promise<void> {
    await this.downlinks.stop()
  }
}
