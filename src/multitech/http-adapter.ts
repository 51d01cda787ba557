/**
 * app-connect's HTTP(S) mode (multitech-app-connect.md §3) on the HTTP listeners:
 * `[prefix]/api/v1/lorawan/…`. The Conduit ignores status codes and treats any answer as
 * delivered (§3 "Delivery semantics"), so when lorabridge cannot keep a message (the store is
 * down) it closes the connection instead of answering: that makes the Conduit retry.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TLSSocket } from 'node:tls'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { UsersStore } from '../auth/users-file.js'
import { isEui, isGatewayUuid, normalizeEui, normalizeGatewayId } from '../model/eui.js'
import { isLoopbackHost } from '../util/net.js'
import { certificateFacts, certificateIdentity } from '../tls/server-options.js'
import { certificateRecordRefusal } from '../auth/certificate-records.js'
import type { AppConnectIngest, IngestOutcome } from './ingest.js'
import type { HttpDownlinkQueue } from './http-queue.js'
import type { TopicShape } from './topics.js'
import type { MultitechRoute } from './route.js'
import { rawBody, takeRawBodies } from '../http/raw-body.js'
import { parseJson } from './payloads.js'

export interface AppConnectHttpDeps {
  config: Config
  ingest: AppConnectIngest
  queue: HttpDownlinkQueue
  users: UsersStore
  log: Logger
  metrics: Metrics
  /** A downlink poll by the Conduit a certificate is bound to (its dashed GW-UUID): evidence of life. */
  polled?: (gatewayId: string) => Promise<void>
}

const BASE = '/api/v1/lorawan'
/**
 * app-connect batches at most 10 queued messages, and a re-queued batch nested inside one holds at
 * most 10 again (§3): more items than that is not app-connect, and would turn one request into
 * thousands of ingests.
 */
const MAX_BATCH_ITEMS = 100

type BoundRequest = FastifyRequest & { gatewayBinding?: string }

/** The GW-UUID (dashed) the request's certificate is bound to; undefined for unbound and anonymous requests. */
const bindingOf = (req: FastifyRequest): string | undefined => (req as BoundRequest).gatewayBinding

function initResponse (config: Config): Record<string, number> {
  const h = config.multitech.http
  // `timeout` is stored but never applied by app-connect (§3); sent because it is expected.
  return { timeout: 20, queue_size: h.queueSize, downlink_query_interval: h.pollIntervalSeconds }
}

function gatewayShape (app: string, gw: string, event: 'init' | 'close'): TopicShape {
  if (!isGatewayUuid(gw) || (app !== '' && !isEui(app))) return { kind: 'unknown', reason: `/${app}/${gw}/${event}: not an AppEUI and a GW-UUID` }
  const appEui = normalizeEui(app)
  return { kind: 'gateway', event, family: gw.includes('-') ? '1.1' : '1.0', gatewayWire: gw, gatewayId: normalizeGatewayId(gw)!, ...(appEui !== undefined ? { appEui } : {}) }
}

function deviceShape (app: string, dev: string, event: 'up' | 'joined'): TopicShape {
  if (!isEui(dev) || (app !== '' && !isEui(app))) return { kind: 'unknown', reason: `/${app}/${dev}/${event}: not an AppEUI and a DevEUI` }
  const appEui = normalizeEui(app)
  return { kind: 'device', event, family: '1.0', devEui: normalizeEui(dev)!, ...(appEui !== undefined ? { appEui } : {}) }
}

export function appConnectRoutes (deps: AppConnectHttpDeps): (app: FastifyInstance) => void {
  const { config, ingest, queue, users, log, metrics } = deps
  const prefix = `${config.multitech.http.pathPrefix}${BASE}`
  // One message; a batch holds up to 10 (§3 "Batching").
  const single = config.multitech.maxPayloadBytes

  const refuse = (reply: FastifyReply, status: 401 | 403, reason: string, req: FastifyRequest): FastifyReply => {
    metrics.ingestErrors.inc({ network: 'multitech', code: 'LB_ERR_HTTP_AUTH' })
    log.warn({ code: 'LB_ERR_HTTP_AUTH', url: req.url, address: req.ip, reason }, 'app-connect HTTP request refused')
    return reply.code(status).send({ error: 'LB_ERR_HTTP_AUTH', message: reason })
  }

  /** A verified client certificate naming a gateway (or admin) user; without one, loopback listeners or `multitech.http.anonymous`. */
  const authorize = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const socket = req.raw.socket as TLSSocket
    const cn = socket.encrypted === true ? certificateIdentity(socket, config.auth.certificateIdentity) : undefined
    if (cn !== undefined) {
      const user = await users.get(cn)
      if (user === undefined || (user.role !== 'gateway' && user.role !== 'admin')) { await refuse(reply, 403, `certificate "${cn}" names no gateway user`, req); return }
      const unrecorded = certificateRecordRefusal(user, certificateFacts(socket))
      if (unrecorded !== undefined) { await refuse(reply, 403, unrecorded, req); return }
      const gw = (req.params as { gw?: string }).gw
      if (user.gateway !== undefined && gw !== undefined && normalizeGatewayId(gw)?.replace(/-/g, '') !== user.gateway.replace(/-/g, '')) {
        await refuse(reply, 403, 'certificate is bound to another gateway', req)
        return
      }
      const binding = user.gateway !== undefined ? normalizeGatewayId(user.gateway) : undefined
      if (binding !== undefined) (req as BoundRequest).gatewayBinding = binding
      return
    }
    if (config.multitech.http.anonymous || isLoopbackHost(socket.localAddress ?? '')) return
    await refuse(reply, 401, 'a client certificate is required on this listener (or set multitech.http.anonymous)', req)
  }

  /** Runs the ingest; a failure to keep the message closes the connection so that the Conduit retries. */
  const run = async (req: FastifyRequest, reply: FastifyReply, shape: TopicShape, json: unknown): Promise<IngestOutcome | undefined> => {
    try {
      return await ingest.keep({ shape, payload: { json }, transport: 'http', boundGateway: bindingOf(req) })
    } catch {
      reply.hijack()
      req.raw.socket.destroy()
      return undefined
    }
  }

  const body = (req: FastifyRequest): { ok: true, value: unknown } | { ok: false, message: string } =>
    parseJson(rawBody(req.body))

  const bad = (reply: FastifyReply, o: Extract<IngestOutcome, { result: 'error' }>): FastifyReply =>
    reply.code(o.code === 'LB_ERR_APPCONNECT_OTHER_GATEWAY' ? 403 : 400).send({ error: o.code, message: o.message })

  /**
   * Whose waiting downlinks a request may take (issue 12): a bound certificate only those routed
   * through its own Conduit; an unbound one (a gateway user without `gateway`, an admin, or an
   * anonymous loopback / `multitech.http.anonymous` request) only those routed through Conduits
   * that no gateway user is bound to, since nothing tells which Conduit it is.
   */
  const takeFilter = async (req: FastifyRequest): Promise<(route: MultitechRoute) => boolean> => {
    const bound = bindingOf(req)
    if (bound !== undefined) return route => route.gatewayId === bound
    const claimed = await users.boundGateways()
    return route => !claimed.has(route.gatewayId.replace(/-/g, ''))
  }

  const jsonError = (reply: FastifyReply, message: string): FastifyReply => {
    metrics.ingestErrors.inc({ network: 'multitech', code: 'LB_ERR_APPCONNECT_JSON' })
    log.warn({ code: 'LB_ERR_APPCONNECT_JSON', reason: message }, 'app-connect message refused')
    return reply.code(400).send({ error: 'LB_ERR_APPCONNECT_JSON', message })
  }

  return app => {
    app.register(async scope => {
      // app-connect sends `Content-type: application/json` even with an empty body (close), and
      // `Accept: text/plain` while expecting JSON (§3): take every body as bytes, parse ourselves.
      takeRawBodies(scope)
      scope.addHook('onRequest', authorize)
      scope.setErrorHandler((err: Error & { statusCode?: number, code?: string }, req, reply) => {
        const tooLarge = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        const code = tooLarge ? 'LB_ERR_APPCONNECT_TOO_LARGE' : 'LB_ERR_APPCONNECT_PAYLOAD'
        metrics.ingestErrors.inc({ network: 'multitech', code })
        log.warn({ code, url: req.url, reason: err.message }, 'app-connect message refused')
        void reply.code(err.statusCode ?? 400).send({ error: code, message: err.message })
      })

      scope.post<{ Params: { app: string, gw: string } }>('/:app/:gw/init', { bodyLimit: single }, async (req, reply) => {
        const parsed = body(req)
        if (!parsed.ok) return jsonError(reply, parsed.message)
        const o = await run(req, reply, gatewayShape(req.params.app, req.params.gw, 'init'), parsed.value ?? {})
        if (o === undefined) return reply
        if (o.result === 'error') return bad(reply, o)
        // Polling starts only after an init answer that parses as JSON (§3).
        return initResponse(config)
      })

      scope.post<{ Params: { app: string, gw: string } }>('/:app/:gw/close', { bodyLimit: single }, async (req, reply) => {
        const o = await run(req, reply, gatewayShape(req.params.app, req.params.gw, 'close'), undefined)
        if (o === undefined) return reply
        if (o.result === 'error') return bad(reply, o)
        return {}
      })

      scope.post<{ Params: { app: string, dev: string } }>('/:app/:dev/up', { bodyLimit: single }, async (req, reply) => {
        const parsed = body(req)
        if (!parsed.ok) return jsonError(reply, parsed.message)
        const shape = deviceShape(req.params.app, req.params.dev, 'up')
        const o = await run(req, reply, shape, parsed.value)
        if (o === undefined) return reply
        if (o.result === 'error') return bad(reply, o)
        const devEui = o.result === 'published' ? o.event.devEui : shape.kind === 'device' ? shape.devEui : undefined
        // Class A: the device's pending downlinks ride on the answer (§4).
        return queue.take(devEui !== undefined ? [devEui] : [], await takeFilter(req))
      })

      scope.post<{ Params: { app: string, dev: string } }>('/:app/:dev/joined', { bodyLimit: single }, async (req, reply) => {
        const parsed = body(req)
        if (!parsed.ok) return jsonError(reply, parsed.message)
        const o = await run(req, reply, deviceShape(req.params.app, req.params.dev, 'joined'), parsed.value)
        if (o === undefined) return reply
        if (o.result === 'error') return bad(reply, o)
        return {}
      })

      // Batched uplinks (§3 "Batching"): up to 10 queued messages, possibly with an init body or a
      // nested re-queued batch inside. Each uplink is handled on its own; the rest is counted.
      scope.post<{ Params: { app: string } }>('/:app/up', { bodyLimit: single * 10 }, async (req, reply) => {
        const parsed = body(req)
        if (!parsed.ok) return jsonError(reply, parsed.message)
        if (!Array.isArray(parsed.value)) return jsonError(reply, 'a batch must be a JSON array')
        const items = (parsed.value as unknown[]).flat(2)
        if (items.length > MAX_BATCH_ITEMS) {
          metrics.ingestErrors.inc({ network: 'multitech', code: 'LB_ERR_APPCONNECT_TOO_LARGE' })
          log.warn({ code: 'LB_ERR_APPCONNECT_TOO_LARGE', url: req.url, items: items.length }, 'app-connect batch refused')
          return reply.code(413).send({ error: 'LB_ERR_APPCONNECT_TOO_LARGE', message: `${items.length} messages in a batch; app-connect sends at most ${MAX_BATCH_ITEMS}` })
        }
        const devEuis: string[] = []
        let refused: Extract<IngestOutcome, { result: 'error' }> | undefined
        for (const item of items) {
          const fields = (item ?? {}) as { deveui?: unknown, appeui?: unknown, gateways_euis?: unknown }
          if (fields.gateways_euis !== undefined) { metrics.ingestIgnored.inc({ network: 'multitech', reason: 'init-in-batch' }); continue }
          const dev = typeof fields.deveui === 'string' ? fields.deveui : ''
          const shape = deviceShape(typeof fields.appeui === 'string' ? fields.appeui : '', dev, 'up')
          const o = await run(req, reply, shape, item)
          if (o === undefined) return reply
          if (o.result === 'error') refused ??= o
          else if (shape.kind === 'device') devEuis.push(shape.devEui)
        }
        if (refused !== undefined && devEuis.length === 0) return bad(reply, refused)
        return queue.take(devEuis, await takeFilter(req))
      })

      // GET with a JSON body listing the DevEUIs the Conduit knows (§3); Fastify does not parse GET bodies.
      scope.get<{ Params: { app: string } }>('/:app/down', async (req, reply) => {
        const chunks: Buffer[] = []
        let size = 0
        for await (const chunk of req.raw) {
          size += (chunk as Buffer).length
          if (size > config.multitech.maxPayloadBytes) return reply.code(413).send({ error: 'LB_ERR_APPCONNECT_TOO_LARGE', message: 'body too large' })
          chunks.push(chunk as Buffer)
        }
        const parsed = parseJson(Buffer.concat(chunks))
        if (!parsed.ok) return jsonError(reply, parsed.message)
        const list = parsed.value === undefined ? [] : parsed.value
        if (!Array.isArray(list)) return jsonError(reply, 'expected a JSON array of DevEUIs')
        const devEuis = list.map(normalizeEui).filter((d): d is string => d !== undefined)
        // A poll says nothing of who polls, unless the certificate's user is bound to a gateway.
        const bound = bindingOf(req)
        if (bound !== undefined) await deps.polled?.(bound)
        return queue.take(devEuis, await takeFilter(req))
      })
    }, { prefix })
  }
}
