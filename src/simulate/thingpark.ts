/**
 * An Actility ThingPark network server (the "LRC") as an application server sees it, simulated for
 * tests and benchmarks: the report POSTs of the tunnel interface (typed JSON, untyped JSON, XML;
 * security data in the query string) and the LRC's downlink endpoint. The protocol reference is the
 * spec "thingpark-tunnel.md"; section numbers (§) below refer to it.
 *
 * Deliberate choices:
 * - Reports are built in typed form; the untyped JSON and XML forms derive from it (every scalar a
 *   string, RF floats as `toFixed(6)` like the KPN captures, §1.2). The Token is computed from the
 *   string form, so it is the same for all three content types (§2.2 "Number-to-string").
 * - Tokens come from src/thingpark/token.ts (`bodyElementCandidates(...)[0]`, `uplinkToken`,
 *   `verifyDownlinkQuery`); nothing here hashes on its own.
 * - AS posts use a keep-alive agent by default (`keepAlive: false` reproduces the real LRC's
 *   `Connection: close`, §1.1). There are no retries: Basic HTTPS neither queues nor retries (§4).
 * - The simulated LRC answers 200 `Request queued by LRC` when the Token verifies, AS_ID matches and
 *   Time is within `maxTimeDeviationSeconds` (§3.2, §3.4). After a 200 for a request carrying a
 *   CorrelationID it posts `DevEUI_downlink_Sent` (§1.6) to the AS.
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { XMLBuilder } from 'fast-xml-parser'
import { bodyElementCandidates, lrcTime, parseRawQuery, QUERY_ORDER, uplinkToken, verifyDownlinkQuery } from '../thingpark/token.js'

export type TpContentType = 'json' | 'json-untyped' | 'xml'

export const TP_CONTENT_TYPES: readonly TpContentType[] = ['json', 'json-untyped', 'xml']
/** XML namespace of every report root (§1.1). */
export const LORA_XML_NS = 'http://uri.actility.com/lora'
/** The LRC's answer to an accepted downlink request (§3.4). */
export const LRC_SUCCESS_BODY = '<html><body>Request queued by LRC</body></html>'
/** Path of the LRC downlink endpoint (§3.1); `/thingpark/lrc/rest/v2/downlink` is accepted too. */
export const LRC_DOWNLINK_PATH = '/thingpark/lrc/rest/downlink'
export const LRC_USER_AGENT = 'ACTILITY-LRCLRN-DEVICE-AGENT/1.0'

const DEFAULT_TIMEOUT_MS = 10_000
/** RF values the untyped form writes with six decimals (`"-100.000000"`, §1.2). */
const RF_FLOAT_KEYS = new Set(['LrrRSSI', 'LrrSNR', 'LrrESP', 'LrrLAT', 'LrrLON'])

export interface ThingParkSimulatorOptions {
  /** the AS uplink URL given to ThingPark, e.g. http://127.0.0.1:8080/thingpark/tp-eu (https too) */
  asUrl: string
  /** e.g. TWA_100000001.1.AS */
  asId: string
  /** tunnel interface authentication key, 32 hex characters, used as given */
  asKey: string
  /** default '100000001' */
  customerId?: string
  /** default `${asId}-1-123456` */
  lrnInfos?: string
  /** default 'json' */
  contentType?: TpContentType
  /** CA for an https AS (default: the system's trusted CAs) */
  ca?: string | Buffer
  /** default '00000065' */
  lrcId?: string
  /** keep-alive agent for AS posts (default true); false sends `Connection: close` like the real LRC */
  keepAlive?: boolean
  /** extra headers on every AS post (ThingPark allows custom headers per connection, §1.1) */
  headers?: Record<string, string>
  /** per-post socket timeout, default 10000 ms */
  timeoutMs?: number
}

export interface PostResult {
  status: number
  /** response body */
  body: string
  /** the full URL posted to (query included) */
  url: string
  /** the report as sent, without its root: typed (json), all strings (json-untyped), or the XML's values */
  report: Record<string, unknown>
  root: string
  /** the decoded query parameters as sent, in wire order */
  query: Record<string, string>
  /** the request body as sent */
  requestBody: string
  contentType: TpContentType
}

export interface PostOptions {
  contentType?: TpContentType
  /** query Time (default now), formatted with lrcTime */
  time?: Date
  /** override the computed Token; null = omit Token */
  token?: string | null
  /** drop query params (e.g. ['LrnDevEui']); the Token is still computed over the complete query */
  omitParams?: string[]
  /** 'as-first' = AS_ID first, like the 2018 KPN capture (the token still verifies, §2.2) */
  queryOrder?: 'canonical' | 'as-first'
  /** send this body instead (still with a token computed from `report`) */
  rawBody?: string | Buffer
  /** override the Content-Type header */
  contentTypeHeader?: string
}

export interface LrrInfo { Lrrid: string, LrrRSSI: number, LrrSNR: number, LrrESP?: number, Chain?: number }

export interface UplinkInput {
  devEui: string
  /** default 1; remove with `extra: { FPort: undefined }` for a MAC-only uplink */
  fPort?: number
  fCntUp: number
  payloadHex: string
  /** body Time (radio reception), default now */
  time?: Date
  /** best first; default one LRR at -67 dBm / 9 dB */
  lrrs?: LrrInfo[]
  /** confirmed uplink: MType 4, AckRequested 1 */
  confirmed?: boolean
  devAddr?: string
  /** fields merged last; a key set to undefined is removed */
  extra?: Record<string, unknown>
}

export interface JoinRequestInput {
  devEui: string
  /** hex of the join-request PHYPayload; default built from devEui, joinEui and a random DevNonce */
  rawJoinRequest?: string
  joinEui?: string
  time?: Date
  lrrs?: LrrInfo[]
  extra?: Record<string, unknown>
}

export interface NotificationInput {
  devEui: string
  type: 'reset' | 'join' | 'devstatusans'
  var1?: string
  var2?: string
  devAddr?: string
  time?: Date
  extra?: Record<string, unknown>
}

export interface LocationInput {
  devEui: string
  lat: number
  lon: number
  alt?: number
  radius?: number
  /** NwGeolocAlgo, default 2 */
  algo?: number
  devLocTime?: Date
  time?: Date
  extra?: Record<string, unknown>
}

export interface DownlinkSentInput {
  devEui: string
  fPort: number
  fCntDn: number
  deliveryStatus: 0 | 1
  causes?: [string, string, string]
  correlationId?: string
  /** default 1 when delivered, 0 otherwise */
  transmissionSlot?: number
  time?: Date
  extra?: Record<string, unknown>
}

export interface DownlinkRejectedInput {
  devEui: string
  fPort: number
  cause: string
  correlationId?: string
  time?: Date
  extra?: Record<string, unknown>
}

export interface LrcRequest {
  method: string
  path: string
  /** decoded query parameters */
  params: Record<string, string>
  rawQuery: string
  tokenValid: boolean
  timeOk: boolean
  status: number
  responseBody: string
  /** Date.now() on arrival */
  at: number
}

export interface LrcOptions {
  /** default 0 (any free port) */
  port?: number
  /** default 127.0.0.1 */
  host?: string
  /** "Max Time Deviation" of the AS profile, default 60 s */
  maxTimeDeviationSeconds?: number
  /** delay before DevEUI_downlink_Sent, default 50 ms; < 0 = never send it */
  sentReportDelayMs?: number
  /**
   * The devices acknowledge confirmed downlinks (Confirmed=1): the device's next uplink after the
   * sent report carries ACKbit 1, unless `lose()` made it miss the downlink. Default false.
   */
  acknowledge?: boolean
}

type Json = Record<string, unknown>

function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)
}

function hex16 (value: string, what: string): string {
  const h = value.replace(/[-:\s]/g, '')
  if (!/^[0-9a-fA-F]{16}$/.test(h)) throw new Error(`${what}: not an EUI-64: ${value}`)
  return h
}

const round6 = (n: number): number => Number(n.toFixed(6))

/** Estimated signal power: RSSI + SNR − 10·log10(1 + 10^(SNR/10)) (matches the §1.2 capture). */
export function lrrEsp (rssi: number, snr: number): number {
  return round6(rssi + snr - 10 * Math.log10(1 + 10 ** (snr / 10)))
}

/** The untyped form: every scalar a string, RF floats with six decimals; nulls stay null. */
export function untypeReport (value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map(v => untypeReport(v, key))
  if (isObject(value)) {
    const out: Json = {}
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = untypeReport(v, k)
    return out
  }
  if (typeof value === 'number') return RF_FLOAT_KEYS.has(key) ? value.toFixed(6) : String(value)
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  return value
}

/** Values of the XML form: untyped scalars; objects other than Lrrs (CustomerData, DriverCfg, …) as JSON text (§1.2). */
function xmlValues (typed: Json): Json {
  const out: Json = {}
  for (const [k, v] of Object.entries(typed)) {
    if (v === undefined || v === null) continue
    if (k === 'Lrrs' && isObject(v)) out[k] = untypeReport(v, k)
    else if (isObject(v)) out[k] = JSON.stringify(v)
    else if (Array.isArray(v)) out[k] = v.map(x => isObject(x) ? JSON.stringify(x) : untypeReport(x, k))
    else out[k] = untypeReport(v, k)
  }
  return out
}

const escapeXmlText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function escapeDeep (v: unknown): unknown {
  if (typeof v === 'string') return escapeXmlText(v)
  if (Array.isArray(v)) return v.map(escapeDeep)
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeDeep(x)]))
  return v
}

// processEntities off, with &, <, > escaped beforehand: JSON text keeps its quotes as in the
// Actility sample (`<CustomerData>{"alr":…}</CustomerData>`).
const xmlBuilder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, format: false, processEntities: false })

export function reportXml (root: string, values: Json): string {
  const doc = { [root]: { '@_xmlns': LORA_XML_NS, ...(escapeDeep(values) as Json) } }
  return `<?xml version="1.0" encoding="utf-8"?>\n${xmlBuilder.build(doc) as string}`
}

/** Parses the LRC's view of a downlink Time: ISO 8601, a missing zone meaning UTC (§3.3). */
export function parseLrcTime (value: string): number {
  const v = value.trim()
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$/i.test(v)) return Number.NaN
  return Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(v) ? v : `${v}Z`)
}

function html (text: string): string {
  return `<html><body>${text}</body></html>`
}

function randomHex (bytes: number): string {
  return randomBytes(bytes).toString('hex')
}

/** A LoRaWAN 1.0 join-request PHYPayload: MHDR 00, JoinEUI LE, DevEUI LE, DevNonce LE, MIC. */
export function buildJoinRequest (devEui: string, joinEui = '0000000000000000', devNonce = randomBytes(2).readUInt16LE(0)): string {
  const le = (h: string): string => Buffer.from(h, 'hex').reverse().toString('hex')
  const nonce = Buffer.alloc(2)
  nonce.writeUInt16LE(devNonce & 0xffff)
  return `00${le(hex16(joinEui, 'joinEui'))}${le(hex16(devEui, 'devEui'))}${nonce.toString('hex')}${randomHex(4)}`
}

interface DeviceState { fCntDn: number, fCntUp: number }

export class ThingParkSimulator extends EventEmitter {
  readonly asId: string
  readonly customerId: string
  readonly lrnInfos: string
  readonly lrcId: string
  /** every request the LRC endpoint received */
  readonly lrcRequests: LrcRequest[] = []
  /** responses used before the default; each request shifts one */
  lrcScript: Array<{ status: number, body?: string }> = []
  /** failures of the automatic DevEUI_downlink_Sent posts (also emitted as 'error' when listened to) */
  readonly sentReportErrors: Error[] = []

  private readonly opts: ThingParkSimulatorOptions
  private readonly asKey: string
  private target: URL
  private readonly mod: typeof http | typeof https
  private agent: http.Agent
  private readonly devices = new Map<string, DeviceState>()
  private server: http.Server | undefined
  private lrcUrl: string | undefined
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly pending = new Set<Promise<unknown>>()
  private lrcOpts: Required<Pick<LrcOptions, 'maxTimeDeviationSeconds' | 'sentReportDelayMs' | 'acknowledge'>> = { maxTimeDeviationSeconds: 60, sentReportDelayMs: 50, acknowledge: false }
  /** Devices (DevEUI upper case) whose next uplink carries ACKbit. */
  private readonly owesAck = new Set<string>()
  private readonly toLose = new Map<string, number>()
  private readonly toFail = new Map<string, Array<[string, string, string]>>()

  /** The device misses the next `count` confirmed downlinks: sent, never acknowledged. */
  lose (devEui: string, count = 1): void {
    const key = devEui.toUpperCase()
    this.toLose.set(key, (this.toLose.get(key) ?? 0) + count)
  }

  /** The LRC does not transmit the device's next downlink: its DevEUI_downlink_Sent has DeliveryStatus 0 with these causes (RX1, RX2, ping slot). */
  failNext (devEui: string, causes: [string, string, string] = ['A3', 'D0', '00']): void {
    const key = devEui.toUpperCase()
    this.toFail.set(key, [...this.toFail.get(key) ?? [], causes])
  }

  constructor (opts: ThingParkSimulatorOptions) {
    super()
    this.opts = opts
    if (opts.asId === '') throw new Error('asId is required')
    if (opts.asKey === '') throw new Error('asKey is required')
    this.asId = opts.asId
    this.asKey = opts.asKey
    this.customerId = opts.customerId ?? '100000001'
    this.lrnInfos = opts.lrnInfos ?? `${opts.asId}-1-123456`
    this.lrcId = opts.lrcId ?? '00000065'
    if (opts.contentType !== undefined && !TP_CONTENT_TYPES.includes(opts.contentType)) throw new Error(`unknown content type ${String(opts.contentType)}`)
    this.target = new URL(opts.asUrl)
    if (this.target.protocol !== 'http:' && this.target.protocol !== 'https:') throw new Error(`the AS URL must be http:// or https://: ${opts.asUrl}`)
    this.mod = this.target.protocol === 'https:' ? https : http
    this.agent = this.newAgent()
  }

  private newAgent (): http.Agent {
    const keepAlive = this.opts.keepAlive !== false
    if (this.mod === https) {
      const o: https.AgentOptions = { keepAlive, rejectUnauthorized: true }
      if (this.opts.ca !== undefined) o.ca = this.opts.ca
      return new https.Agent(o)
    }
    return new http.Agent({ keepAlive })
  }

  private device (devEui: string): DeviceState {
    const key = devEui.toUpperCase()
    let d = this.devices.get(key)
    if (d === undefined) { d = { fCntDn: 0, fCntUp: 0 }; this.devices.set(key, d) }
    return d
  }

  private static devAddrOf (devEui: string): string {
    return ((0x26000000 | Number.parseInt(devEui.slice(-6), 16)) >>> 0).toString(16).toUpperCase().padStart(8, '0')
  }

  private lrrFields (lrrs: LrrInfo[] | undefined, withChain: boolean): Json {
    const list = lrrs !== undefined && lrrs.length > 0 ? lrrs : [{ Lrrid: '10000036', LrrRSSI: -67, LrrSNR: 9 }]
    const entries = list.map(l => {
      const e: Json = { Lrrid: l.Lrrid }
      if (withChain || l.Chain !== undefined) e.Chain = l.Chain ?? 0
      e.LrrRSSI = l.LrrRSSI
      e.LrrSNR = l.LrrSNR
      e.LrrESP = l.LrrESP ?? lrrEsp(l.LrrRSSI, l.LrrSNR)
      return e
    })
    const best = entries[0] as Json
    return { best, lrrs: { Lrr: entries }, count: entries.length }
  }

  private customerData (): Json {
    return { alr: { pro: 'LORA/Generic', ver: '1' } }
  }

  private static applyExtra (r: Json, extra: Record<string, unknown> | undefined): Json {
    if (extra === undefined) return r
    for (const [k, v] of Object.entries(extra)) {
      if (v === undefined) delete r[k]
      else r[k] = v
    }
    return r
  }

  // ---------------------------------------------------------------- reports

  /** A `DevEUI_uplink` in the field order of the §1.2 capture. */
  buildUplink (o: UplinkInput): Json {
    const devEui = hex16(o.devEui, 'devEui').toUpperCase()
    const dev = this.device(devEui)
    dev.fCntUp = o.fCntUp
    const rf = this.lrrFields(o.lrrs, true)
    const best = rf.best as Json
    const r: Json = {
      Time: lrcTime(o.time ?? new Date()),
      DevEUI: devEui,
      FPort: o.fPort ?? 1,
      FCntUp: o.fCntUp,
      ADRbit: 1,
      MType: o.confirmed === true ? 4 : 2,
      FCntDn: dev.fCntDn,
      payload_hex: o.payloadHex.toLowerCase(),
      mic_hex: randomHex(4),
      Lrcid: this.lrcId,
      LrrRSSI: best.LrrRSSI,
      LrrSNR: best.LrrSNR,
      LrrESP: best.LrrESP,
      SpFact: 7,
      SubBand: 'G1',
      Channel: 'LC2',
      DevLrrCnt: rf.count,
      Lrrid: best.Lrrid,
      Late: 0,
      LrrLAT: 48.874931,
      LrrLON: 2.333673,
      Lrrs: rf.lrrs,
      CustomerID: this.customerId,
      CustomerData: this.customerData(),
      ModelCfg: '0',
      InstantPER: 0,
      MeanPER: 0,
      DevAddr: (o.devAddr ?? ThingParkSimulator.devAddrOf(devEui)).toUpperCase(),
      AckRequested: o.confirmed === true ? 1 : 0,
      rawMacCommands: '',
      TxPower: 16,
      NbTrans: 1,
      Frequency: 868.1,
      DynamicClass: 'A',
    }
    return ThingParkSimulator.applyExtra(r, o.extra)
  }

  async uplink (o: UplinkInput, p?: PostOptions): Promise<PostResult> {
    // ThingPark sends ACKbit only when it is set (§1.2).
    const acking = this.owesAck.delete(o.devEui.toUpperCase())
    return this.post('DevEUI_uplink', this.buildUplink(acking ? { ...o, extra: { ACKbit: 1, ...o.extra } } : o), p)
  }

  /** The join-request variant of `DevEUI_uplink` (§1.3): no FPort/FCntUp/payload_hex, MType 0, `Spfact`. */
  buildJoinRequest (o: JoinRequestInput): Json {
    const devEui = hex16(o.devEui, 'devEui').toUpperCase()
    const raw = (o.rawJoinRequest ?? buildJoinRequest(devEui, o.joinEui)).toLowerCase()
    const rf = this.lrrFields(o.lrrs, false)
    const best = rf.best as Json
    const r: Json = {
      Time: lrcTime(o.time ?? new Date()),
      DevEUI: devEui,
      rawJoinRequest: raw,
      Lrrid: best.Lrrid,
      Chain: 0,
      Channel: 'LC2',
      Spfact: 12,
      SubBand: 'G1',
      MType: 0,
      mic_hex: raw.slice(-8),
      airtime: 1.482752,
      Late: 0,
      LrrLAT: 48.874931,
      LrrLON: 2.333673,
      Lrrs: rf.lrrs,
      CustomerID: this.customerId,
      CustomerData: this.customerData(),
      ModelCfg: '0',
    }
    return ThingParkSimulator.applyExtra(r, o.extra)
  }

  async joinRequest (o: JoinRequestInput, p?: PostOptions): Promise<PostResult> {
    return this.post('DevEUI_uplink', this.buildJoinRequest(o), p)
  }

  /** `DevEUI_notification` (§1.4). FCntDn is the device's next downlink counter. */
  buildNotification (o: NotificationInput): Json {
    const devEui = hex16(o.devEui, 'devEui').toUpperCase()
    let var1 = o.var1
    let var2 = o.var2
    if (o.type === 'reset') var1 ??= 'admin_reset'
    if (o.type === 'devstatusans') { var1 ??= '255'; var2 ??= '10' }
    const r: Json = {
      Time: lrcTime(o.time ?? new Date()),
      DevEUI: devEui,
      Lrcid: this.lrcId,
      DevAddr: (o.devAddr ?? ThingParkSimulator.devAddrOf(devEui)).toUpperCase(),
      Type: o.type,
    }
    if (var1 !== undefined) r.Var1 = var1
    if (var2 !== undefined) r.Var2 = var2
    r.CustomerID = this.customerId
    r.CustomerData = this.customerData()
    r.FCntDn = this.device(devEui).fCntDn
    return ThingParkSimulator.applyExtra(r, o.extra)
  }

  async notification (o: NotificationInput, p?: PostOptions): Promise<PostResult> {
    return this.post('DevEUI_notification', this.buildNotification(o), p)
  }

  /** `DevEUI_location` (§1.5): DevEUI lower case (also in LrnDevEui), LrnFPort=0. */
  buildLocation (o: LocationInput): Json {
    const devEui = hex16(o.devEui, 'devEui')
    const now = new Date()
    const r: Json = {
      DevEUI: devEui.toLowerCase(),
      DevAddr: ThingParkSimulator.devAddrOf(devEui),
      Lrcid: this.lrcId,
      NwGeolocAlgo: o.algo ?? 2,
      NwGeolocAlgoUsed: 0,
      Time: lrcTime(o.time ?? now),
      DevLocTime: lrcTime(o.devLocTime ?? o.time ?? now),
      DevLAT: o.lat,
      DevLON: o.lon,
    }
    if (o.alt !== undefined) r.DevAlt = o.alt
    r.DevLocRadius = o.radius ?? 100
    if (o.alt !== undefined) r.DevAltRadius = 50
    r.DevUlFCntUpUsed = this.device(devEui).fCntUp
    r.CustomerID = this.customerId
    r.CustomerData = this.customerData()
    r.ModelCfg = '0'
    return ThingParkSimulator.applyExtra(r, o.extra)
  }

  async location (o: LocationInput, p?: PostOptions): Promise<PostResult> {
    return this.post('DevEUI_location', this.buildLocation(o), p)
  }

  /** `DevEUI_downlink_Sent` (§1.6). */
  buildDownlinkSent (o: DownlinkSentInput): Json {
    const devEui = hex16(o.devEui, 'devEui').toUpperCase()
    const causes = o.causes ?? (o.deliveryStatus === 1 ? ['00', '00', '00'] : ['B0', 'B0', '00'])
    const r: Json = {
      Time: lrcTime(o.time ?? new Date()),
      DevEUI: devEui,
      FPort: o.fPort,
      FCntDn: o.fCntDn,
      FCntUp: this.device(devEui).fCntUp,
      Lrcid: this.lrcId,
      SpFact: 7,
      SubBand: 'G1',
      Channel: 'LC2',
      Lrrid: '10000036',
      DeliveryStatus: o.deliveryStatus,
      DeliveryFailedCause1: causes[0],
      DeliveryFailedCause2: causes[1],
      DeliveryFailedCause3: causes[2],
      CustomerID: this.customerId,
      CustomerData: this.customerData(),
      TransmissionSlot: o.transmissionSlot ?? (o.deliveryStatus === 1 ? 1 : 0),
      Frequency: 868.1,
    }
    if (o.correlationId !== undefined) r.CorrelationID = o.correlationId
    return ThingParkSimulator.applyExtra(r, o.extra)
  }

  async downlinkSent (o: DownlinkSentInput, p?: PostOptions): Promise<PostResult> {
    return this.post('DevEUI_downlink_Sent', this.buildDownlinkSent(o), p)
  }

  /** `DevEUI_downlink_Rejected` (§1.7), DeliveryStatus 350. */
  buildDownlinkRejected (o: DownlinkRejectedInput): Json {
    const r: Json = {
      Time: lrcTime(o.time ?? new Date()),
      DevEUI: hex16(o.devEui, 'devEui').toUpperCase(),
      FPort: o.fPort,
      DeliveryStatus: 350,
      DownlinkRejectionCause: o.cause,
      CustomerID: this.customerId,
    }
    if (o.correlationId !== undefined) r.CorrelationID = o.correlationId
    return ThingParkSimulator.applyExtra(r, o.extra)
  }

  async downlinkRejected (o: DownlinkRejectedInput, p?: PostOptions): Promise<PostResult> {
    return this.post('DevEUI_downlink_Rejected', this.buildDownlinkRejected(o), p)
  }

  // ---------------------------------------------------------------- posting

  /**
   * The query (decoded values, wire order) and the Token for a report. LrnDevEui is the DevEUI in
   * upper case (lower case for DevEUI_location), LrnFPort the report's FPort or 0 (§1.1).
   */
  signReport (root: string, report: Json, p: PostOptions = {}): { query: Array<[string, string]>, token: string } {
    const untyped = untypeReport(report) as Json
    const devEui = typeof untyped.DevEUI === 'string' ? untyped.DevEUI : ''
    const full: Record<string, string> = {
      LrnDevEui: root === 'DevEUI_location' ? devEui.toLowerCase() : devEui.toUpperCase(),
      LrnFPort: root === 'DevEUI_location' ? '0' : typeof untyped.FPort === 'string' ? untyped.FPort : '0',
      LrnInfos: this.lrnInfos,
      AS_ID: this.asId,
      Time: lrcTime(p.time ?? new Date()),
    }
    const elements = bodyElementCandidates(root, untyped)[0] ?? ''
    const token = uplinkToken(elements, full, this.asKey) as string
    const order: readonly string[] = p.queryOrder === 'as-first' ? ['AS_ID', ...QUERY_ORDER.filter(k => k !== 'AS_ID')] : QUERY_ORDER
    const omit = new Set(p.omitParams ?? [])
    const query: Array<[string, string]> = order.filter(k => !omit.has(k)).map(k => [k, full[k] ?? ''])
    return { query, token }
  }

  /** Posts any report (e.g. an unknown root) given in typed form, converted to the content type. */
  async post (root: string, report: Record<string, unknown>, p: PostOptions = {}): Promise<PostResult> {
    const contentType = p.contentType ?? this.opts.contentType ?? 'json'
    if (!TP_CONTENT_TYPES.includes(contentType)) throw new Error(`unknown content type ${String(contentType)}`)
    const { query, token } = this.signReport(root, report, p)
    const omit = new Set(p.omitParams ?? [])
    const finalToken = p.token === null || omit.has('Token') ? undefined : p.token ?? token
    if (finalToken !== undefined) query.push(['Token', finalToken])

    let sent: Json
    let body: string
    if (contentType === 'json') {
      sent = report
      body = JSON.stringify({ [root]: report })
    } else if (contentType === 'json-untyped') {
      sent = untypeReport(report) as Json
      body = JSON.stringify({ [root]: sent })
    } else {
      sent = xmlValues(report)
      body = reportXml(root, sent)
    }
    const payload = p.rawBody === undefined ? Buffer.from(body, 'utf8') : Buffer.isBuffer(p.rawBody) ? p.rawBody : Buffer.from(p.rawBody, 'utf8')
    const requestBody = p.rawBody === undefined ? body : payload.toString('utf8')

    const qs = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')
    const search = this.target.search === '' ? `?${qs}` : `${this.target.search}&${qs}`
    const url = `${this.target.origin}${this.target.pathname}${search}`
    const headers: http.OutgoingHttpHeaders = {
      'User-Agent': LRC_USER_AGENT,
      Accept: '*/*',
      'Content-Type': p.contentTypeHeader ?? (contentType === 'xml' ? 'text/xml' : 'application/json'),
      'Content-Length': String(payload.length),
      ...(this.opts.keepAlive === false ? { Connection: 'close' } : {}),
      ...this.opts.headers,
    }
    const res = await this.request(`${this.target.pathname}${search}`, headers, payload)
    return { status: res.status, body: res.text, url, report: sent, root, query: Object.fromEntries(query), requestBody, contentType }
  }

  private async request (path: string, headers: http.OutgoingHttpHeaders, payload: Buffer): Promise<{ status: number, text: string }> {
    const timeout = this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const req = this.mod.request({
        protocol: this.target.protocol,
        hostname: this.target.hostname.replace(/^\[|\]$/g, ''),
        port: this.target.port !== '' ? Number(this.target.port) : this.mod === https ? 443 : 80,
        method: 'POST',
        path,
        agent: this.agent,
        timeout,
        headers,
      }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => { chunks.push(c) })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
        res.on('error', reject)
      })
      req.on('timeout', () => { req.destroy(new Error(`POST ${this.target.origin}${this.target.pathname} timed out after ${timeout} ms`)) })
      req.on('error', reject)
      req.end(payload)
    })
  }

  // ---------------------------------------------------------------- the LRC downlink endpoint

  /** Serves POST /thingpark/lrc/rest/downlink; resolves with its full URL. */
  async startLrc (o: LrcOptions = {}): Promise<string> {
    if (this.server !== undefined) throw new Error('the LRC endpoint is already running')
    this.lrcOpts = { maxTimeDeviationSeconds: o.maxTimeDeviationSeconds ?? 60, sentReportDelayMs: o.sentReportDelayMs ?? 50, acknowledge: o.acknowledge ?? false }
    const server = http.createServer((req, res) => { this.handleLrc(req, res) })
    this.server = server
    const host = o.host ?? '127.0.0.1'
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(o.port ?? 0, host, () => { server.off('error', reject); resolve() })
    })
    const addr = server.address() as AddressInfo
    const shown = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address
    this.lrcUrl = `http://${shown === '0.0.0.0' ? '127.0.0.1' : shown === '[::]' ? '[::1]' : shown}:${addr.port}${LRC_DOWNLINK_PATH}`
    return this.lrcUrl
  }

  get downlinkUrl (): string | undefined { return this.lrcUrl }

  /**
   * Posts to another AS URL from now on: for a test that starts the LRC endpoint first (on a port
   * the system picks) and the AS that must know its URL afterwards.
   */
  retarget (asUrl: string): void {
    const target = new URL(asUrl)
    if (target.protocol !== this.target.protocol) throw new Error('retarget keeps the scheme (http or https)')
    this.target = target
  }

  private handleLrc (req: http.IncomingMessage, res: http.ServerResponse): void {
    const at = Date.now()
    req.resume()
    req.on('end', () => {
      const target = req.url ?? '/'
      const qi = target.indexOf('?')
      const path = qi < 0 ? target : target.slice(0, qi)
      const rawQuery = qi < 0 ? '' : target.slice(qi + 1)
      const parsed = parseRawQuery(rawQuery)
      const params = parsed.ok ? parsed.params : {}
      const tokenValid = parsed.ok && verifyDownlinkQuery(rawQuery, this.asKey)
      const t = params.Time === undefined ? Number.NaN : parseLrcTime(params.Time)
      const timeOk = Number.isFinite(t) && Math.abs(at - t) <= this.lrcOpts.maxTimeDeviationSeconds * 1000

      let status: number
      let text: string
      const scripted = this.lrcScript.shift()
      if (path !== LRC_DOWNLINK_PATH && path !== '/thingpark/lrc/rest/v2/downlink') { status = 404; text = html('Not found') } else if (req.method !== 'POST') { status = 405; text = html('Method not allowed') } else if (scripted !== undefined) {
        status = scripted.status
        text = scripted.body ?? (status === 200 ? LRC_SUCCESS_BODY : html(`Error ${status}`))
      } else {
        [status, text] = this.judge(parsed.ok, params, tokenValid, timeOk)
      }
      const body = text
      res.writeHead(status, { 'Content-Type': 'text/html', 'Content-Length': String(Buffer.byteLength(body)) })
      res.end(body)

      const record: LrcRequest = { method: req.method ?? '', path, params, rawQuery, tokenValid, timeOk, status, responseBody: body, at }
      this.lrcRequests.push(record)
      this.emit('downlink', record)
      if (status === 200 && params.CorrelationID !== undefined && params.DevEUI !== undefined && this.lrcOpts.sentReportDelayMs >= 0) this.scheduleSentReport(params)
    })
  }

  private judge (parsedOk: boolean, q: Record<string, string>, tokenValid: boolean, timeOk: boolean): [number, string] {
    if (!parsedOk) return [400, html('Malformed query string')]
    if (q.DevEUI === undefined || !/^[0-9a-fA-F]{16}$/.test(q.DevEUI)) return [400, html('Missing or invalid DevEUI')]
    const fPort = Number(q.FPort)
    if (q.FPort === undefined || !/^\d+$/.test(q.FPort) || fPort < 1 || fPort > 224) return [400, html('Missing or invalid FPort')]
    if (q.Payload === undefined || !/^([0-9a-fA-F]{2})*$/.test(q.Payload)) return [400, html('Missing or invalid Payload')]
    if (q.Token === undefined || q.AS_ID === undefined || q.Time === undefined) return [401, html('Missing security parameters (AS_ID, Time, Token)')]
    if (q.AS_ID !== this.asId) return [401, html(`Unknown AS_ID ${q.AS_ID}`)]
    if (!tokenValid) return [401, html('Invalid token')]
    if (!timeOk) return [400, html('Time deviation too large')]
    return [200, LRC_SUCCESS_BODY]
  }

  private scheduleSentReport (q: Record<string, string>): void {
    const devEui = (q.DevEUI ?? '').toUpperCase()
    const dev = this.device(devEui)
    const requested = q.FCntDn !== undefined && /^\d+$/.test(q.FCntDn) ? Number(q.FCntDn) : undefined
    const fCntDn = requested ?? dev.fCntDn
    dev.fCntDn = fCntDn + 1
    const failing = this.toFail.get(devEui)?.shift()
    const confirmed = q.Confirmed === '1'
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (failing === undefined && confirmed && this.lrcOpts.acknowledge) {
        const losing = this.toLose.get(devEui) ?? 0
        if (losing > 0) this.toLose.set(devEui, losing - 1)
        else this.owesAck.add(devEui)
      }
      const job = this.downlinkSent(failing !== undefined
        ? { devEui, fPort: Number(q.FPort), fCntDn, deliveryStatus: 0, causes: failing, correlationId: q.CorrelationID, transmissionSlot: 0 }
        : { devEui, fPort: Number(q.FPort), fCntDn, deliveryStatus: 1, correlationId: q.CorrelationID, transmissionSlot: 1 })
        .then(r => { this.emit('sent-report', r) })
        .catch((err: unknown) => {
          const e = err instanceof Error ? err : new Error(String(err))
          this.sentReportErrors.push(e)
          if (this.listenerCount('error') > 0) this.emit('error', e)
        })
      this.pending.add(job)
      void job.finally(() => { this.pending.delete(job) })
    }, this.lrcOpts.sentReportDelayMs)
    this.timers.add(timer)
  }

  /** Closes the LRC endpoint (pending sent reports are dropped, in-flight ones awaited) and the agent. Idempotent. */
  async stop (): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await Promise.allSettled([...this.pending])
    const server = this.server
    this.server = undefined
    if (server !== undefined) {
      await new Promise<void>(resolve => {
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
    }
    this.agent.destroy()
  }
}
