/**
 * Everything a Conduit sends, over MQTT or HTTP, turned into presence, routes and normalized
 * events. Transport-agnostic: the MQTT adapter hands it classified topics, the HTTP adapter
 * classified paths, and both get the same output for the same message.
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { LorabridgeError, type ErrorCode } from '../errors.js'
import type { Join, MultitechNetwork, Uplink } from '../model/events.js'
import type { ApplicationResolver } from '../model/applications.js'
import { dashedEui, normalizeEui } from '../model/eui.js'
import { receiveTime } from '../core/dedup.js'
import type { GatewayPresence } from '../core/presence.js'
import type { EventSink } from '../core/adapter.js'
import { summaryOf, type MultitechRoute } from './route.js'
import { ConduitRegistry, versionFromInit, type AppConnectVersion, type Conduit } from './conduits.js'
import { check, InitPayload, JoinedPayload, parseJson, UplinkPayload } from './payloads.js'
import { normalizeJoin, normalizeUplink, type NormalizeContext } from './normalize.js'
import type { TopicShape } from './topics.js'

export interface IngestMessage {
  shape: TopicShape
  /** Raw bytes (MQTT) or an already parsed body (HTTP). */
  payload: Buffer | { json: unknown }
  transport: 'mqtt' | 'http'
  clientId?: string | undefined
  /**
   * The GW-UUID (dashed) the sender's credentials are bound to (a gateway user with `gateway`):
   * its device messages are that Conduit's, whatever they say; unset for unbound senders.
   */
  boundGateway?: string | undefined
  receivedAt?: Date
}

export type IngestOutcome =
  | { result: 'published', kind: 'up' | 'join', event: Uplink | Join, gatewayId?: string }
  | { result: 'duplicate', kind: 'up' | 'join', id: string, gatewayId?: string }
  | { result: 'presence', gatewayId: string }
  | { result: 'ignored', reason: string }
  | { result: 'error', code: ErrorCode, message: string }

export interface IngestDeps {
  events: EventSink
  /** False while the store (Redis) is unreachable. */
  ready: () => boolean
  presence: GatewayPresence
  apps: ApplicationResolver
  conduits: ConduitRegistry
  log: Logger
  metrics: Metrics
  includeRaw: boolean
  maxPayloadBytes: number
  now: () => Date
}

const NETWORK = 'multitech'
/** The adapters' names in route entries. */
export const MULTITECH_MQTT = 'multitech-mqtt'
export const MULTITECH_HTTP = 'multitech-http'

/**
 * How long a message may wait for the store before it is given up unacknowledged (the connection
 * closes, the Conduit sends again): a store that hangs must not hold every message and its memory.
 */
export const STORE_DEADLINE_MS = 5000

export class AppConnectIngest {
  constructor (private readonly deps: IngestDeps) {}

  /**
   * `handle` for a message that is acknowledged only once kept: refused at once while the store is
   * unreachable, and after STORE_DEADLINE_MS when it stops answering mid-way.
   */
  async keep (msg: IngestMessage): Promise<IngestOutcome> {
    if (!this.deps.ready()) {
      this.deps.log.warn({ code: 'LB_ERR_REDIS', transport: msg.transport, clientId: msg.clientId }, 'app-connect message not acknowledged: the store is unreachable')
      throw new LorabridgeError('LB_ERR_REDIS', 'the store is unreachable; not acknowledged')
    }
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.deps.log.warn({ code: 'LB_ERR_REDIS', transport: msg.transport, clientId: msg.clientId, deadlineMs: STORE_DEADLINE_MS }, 'app-connect message not kept in time; not acknowledged')
        reject(new LorabridgeError('LB_ERR_REDIS', 'the message could not be kept in time; not acknowledged'))
      }, STORE_DEADLINE_MS)
    })
    try {
      return await Promise.race([this.handle(msg), late])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Never throws: every message ends in one counted outcome. */
  async handle (msg: IngestMessage): Promise<IngestOutcome> {
    let outcome: IngestOutcome
    try {
      outcome = await this.dispatch(msg)
    } catch (err) {
      // A failure to publish (store down) is ours, not the gateway's: logged, and reported to the caller.
      this.deps.log.error({ code: 'LB_ERR_REDIS', err }, 'could not publish a normalized event')
      throw err
    }
    this.account(msg, outcome)
    return outcome
  }

  private account (msg: IngestMessage, o: IngestOutcome): void {
    const m = this.deps.metrics
    switch (o.result) {
      // Published and duplicate frames are counted by the pipeline.
      case 'published': case 'duplicate': break
      case 'ignored': m.ingestIgnored.inc({ network: NETWORK, reason: o.reason }); break
      case 'error': {
        m.ingestErrors.inc({ network: NETWORK, code: o.code })
        const gateway = this.knownGateway(msg)
        if (gateway !== undefined) m.gatewayErrors.inc({ network: NETWORK, gateway, code: o.code })
        this.deps.log.warn({ code: o.code, transport: msg.transport, clientId: msg.clientId, gateway, shape: msg.shape.kind, reason: o.message }, 'app-connect message refused')
        break
      }
      case 'presence': break
    }
  }

  /** The Conduit a refused message came from, when its topic or connection tells (never learnt from it). */
  private knownGateway (msg: IngestMessage): string | undefined {
    const shape = msg.shape
    if (msg.boundGateway !== undefined) return msg.boundGateway
    if ((shape.kind === 'device' || shape.kind === 'gateway') && shape.gatewayId !== undefined) return shape.gatewayId
    return msg.clientId !== undefined ? this.deps.conduits.byClientId(msg.clientId)?.gatewayId : undefined
  }

  private json (msg: IngestMessage): { ok: true, value: unknown } | { ok: false, outcome: IngestOutcome } {
    if (!Buffer.isBuffer(msg.payload)) return { ok: true, value: msg.payload.json }
    if (msg.payload.length > this.deps.maxPayloadBytes) {
      return { ok: false, outcome: { result: 'error', code: 'LB_ERR_APPCONNECT_TOO_LARGE', message: `${msg.payload.length} bytes` } }
    }
    const parsed = parseJson(msg.payload)
    return parsed.ok ? parsed : { ok: false, outcome: { result: 'error', code: 'LB_ERR_APPCONNECT_JSON', message: parsed.message } }
  }

  private async dispatch (msg: IngestMessage): Promise<IngestOutcome> {
    const shape = msg.shape
    switch (shape.kind) {
      case 'unknown': return { result: 'error', code: 'LB_ERR_APPCONNECT_TOPIC', message: shape.reason }
      case 'command': return { result: 'ignored', reason: 'command' }
      case 'gateway': return this.gatewayEvent(shape, msg)
      case 'device': return this.deviceEvent(shape, msg)
    }
  }

  private async gatewayEvent (shape: Extract<TopicShape, { kind: 'gateway' }>, msg: IngestMessage): Promise<IngestOutcome> {
    const { conduits, presence } = this.deps
    const seen = async (c: Conduit): Promise<IngestOutcome> => {
      await presence.seen(c.gatewayId, { network: NETWORK, protocol: c.version, transport: c.transport, gatewayEuis: c.gatewayEuis })
      return { result: 'presence', gatewayId: c.gatewayId }
    }
    switch (shape.event) {
      case 'init': {
        const body = this.json(msg)
        if (!body.ok) return body.outcome
        // A zero-length retained publish clears the retained init; it says nothing new.
        if (body.value === undefined) return { result: 'ignored', reason: 'empty' }
        const init = check(InitPayload, body.value)
        if (!init.ok) return { result: 'error', code: init.code === 'LB_ERR_APPCONNECT_JSON' ? 'LB_ERR_APPCONNECT_PAYLOAD' : init.code, message: init.message }
        const c = conduits.learn(shape.gatewayWire, {
          version: versionFromInit(init.value.api_version, shape.family),
          gatewayEuis: this.ownEuis(msg, shape.gatewayId, (init.value.gateways_euis ?? []).map(e => dashedEui(normalizeEui(e)!))),
          transport: msg.transport,
          clientId: msg.clientId,
          appEui: shape.appEui,
        })
        return seen(c)
      }
      case 'connected':
        // Only 1.1.1 sends it (F13).
        return seen(conduits.learn(shape.gatewayWire, { version: '1.1.1', transport: msg.transport, clientId: msg.clientId }))
      case 'close':
      case 'disconnected':
        conduits.learn(shape.gatewayWire, { transport: msg.transport })
        await presence.offline(shape.gatewayId, shape.event === 'close' ? 'close' : 'will')
        return { result: 'presence', gatewayId: shape.gatewayId }
      default:
        // lora_res, api_res, log_res: answers to requests lorabridge does not make.
        return { result: 'ignored', reason: 'response' }
    }
  }

  /**
   * The Conduit a device message came from: the one the sender is bound to; else the topic's
   * GW-UUID, the client id, or the radio card's EUI (which an unbound sender may claim freely).
   */
  private conduitFor (shape: Extract<TopicShape, { kind: 'device' }>, msg: IngestMessage, gweui: string | undefined): Conduit | undefined {
    const { conduits } = this.deps
    if (msg.boundGateway !== undefined) return conduits.get(msg.boundGateway) ?? conduits.learn(msg.boundGateway, { transport: msg.transport })
    if (shape.gatewayWire !== undefined) return conduits.get(shape.gatewayId!) ?? conduits.learn(shape.gatewayWire, { transport: msg.transport, clientId: msg.clientId })
    return (msg.clientId !== undefined ? conduits.byClientId(msg.clientId) : undefined) ?? conduits.byGatewayEui(gweui)
  }

  /**
   * A bound Conduit naming a gateway EUI that another Conduit declared: an attempt to pass as that
   * gateway (the EUI feeds `gateways[]` and application matching), refused. An EUI nobody declared
   * becomes the bound Conduit's own (HTTP Conduits do not init again after lorabridge restarts), so
   * that a later claim by another Conduit cannot lock it out.
   */
  private checkGatewayEui (msg: IngestMessage, conduit: Conduit | undefined, gweui: string | undefined): IngestOutcome | undefined {
    if (msg.boundGateway === undefined || gweui === undefined || conduit === undefined) return undefined
    const eui = normalizeEui(gweui)
    if (eui === undefined || conduit.gatewayEuis.some(e => normalizeEui(e) === eui)) return undefined
    const owner = this.deps.conduits.byGatewayEui(eui)
    if (owner !== undefined && owner.gatewayId !== conduit.gatewayId) {
      return { result: 'error', code: 'LB_ERR_APPCONNECT_OTHER_GATEWAY', message: `gateway EUI ${dashedEui(eui)} is declared by Conduit ${owner.gatewayId}, and this sender is bound to ${conduit.gatewayId}` }
    }
    this.deps.conduits.learn(conduit.gatewayWire, { gatewayEuis: [...conduit.gatewayEuis, dashedEui(eui)] })
    return undefined
  }

  /**
   * The gateway EUIs a bound Conduit's init may declare: its own, and none another Conduit declared
   * first (else a bound Conduit could take over another's radio EUIs). Each refused one is logged and
   * counted; the init itself goes on, so that the Conduit starts polling.
   */
  private ownEuis (msg: IngestMessage, gatewayId: string, euis: string[]): string[] {
    if (msg.boundGateway === undefined) return euis
    const declared = this.deps.conduits.get(gatewayId)?.gatewayEuis ?? []
    return euis.filter(eui => {
      const owner = this.deps.conduits.byGatewayEui(eui)
      if (owner === undefined || owner.gatewayId === gatewayId || declared.includes(eui)) return true
      this.deps.metrics.ingestErrors.inc({ network: NETWORK, code: 'LB_ERR_APPCONNECT_OTHER_GATEWAY' })
      this.deps.log.warn({ code: 'LB_ERR_APPCONNECT_OTHER_GATEWAY', transport: msg.transport, gateway: gatewayId, gatewayEui: eui, owner: owner.gatewayId }, 'init declares a gateway EUI another Conduit declared; ignored')
      return false
    })
  }

  private version (shape: Extract<TopicShape, { kind: 'device' }>, conduit: Conduit | undefined): AppConnectVersion {
    if (shape.family === '1.1') return conduit?.version === '1.1.1' ? '1.1.1' : '1.1'
    // A v1.1 Conduit whose uplinkTopic is still the v1.0 template (§2.5, F7) keeps its own version.
    return conduit?.version ?? '1.0'
  }

  private async deviceEvent (shape: Extract<TopicShape, { kind: 'device' }>, msg: IngestMessage): Promise<IngestOutcome> {
    if (shape.event === 'moved') return { result: 'ignored', reason: 'moved' }
    const body = this.json(msg)
    if (!body.ok) return body.outcome
    if (body.value === undefined) return { result: 'ignored', reason: 'empty' }
    const receivedAt = msg.receivedAt ?? this.deps.now()
    const gweui = typeof (body.value as { gweui?: unknown })?.gweui === 'string' ? (body.value as { gweui: string }).gweui : undefined
    let conduit = this.conduitFor(shape, msg, gweui)
    const spoofed = this.checkGatewayEui(msg, conduit, gweui)
    if (spoofed !== undefined) return spoofed
    if (conduit !== undefined) conduit = this.deps.conduits.get(conduit.gatewayId) ?? conduit
    const network: MultitechNetwork = {
      type: 'multitech',
      transport: msg.transport,
      protocol: this.version(shape, conduit),
      ...(conduit !== undefined ? { gateway: conduit.gatewayId } : {}),
      ...(shape.appEui !== undefined ? { appEui: dashedEui(shape.appEui) } : {}),
    }
    const ctx: NormalizeContext = {
      app: facts => this.deps.apps.resolve(facts),
      network,
      receivedAt,
      includeRaw: this.deps.includeRaw,
    }
    if (shape.event === 'up') {
      const p = check(UplinkPayload, body.value)
      if (!p.ok) return { result: 'error', code: p.code, message: p.message }
      const n = normalizeUplink(p.value, shape.devEui, ctx)
      if (!n.ok) return { result: 'error', code: n.code, message: n.message }
      if (conduit !== undefined) conduit = this.deps.conduits.learn(conduit.gatewayWire, { encoding: p.value['data-format'] === 'hexadecimal' ? 'hex' : 'base64' })
      return this.publishOnce({ kind: 'up', event: n.event }, conduit, msg, p.value.lsnr, p.value.rssi)
    }
    const j = check(JoinedPayload, body.value)
    if (!j.ok) return { result: 'error', code: j.code, message: j.message }
    const n = normalizeJoin(j.value, shape.devEui, ctx)
    if (!n.ok) return { result: 'error', code: n.code, message: n.message }
    return this.publishOnce({ kind: 'join', event: n.event }, conduit, msg, undefined, undefined)
  }

  /** The way back to the device through the Conduit that carried this copy of the frame. */
  private routeOf (event: Uplink | Join, conduit: Conduit | undefined, msg: IngestMessage): MultitechRoute {
    const network = event.network as MultitechNetwork
    return {
      transport: msg.transport,
      protocol: network.protocol,
      gatewayWire: conduit?.gatewayWire ?? '',
      gatewayId: conduit?.gatewayId ?? '',
      appEui: network.appEui ?? (conduit?.appEui !== undefined ? dashedEui(conduit.appEui) : undefined),
      encoding: conduit?.encoding ?? 'base64',
      clientId: msg.clientId ?? conduit?.clientId,
    }
  }

  private async publishOnce (reception: { kind: 'up', event: Uplink } | { kind: 'join', event: Join }, conduit: Conduit | undefined, msg: IngestMessage, snr: number | undefined, rssi: number | undefined): Promise<IngestOutcome> {
    const { kind, event } = reception
    if (conduit !== undefined) {
      await this.deps.presence.seen(conduit.gatewayId, { network: NETWORK, protocol: conduit.version, transport: conduit.transport })
    }
    const gatewayId = conduit?.gatewayId
    const route = this.routeOf(event, conduit, msg)
    const result = await this.deps.events.accept({
      ...reception,
      network: NETWORK,
      gateway: gatewayId,
      route: { adapter: msg.transport === 'mqtt' ? MULTITECH_MQTT : MULTITECH_HTTP, route, summary: summaryOf(route), snr, rssi },
      ...(kind === 'up' ? { receivedAtMs: receiveTime(event) } : {}),
    })
    if (result === 'duplicate') return { result: 'duplicate', kind, id: event.id, ...(gatewayId !== undefined ? { gatewayId } : {}) }
    return { result: 'published', kind, event, ...(gatewayId !== undefined ? { gatewayId } : {}) }
  }
}
