/**
 * A device's page in the console (docs/console.md#device-pages): `GET /console/api/devices/{app}/{devEui}`
 * answers its recent uplinks, its downlink requests with their outcomes and its pending list;
 * `POST …/down` sends a downlink from the page. The request goes the way a rule's does (the
 * router echoes it on `…/down`, then routes it), so its outcomes are the ones every subscriber
 * sees. Only admins have console sessions: sending is an admin's right, as on MQTT.
 *
 * A device is looked up in the application the request names: one in another application is
 * answered as unknown, and a downlink to it ends in `down/failed` `no-route`, as over MQTT.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { normalizeAddress } from '../util/net.js'
import { checkDownlinkRequest } from '../core/downlink-request.js'
import { deviceTopic } from '../model/topics.js'
import type { ErrorCode } from '../errors.js'
import type { WebConsoleDeps } from './deps.js'
import type { ConsoleState } from './state.js'
import type { Session } from './sessions.js'
import type { DeviceHistoryStore } from './device-history.js'

type PreHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>

export interface DeviceRouteHelpers {
  needSession: PreHandler
  jsonBody: (req: FastifyRequest, reply: FastifyReply) => Record<string, unknown> | undefined
  sessionOf: WeakMap<FastifyRequest, Session>
  history: DeviceHistoryStore
}

/** As applications are named in the configuration. */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/
/** 16 hex digits, in any case, with or without `-` or `:` between the bytes. */
const DEV_EUI = /^[0-9a-fA-F]{2}(?:[-:]?[0-9a-fA-F]{2}){7}$/
/** The largest LoRaWAN application payload in any region (RP002: 242 bytes at the fastest data rates). */
const MAX_DOWNLINK_BYTES = 242
const MAX_OBJECT_JSON = 4096
const DOWNLINK_FIELDS = new Set(['fPort', 'hex', 'object', 'confirmed'])

interface DeviceParams { app: string, devEui: string }

/** What these routes use of the console's (routes.ts passes its own deps). */
export interface DeviceRouteDeps extends WebConsoleDeps {
  console: { readonly state: ConsoleState }
  refuse: (r: { code: ErrorCode, address: string, user?: string | undefined, url?: string | undefined, reason: string }) => void
}

export function deviceRoutes (scope: FastifyInstance, deps: DeviceRouteDeps, helpers: DeviceRouteHelpers): void {
  const { needSession, jsonBody, sessionOf, history } = helpers
  const { config, log } = deps
  const root = config.topics.root

  /** 400 with the console's request code and the field at fault, logged and counted like every refusal. */
  const badField = (reply: FastifyReply, req: FastifyRequest, field: string, message: string): FastifyReply => {
    deps.refuse({ code: 'LB_ERR_CONSOLE_REQUEST', address: normalizeAddress(req.socket.remoteAddress), user: sessionOf.get(req)?.user, url: req.url.split('?')[0], reason: `${field}: ${message}` })
    return reply.code(400).headers({ 'cache-control': 'no-store' }).send({ error: 'LB_ERR_CONSOLE_REQUEST', field, message })
  }

  /** The app and normalized DevEUI of the path, or undefined after answering 400. */
  const device = (req: FastifyRequest<{ Params: DeviceParams }>, reply: FastifyReply): DeviceParams | undefined => {
    const { app, devEui } = req.params
    if (!APP_NAME.test(app)) { void badField(reply, req, 'app', 'an application name: letters, digits, _ and -, at most 64'); return undefined }
    if (!DEV_EUI.test(devEui)) { void badField(reply, req, 'devEui', 'a DevEUI: 16 hexadecimal digits'); return undefined }
    return { app, devEui: devEui.replace(/[-:]/g, '').toLowerCase() }
  }

  scope.get<{ Params: DeviceParams }>('/console/api/devices/:app/:devEui', { preHandler: needSession }, async (req, reply) => {
    const d = device(req, reply)
    if (d === undefined) return reply
    const view = deps.console.state.deviceView(d.app, d.devEui)
    const kept = await history.read(d.app, d.devEui)
    if (view === undefined && kept === undefined) {
      return reply.code(404).headers({ 'cache-control': 'no-store' }).send({ error: 'LB_ERR_CONSOLE_NOT_FOUND', message: `no device ${d.devEui} heard in application ${d.app} within the history window` })
    }
    const route = await deps.routes.get(d.devEui).catch(() => undefined)
    let pending: unknown[] = []
    try {
      for await (const p of deps.broker.retained(deviceTopic(root, d.app, d.devEui, 'down/pending'))) {
        const body = JSON.parse(p.payload.toString('utf8')) as { pending?: unknown }
        if (Array.isArray(body.pending)) pending = body.pending.slice(0, 50)
      }
    } catch { /* no pending list shown rather than no page */ }
    const h = config.http.console.history
    return reply.headers({ 'cache-control': 'no-store' }).send({
      app: d.app,
      devEui: d.devEui,
      device: view,
      route: route !== undefined && route.app === d.app ? route.summary : undefined,
      pending,
      uplinks: kept?.uplinks ?? [],
      downlinks: kept?.downlinks ?? [],
      window: { uplinks: h.uplinks, downlinks: h.downlinks, maxAgeHours: h.maxAgeHours, store: history.kind },
    })
  })

  scope.post<{ Params: DeviceParams }>('/console/api/devices/:app/:devEui/down', { preHandler: needSession }, async (req, reply) => {
    const body = jsonBody(req, reply)
    if (body === undefined) return reply
    const d = device(req, reply)
    if (d === undefined) return reply
    const unknown = Object.keys(body).find(k => !DOWNLINK_FIELDS.has(k))
    if (unknown !== undefined) return badField(reply, req, unknown, 'not a field of a console downlink (fPort, hex, object, confirmed)')
    const { fPort, hex, object, confirmed } = body
    if ((hex === undefined) === (object === undefined)) return badField(reply, req, 'payload', 'give exactly one of hex or object')
    if (confirmed !== undefined && typeof confirmed !== 'boolean') return badField(reply, req, 'confirmed', 'true or false')
    if (fPort !== undefined && (typeof fPort !== 'number' || !Number.isInteger(fPort) || fPort < 1 || fPort > 223)) {
      return badField(reply, req, 'fPort', 'an application port: an integer from 1 to 223')
    }
    const request: Record<string, unknown> = { id: `console-${randomBytes(6).toString('hex')}` }
    if (hex !== undefined) {
      if (typeof hex !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(hex)) return badField(reply, req, 'hex', 'hexadecimal bytes, two digits each (e.g. 01ff)')
      if (hex.length / 2 > MAX_DOWNLINK_BYTES) return badField(reply, req, 'hex', `at most ${MAX_DOWNLINK_BYTES} bytes`)
      if (fPort === undefined) return badField(reply, req, 'fPort', 'an fPort is needed with hex')
      request.fPort = fPort
      request.hex = hex.toLowerCase()
    } else {
      if (typeof object !== 'object' || object === null || Array.isArray(object)) return badField(reply, req, 'object', 'a JSON object, for the device\'s codec to encode')
      if (JSON.stringify(object).length > MAX_OBJECT_JSON) return badField(reply, req, 'object', `at most ${MAX_OBJECT_JSON} characters of JSON`)
      if (fPort !== undefined) request.fPort = fPort
      request.object = object
    }
    if (confirmed === true) request.confirmed = true
    const parsed = checkDownlinkRequest(request, d.devEui)
    if (!parsed.ok) return badField(reply, req, 'payload', parsed.detail)
    if (deps.downlink === undefined) return reply.code(503).send({ error: 'LB_ERR_CONSOLE_REQUEST', message: 'downlinks cannot be sent from this console' })
    const user = sessionOf.get(req)!.user
    log.info({ user, app: d.app, devEui: d.devEui, id: request.id, fPort: request.fPort, bytes: typeof request.hex === 'string' ? request.hex.length / 2 : undefined, object: request.object !== undefined, confirmed: confirmed === true }, 'downlink sent from the console')
    // The outcome comes on the device's topics (the page follows them); routing may wait on a network.
    deps.downlink(d.app, d.devEui, parsed.request, request).catch((err: unknown) => { log.error({ err, id: request.id, devEui: d.devEui }, 'console downlink routing failed') })
    return reply.code(202).headers({ 'cache-control': 'no-store' }).send({ id: request.id, topic: deviceTopic(root, d.app, d.devEui, 'down') })
  })
}
