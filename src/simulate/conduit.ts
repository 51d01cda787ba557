/**
 * A MultiTech Conduit running "app-connect" (AC3), simulated faithfully enough to test a back-end
 * against: MQTT (mqtt://, mqtts://, wss://) with the v1.0 / v1.1 / v1.1.1 topic families, and the
 * HTTP(S) mode. The protocol reference is docs/spec "multitech-app-connect.md"; section numbers
 * (§) below refer to it.
 *
 * Deliberate choices, so that tests stay deterministic:
 * - mqtt.js with `reconnectPeriod: 0`; reconnects happen only through reconnect(). Each connection
 *   is a new mqtt.js client with the same client id. The first CONNECT has no will (AC3 calls
 *   will_set inside on_connect, so paho sends it only from the second CONNECT on, §1).
 * - Publishes resolve on PUBACK (QoS 1) or once written (QoS 0); start() resolves after init's
 *   PUBACK and the SUBACK of the version's subscriptions.
 * - `fidelity: 'doc'` (default) follows the documented behaviour where AC3's code is fragile
 *   (§2.4, §7.14); `'code'` reproduces the code-reading quirks instead.
 */
import { EventEmitter } from 'node:events'
import { randomBytes, randomUUID } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { ConnectionOptions } from 'node:tls'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'

export type AppConnectVersion = '1.0' | '1.1' | '1.1.1'

/** The catch-all AppEUI: forward every device regardless of its AppEUI (§0). */
export const CATCH_ALL_EUI = 'ff-ff-ff-ff-ff-ff-ff-ff'
/** AppEUI given to generated devices (the JoinEUI of the §6 fixtures). */
export const DEFAULT_DEVICE_APPEUI = '16-ea-76-f6-ab-66-3d-80'
/** `app_version` in init (AC3:49). */
export const APP_CONNECT_VERSION = '1.0.0'
/** The offline queue holds at most this many messages (AC3:1085-1096). */
const OFFLINE_QUEUE_MAX = 10_000
/** HTTP socket timeout (`request_timeout`, AC3). */
const HTTP_TIMEOUT_MS = 20_000
/** HTTP batches: at most 10 messages, and messages over 700 characters are sent alone (§3). */
const BATCH_MAX = 10
const BATCH_MAX_CHARS = 700

export interface SimDevice {
  /** dashed lower-case DevEUI */
  devEui: string
  /** dashed lower-case AppEUI of the device */
  appEui: string
  /** 8 hex characters */
  devAddr: string
  fCnt: number
}

export interface ConduitOptions {
  /** mqtt://, mqtts://, wss://host:port/path, http://, https://host:port[/prefix] */
  url: string
  /** default '1.1' */
  version?: AppConnectVersion
  /** Raw GW-UUID (32 hex digits, dashes and case ignored); spelled per version (§0). Default random. */
  gwUuid?: string
  /** The app connection's EUI (v1.0 default app EUI, default the catch-all); v1.1+ forces the catch-all (§0). */
  appEui?: string
  /** default one random 00-80-00-00-xx-xx-xx-xx */
  gatewayEuis?: string[]
  /** encodeHex: uplink data as hex + "data-format", downlink data expected as hex. Default false. */
  encodeHex?: boolean
  devices?: SimDevice[]
  /** Generated devices when `devices` is not given (default 1); DevEUI/DevAddr derive from the index. */
  deviceCount?: number
  /** AppEUI of generated devices, default DEFAULT_DEVICE_APPEUI */
  deviceAppEui?: string
  username?: string
  password?: string
  /** server_cert: the only CA, with hostname checking (unless checkHostname=false) */
  ca?: string | Buffer
  /** client_cert */
  cert?: string | Buffer
  /** apikey (the client private key, §0) */
  key?: string | Buffer
  /** check_hostname, default true; only meaningful with `ca` (without it hostname checking is off, §1) */
  checkHostname?: boolean
  /** default false (AC3 default) */
  cleanSession?: boolean
  /** seconds, default 60 */
  keepalive?: number
  /** 'v1.0-leftover' = F7: v1.1 uplinks on lorawan/<appeui>/<deveui>/up */
  uplinkTopicStyle?: 'default' | 'v1.0-leftover'
  /** default `lorawan/<app eui>/<gw uuid in version spelling>` */
  clientId?: string
  /**
   * Turn Nagle's algorithm off on the MQTT socket (paho leaves it on, as does this default). With
   * it on, a second small publication waits for the TCP acknowledgement of the first.
   */
  noDelay?: boolean
  /** Overrides downlink_query_interval (HTTP poll period). */
  httpPollIntervalMs?: number
  /** Sleep after each failed HTTP POST try (AC3: 5 s). Default 5000. */
  httpRetryDelayMs?: number
  /** Tries of the HTTP init POST before start() fails (AC3: 3, like every POST); the CLI uses 1 to fail fast. */
  httpInitTries?: number
  /** AC3 sleeps 2 s between publishing close and DISCONNECT. Default 0. */
  closeDelayMs?: number
  /** init's app_version, default '1.0.0' */
  appVersion?: string
  /**
   * 'doc' (default): v1.0 subscribes per device for every device, including under the catch-all
   * (and also under the device's own AppEUI when it differs), and again on join; joined uses the
   * device's AppEUI; the HTTP poll lists every device.
   * 'code': AC3's quirks: v1.0 per-device topics only for start-up devices whose AppEUI equals the
   * app EUI; v1.0 joined with a specific app EUI has an empty AppEUI segment (F8b); the HTTP poll
   * lists start-up devices of the app EUI plus joined ones.
   */
  fidelity?: 'doc' | 'code'
  /**
   * The devices acknowledge confirmed downlinks as LoRaWAN Class A devices do: the network server
   * transmits one in the receive window of the device's next uplink (again after each further
   * uplink, `ack_retries` times, while unacknowledged), and the device's uplink after the window it
   * was received in carries the ACK bit. `lose()` makes a device miss the next ones. Default false.
   */
  acknowledge?: boolean
}

export interface ReceivedDownlink {
  devEui: string
  topic?: string
  path?: string
  /** the JSON the Conduit got */
  payload: Record<string, unknown>
  /** decoded application payload (hex or base64 per encodeHex) */
  data: Buffer
  receivedAt: number
}

export interface UplinkOptions {
  port?: number
  data?: Buffer
  /** The receive time the Conduit reports (`time`); now by default. */
  time?: Date
  confirmed?: boolean
  gweui?: string
  /** The ACK bit (set by the simulator itself when `acknowledge` is on). */
  ack?: boolean
  /** The data rate, e.g. SF12BW125 (default SF7BW125). */
  datr?: string
}

/** The HTTP init response (§3); defaults are AC3's built-ins. */
export interface HttpInitConfig {
  timeout: number
  queue_size: number
  downlink_query_interval: number
}

type Json = Record<string, unknown>

function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Dashed lower-case EUI-64 from any spelling (`00:80:…`, `0080…`, `00-80-…`). */
export function normalizeEui (value: string): string {
  const hex = value.replace(/[-:\s]/g, '').toLowerCase()
  if (!/^[0-9a-f]{16}$/.test(hex)) throw new Error(`not an EUI-64: ${value}`)
  return (hex.match(/../g) ?? []).join('-')
}

/** The GW-UUID as app-connect spells it for a version (§0). */
export function spellGwUuid (raw: string, version: AppConnectVersion): string {
  const hex = raw.trim().replace(/-/g, '')
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${raw}`)
  if (version === '1.0') return hex.toUpperCase()
  const h = hex.toLowerCase()
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** Python `json.dumps(value)`: `", "` and `": "` separators, ensure_ascii. */
export function pyJson (value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[\u0080-\uffff]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  }
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : String(value)
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`
  if (Buffer.isBuffer(value)) return pyJson(value.toString('base64'))
  if (typeof value === 'object') {
    const parts: string[] = []
    for (const [k, v] of Object.entries(value as Json)) {
      if (v === undefined) continue
      parts.push(`${pyJson(k)}: ${pyJson(v)}`)
    }
    return `{${parts.join(', ')}}`
  }
  return pyJson(String(value))
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

/** `datetime.now().isoformat() + "Z"`: local wall clock with a literal Z; no fraction when µs = 0 (§2.2). */
export function pythonNowIsoZ (d = new Date()): string {
  const us = d.getMilliseconds() * 1000 + Math.floor(Math.random() * 1000)
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return us === 0 ? `${base}Z` : `${base}.${pad(us, 6)}Z`
}

/** LNS receive time: ISO UTC with 6 fraction digits. */
function lnsTime (d = new Date()): string {
  return `${d.toISOString().slice(0, 23)}${pad(Math.floor(Math.random() * 1000), 3)}Z`
}

function hex8 (n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0')
}

function dashed (hex16: string): string {
  return (hex16.match(/../g) ?? []).join('-')
}

/** The 8-byte `mhdr` of an uplink: MHDR, DevAddr (LE), FCtrl, FCnt (LE) (§2.2). */
export function buildMhdr (opts: { devAddr: string, fCnt: number, confirmed?: boolean, adr?: boolean, ack?: boolean, fOptsLen?: number }): string {
  const b = Buffer.alloc(8)
  b[0] = opts.confirmed === true ? 0x80 : 0x40
  b.writeUInt32LE(Number.parseInt(opts.devAddr, 16) >>> 0, 1)
  b[5] = (opts.adr === false ? 0 : 0x80) | (opts.ack === true ? 0x20 : 0) | ((opts.fOptsLen ?? 0) & 0x0f)
  b.writeUInt16LE(opts.fCnt & 0xffff, 6)
  return b.toString('hex')
}

/** Deterministic generated device number `index` (0-based). */
export function generatedDevice (index: number, appEui = DEFAULT_DEVICE_APPEUI): SimDevice {
  return { devEui: dashed(`008000ff${hex8(index + 1)}`), appEui: normalizeEui(appEui), devAddr: hex8(0x26000000 + index + 1), fCnt: 0 }
}

type MqttOptions = IClientOptions & Pick<ConnectionOptions, 'minVersion' | 'maxVersion' | 'checkServerIdentity'>

interface HttpTarget {
  mod: typeof http | typeof https
  host: string
  port: number
  /** URL path prefix, '' or '/x/y' */
  prefix: string
  tls: https.AgentOptions
}

export class ConduitSimulator extends EventEmitter {
  readonly version: AppConnectVersion
  /** GW-UUID as spelled on the wire for the version */
  readonly gwUuid: string
  /** The app connection's EUI ({APP}) */
  readonly appEui: string
  readonly clientId: string
  readonly gatewayEuis: string[]
  readonly devices: SimDevice[]
  readonly downlinks: ReceivedDownlink[] = []
  readonly transport: 'mqtt' | 'http'
  /** HTTP: the parsed init response, undefined until one parsed as JSON (then polling runs). */
  httpConfig: HttpInitConfig | undefined
  /** MQTT connections made so far */
  connections = 0

  private readonly opts: ConduitOptions
  private readonly encodeHex: boolean
  private readonly fidelity: 'doc' | 'code'
  private client: MqttClient | undefined
  private clientClosed: Promise<void> = Promise.resolve()
  private readonly inflight = new WeakMap<MqttClient, Set<(err: Error) => void>>()
  private connected = false
  private started = false
  private stopped = false
  private readonly offlineQueue: Array<{ topic: string, payload: string }> = []
  /** devices known at start (AC3's start-up session list) */
  private readonly startupDevEuis = new Set<string>()
  /** HTTP: DevEUIs sent in the GET /down body */
  private readonly httpDevEuis: string[] = []
  private http: HttpTarget | undefined
  private agent: http.Agent | undefined
  private pollTimer: NodeJS.Timeout | undefined
  private polling: Promise<unknown> | undefined

  constructor (opts: ConduitOptions) {
    super()
    this.opts = opts
    this.version = opts.version ?? '1.1'
    if (!['1.0', '1.1', '1.1.1'].includes(this.version)) throw new Error(`unknown app-connect version ${String(this.version)}`)
    this.encodeHex = opts.encodeHex === true
    this.fidelity = opts.fidelity ?? 'doc'
    this.gwUuid = spellGwUuid(opts.gwUuid ?? randomUUID(), this.version)
    this.appEui = this.version === '1.0' ? normalizeEui(opts.appEui ?? CATCH_ALL_EUI) : CATCH_ALL_EUI
    this.clientId = opts.clientId !== undefined && opts.clientId !== '' ? opts.clientId : `lorawan/${this.appEui}/${this.gwUuid}`
    this.gatewayEuis = (opts.gatewayEuis ?? [`00-80-00-00-${dashed(randomBytes(4).toString('hex'))}`]).map(normalizeEui)
    if (this.gatewayEuis.length === 0) throw new Error('at least one gateway EUI is needed')
    if (opts.devices !== undefined) {
      this.devices = opts.devices.map(d => ({ ...d, devEui: normalizeEui(d.devEui), appEui: normalizeEui(d.appEui), devAddr: d.devAddr.toLowerCase() }))
    } else {
      const n = opts.deviceCount ?? 1
      this.devices = Array.from({ length: n }, (_, i) => generatedDevice(i, opts.deviceAppEui))
    }
    for (const d of this.devices) this.startupDevEuis.add(d.devEui)

    const scheme = /^([a-z]+):\/\//i.exec(opts.url)?.[1]?.toLowerCase()
    if (scheme === 'mqtt' || scheme === 'mqtts' || scheme === 'wss') this.transport = 'mqtt'
    else if (scheme === 'http' || scheme === 'https') this.transport = 'http'
    else throw new Error(`unsupported URL (app-connect takes mqtt://, mqtts://, wss://, http://, https://): ${opts.url}`)
    if (this.transport === 'mqtt') this.mqttOptions(false) // validate the URL now
    else this.http = this.httpTarget()
  }

  // ---------------------------------------------------------------- topics and paths

  /** v1.0 `lorawan/{APP}/{GW}`, v1.1+ `lorawan/{GW}` */
  private get appBase (): string {
    return this.version === '1.0' ? `lorawan/${this.appEui}/${this.gwUuid}` : `lorawan/${this.gwUuid}`
  }

  get initTopic (): string { return `${this.appBase}/init` }
  get closeTopic (): string { return `${this.appBase}/close` }
  get willTopic (): string { return `${this.appBase}/disconnected` }
  get connectedTopic (): string | undefined { return this.version === '1.1.1' ? `${this.appBase}/connected` : undefined }

  upTopic (dev: SimDevice): string {
    if (this.version === '1.0' || this.opts.uplinkTopicStyle === 'v1.0-leftover') return `lorawan/${dev.appEui}/${dev.devEui}/up`
    return `lorawan/${this.gwUuid}/${dev.appEui}/${dev.devEui}/up`
  }

  /** The AppEUI segment of joined topics/paths ({DAPP}; empty under the 'code' quirk F8b). */
  private joinedAppEui (dev: SimDevice): string {
    return this.fidelity === 'code' && this.version === '1.0' && this.appEui !== CATCH_ALL_EUI ? '' : dev.appEui
  }

  joinedTopics (dev: SimDevice): string[] {
    const dapp = this.joinedAppEui(dev)
    if (this.version === '1.0') return [`lorawan/${dapp}/${dev.devEui}/joined`, `lorawan/${this.gwUuid}/${dev.devEui}/joined`]
    return [`lorawan/${this.gwUuid}/${dapp}/${dev.devEui}/joined`]
  }

  /** What the gateway subscribes to on CONNACK (§2.4). */
  subscriptionTopics (): string[] {
    if (this.version !== '1.0') {
      return this.version === '1.1.1' ? [`lorawan/${this.gwUuid}/down`, `lorawan/${this.gwUuid}/clear`] : [`lorawan/${this.gwUuid}/down`]
    }
    const topics = new Set<string>()
    const add = (a: string, b: string): void => { topics.add(`lorawan/${a}/${b}/down`); topics.add(`lorawan/${a}/${b}/clear`) }
    for (const dev of this.devices) {
      if (this.fidelity === 'code' && (!this.startupDevEuis.has(dev.devEui) || dev.appEui !== this.appEui)) continue
      add(this.appEui, dev.devEui)
      if (dev.appEui !== this.appEui) add(dev.appEui, dev.devEui)
      add(this.gwUuid, dev.devEui)
      add(this.appEui, this.gwUuid)
      for (const gw of this.gatewayEuis) add(gw, dev.devEui)
    }
    return [...topics]
  }

  private apiPath (rest: string): string {
    return `${this.http?.prefix ?? ''}/api/v1/lorawan/${rest}`
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * MQTT: connect, publish init (QoS 1, retained) straight away, and on CONNACK subscribe (and, for
   * 1.1.1, publish `connected`). HTTP: POST init, parse the response, start the GET /down poll.
   */
  async start (): Promise<void> {
    if (this.started) throw new Error('already started')
    if (this.stopped) throw new Error('stopped')
    this.started = true
    if (this.transport === 'mqtt') {
      await this.connectMqtt(true)
      return
    }
    for (const d of this.devices) {
      if (this.fidelity === 'code' && d.appEui !== this.appEui) continue
      if (!this.httpDevEuis.includes(d.devEui)) this.httpDevEuis.push(d.devEui)
    }
    this.agent = this.newAgent()
    const res = await this.httpPost(this.apiPath(`${this.appEui}/${this.gwUuid}/init`), pyJson({ gateways_euis: this.gatewayEuis }), this.opts.httpInitTries ?? 3)
    let cfg: unknown
    try { cfg = JSON.parse(res.text) } catch { cfg = undefined }
    this.connected = true
    if (cfg !== undefined) {
      // Downlink polling starts only once an init response parsed as JSON (§3).
      const c = isObject(cfg) ? cfg : {}
      const num = (v: unknown, d: number): number => typeof v === 'number' && Number.isFinite(v) ? v : d
      this.httpConfig = { timeout: num(c.timeout, 20), queue_size: num(c.queue_size, 10), downlink_query_interval: num(c.downlink_query_interval, 30) }
      this.schedulePoll()
    }
    this.emit('connect')
  }

  /** Publishes close (QoS 1, retained, empty), then a clean DISCONNECT (so no will). HTTP: POST close, empty body. */
  async close (): Promise<void> {
    if (!this.started || this.stopped) { await this.stop(); return }
    if (this.transport === 'mqtt') {
      const client = this.client
      if (client !== undefined && this.connected) {
        await this.publishOn(client, this.closeTopic, '', 1, true)
        if ((this.opts.closeDelayMs ?? 0) > 0) await sleep(this.opts.closeDelayMs ?? 0)
        this.stopped = true
        await this.endClient(client, false)
      }
    } else {
      this.stopPoll()
      try {
        await this.httpPost(this.apiPath(`${this.appEui}/${this.gwUuid}/close`), null)
      } finally {
        this.stopped = true
      }
    }
    await this.stop()
  }

  /** Ends without close: a clean DISCONNECT when connected (test teardown). Idempotent. */
  async stop (): Promise<void> {
    this.stopped = true
    this.stopPoll()
    if (this.polling !== undefined) await this.polling.catch(() => undefined)
    const client = this.client
    if (client !== undefined) await this.endClient(client, !client.connected)
    this.connected = false
    this.agent?.destroy()
  }

  /** Destroys the connection without DISCONNECT, so the broker fires the will if this connection has one. */
  drop (): void {
    if (this.transport === 'http') {
      this.agent?.destroy()
      this.agent = this.newAgent()
      return
    }
    const client = this.client
    if (client === undefined) return
    this.connected = false
    client.end(true)
  }

  /**
   * A new connection with the same client id, as paho's reconnect does: the CONNECT carries the will
   * (from the second connection on), init is not re-published, 1.1.1 publishes `connected`, and
   * messages queued while disconnected are replayed. A live connection is dropped first (as the
   * network failure that causes a reconnect would). HTTP: a fresh keep-alive connection.
   */
  async reconnect (): Promise<void> {
    if (!this.started) throw new Error('not started')
    if (this.stopped) throw new Error('stopped')
    if (this.transport === 'http') { this.drop(); return }
    if (this.client !== undefined && !this.client.disconnected) this.drop()
    await this.clientClosed
    await this.connectMqtt(false)
  }

  get isConnected (): boolean { return this.connected }

  // ---------------------------------------------------------------- gateway events

  /** Builds an LNS uplink (F3/F5 field set), sends it (MQTT: QoS 1 retained), increments fCnt; returns the JSON sent. */
  async uplink (device?: SimDevice | number, opts: UplinkOptions = {}): Promise<Json> {
    this.ensureRunning()
    const dev = this.device(device)
    const body = this.serializeUplink(this.buildUplink(dev, this.window(dev, opts)))
    dev.fCnt++
    if (this.transport === 'http') {
      const path = this.apiPath(`${dev.appEui}/${dev.devEui}/up`)
      const res = await this.httpPost(path, body)
      this.applyHttpDownlinks(res.text, path, true)
    } else {
      await this.publishApp(this.upTopic(dev), body)
    }
    return JSON.parse(body) as Json
  }

  /**
   * Several uplinks as AC3 sends a queue of them. HTTP: arrays of up to 10 POSTed to `/{APP}/up`
   * (a message over 700 characters goes alone to its own path); MQTT: one publish each.
   */
  async uplinkBatch (devices: Array<SimDevice | number>, opts: UplinkOptions = {}): Promise<Json[]> {
    this.ensureRunning()
    const items = devices.map(d => {
      const dev = this.device(d)
      const body = this.serializeUplink(this.buildUplink(dev, this.window(dev, opts)))
      dev.fCnt++
      return { dev, body }
    })
    if (this.transport === 'mqtt') {
      for (const { dev, body } of items) await this.publishApp(this.upTopic(dev), body)
    } else if (items.length === 1) {
      const { dev, body } = items[0] as { dev: SimDevice, body: string }
      const path = this.apiPath(`${dev.appEui}/${dev.devEui}/up`)
      this.applyHttpDownlinks((await this.httpPost(path, body)).text, path, true)
    } else {
      const appPath = this.apiPath(`${this.appEui}/up`)
      let batch: Json[] = []
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return
        const res = await this.httpPost(appPath, pyJson(batch))
        batch = []
        this.applyHttpDownlinks(res.text, appPath, true)
      }
      for (const { dev, body } of items) {
        if (body.length > BATCH_MAX_CHARS) {
          await flush()
          const path = this.apiPath(`${dev.appEui}/${dev.devEui}/up`)
          this.applyHttpDownlinks((await this.httpPost(path, body)).text, path, true)
          continue
        }
        batch.push(JSON.parse(body) as Json)
        if (batch.length === BATCH_MAX) await flush()
      }
      await flush()
    }
    return items.map(i => JSON.parse(i.body) as Json)
  }

  /**
   * A device (re)joined: the joined event (v1.0 both F8 topics, v1.1 the F9 topic; QoS 1, retained;
   * HTTP POST …/joined). The device's frame counter restarts at 0; an unknown device is added.
   */
  async join (device?: SimDevice | number, opts: { gweui?: string, remote?: boolean } = {}): Promise<Json> {
    this.ensureRunning()
    let dev: SimDevice
    if (typeof device === 'object' && !this.devices.includes(device)) {
      const known = this.devices.find(d => d.devEui === normalizeEui(device.devEui))
      if (known !== undefined) dev = known
      else {
        dev = { ...device, devEui: normalizeEui(device.devEui), appEui: normalizeEui(device.appEui), devAddr: device.devAddr.toLowerCase() }
        this.devices.push(dev)
      }
    } else {
      dev = this.device(device)
    }
    dev.fCnt = 0
    const msg: Json = {
      joineui: dev.appEui,
      appeui: dev.appEui,
      gweui: opts.gweui ?? this.gatewayEuis[0],
      remote: opts.remote ?? false,
      time: pythonNowIsoZ(),
      deveui: dev.devEui,
    }
    const body = pyJson(msg)
    if (this.transport === 'http') {
      await this.httpPost(this.apiPath(`${this.joinedAppEui(dev)}/${dev.devEui}/joined`), body)
      if (!this.httpDevEuis.includes(dev.devEui)) this.httpDevEuis.push(dev.devEui)
      return msg
    }
    for (const t of this.joinedTopics(dev)) await this.publishApp(t, body)
    // v1.0 subscribes again on each joined (AC3:1261-1262).
    const client = this.client
    if (this.version === '1.0' && client !== undefined && this.connected) {
      const topics = this.subscriptionTopics()
      if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 })
    }
    return msg
  }

  /** HTTP: one GET /down now (the poll loop does this every downlink_query_interval). */
  async pollDownlinks (): Promise<ReceivedDownlink[]> {
    if (this.transport !== 'http') throw new Error('pollDownlinks is for HTTP mode')
    const path = this.apiPath(`${this.appEui}/down`)
    let res: { text: string } | undefined
    let lastErr: unknown
    for (let attempt = 0; attempt < 3 && res === undefined; attempt++) {
      try { res = await this.httpOnce('GET', path, pyJson(this.httpDevEuis)) } catch (err) { lastErr = err }
    }
    if (res === undefined) throw lastErr
    return this.applyHttpDownlinks(res.text, path, false)
  }

  // ---------------------------------------------------------------- uplink JSON

  buildUplink (dev: SimDevice, opts: UplinkOptions = {}): Json {
    const fcnt = dev.fCnt
    const data = opts.data ?? Buffer.from([0x01, fcnt & 0xff])
    const chan = Math.floor(Math.random() * 8)
    const tmst = Number((process.hrtime.bigint() / 1000n) & 0xffffffffn)
    const optsHex = ''
    return {
      tmst,
      time: lnsTime(opts.time),
      chan,
      rfch: chan < 4 ? 0 : 1,
      freq: Math.round((903.9 + 0.2 * chan) * 10) / 10,
      stat: 1,
      modu: 'LORA',
      datr: opts.datr ?? 'SF7BW125',
      codr: '4/5',
      lsnr: Math.round((5 + Math.random() * 6) * 10) / 10,
      rssi: -40 - Math.floor(Math.random() * 70),
      opts: optsHex,
      size: data.length,
      fcnt,
      cls: 0,
      port: opts.port ?? 1,
      mhdr: buildMhdr({ devAddr: dev.devAddr, fCnt: fcnt, confirmed: opts.confirmed, ack: opts.ack, fOptsLen: optsHex.length / 2 }),
      data: data.toString('base64'),
      appeui: dev.appEui,
      deveui: dev.devEui,
      joineui: dev.appEui,
      devaddr: dev.devAddr,
      ack: opts.ack === true,
      adr: true,
      gweui: opts.gweui ?? this.gatewayEuis[0],
      seqn: fcnt,
    }
  }

  /** LNS-compact JSON, or with encodeHex hex data + "data-format" in Python spacing (AC3:1348-1352, F6). */
  serializeUplink (msg: Json): string {
    if (!this.encodeHex) return JSON.stringify(msg)
    const data = typeof msg.data === 'string' ? Buffer.from(msg.data, 'base64').toString('hex') : msg.data
    return pyJson({ ...msg, data, 'data-format': 'hexadecimal' })
  }

  // ---------------------------------------------------------------- MQTT internals

  private mqttOptions (withWill: boolean): MqttOptions {
    const m = /^(mqtts?|wss):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?(\/.*)?$/i.exec(this.opts.url)
    if (m === null) throw new Error(`cannot parse MQTT URL ${this.opts.url}`)
    const scheme = (m[1] ?? '').toLowerCase() as 'mqtt' | 'mqtts' | 'wss'
    const hostname = (m[2] ?? '').replace(/^\[|\]$/g, '')
    if (scheme === 'wss' && m[3] === undefined) throw new Error('wss:// URLs need a port (app-connect indexes it unconditionally)')
    // app-connect connects to 1883 when the URL has no port, even for mqtts:// (§1).
    const port = m[3] !== undefined ? Number(m[3]) : 1883
    const o: MqttOptions = {
      protocol: scheme,
      hostname,
      port,
      clientId: this.clientId,
      clean: this.opts.cleanSession ?? false,
      keepalive: this.opts.keepalive ?? 60,
      protocolId: 'MQTT',
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      resubscribe: false,
    }
    if (scheme === 'wss') o.path = m[4] ?? '/mqtt'
    const { username, password } = this.opts
    if ((username !== undefined && username !== '') || (password !== undefined && password !== '')) {
      o.username = username ?? ''
      if (password !== undefined && password !== '') o.password = password
    }
    if (withWill) o.will = { topic: this.willTopic, payload: Buffer.alloc(0), qos: 1, retain: false }
    if (scheme !== 'mqtt') {
      const tls: ConnectionOptions = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', rejectUnauthorized: true }
      if (this.opts.ca !== undefined) tls.ca = this.opts.ca
      if (this.opts.cert !== undefined) tls.cert = this.opts.cert
      if (this.opts.key !== undefined) tls.key = this.opts.key
      // Without server_cert the system bundle is used and hostname checking is off (§1).
      if (this.opts.ca === undefined || this.opts.checkHostname === false) tls.checkServerIdentity = () => undefined
      if (scheme === 'mqtts') Object.assign(o, tls)
      else o.wsOptions = tls as Record<string, unknown>
    }
    return o
  }

  private async connectMqtt (first: boolean): Promise<void> {
    const withWill = this.connections > 0
    this.connections++
    const client = mqtt.connect(this.mqttOptions(withWill))
    this.client = client
    const inflight = new Set<(err: Error) => void>()
    this.inflight.set(client, inflight)
    let up = false
    this.clientClosed = new Promise(resolve => {
      client.once('close', () => {
        for (const fail of inflight) fail(new Error('connection closed'))
        inflight.clear()
        if (this.client === client) this.connected = false
        if (up) { up = false; this.emit('disconnect') }
        resolve()
      })
    })
    client.on('message', (topic, payload, packet) => { this.onMqttMessage(client, topic, payload, packet.retain) })
    if (this.opts.noDelay === true) {
      const noDelay = (): void => { (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true) }
      noDelay()
      client.on('connect', noDelay)
    }
    client.on('error', err => { if (up) this.emitError(err) })

    // paho writes init as soon as the socket exists; mqtt.js holds it in its store and sends it
    // first thing after CONNACK, before the 'connect' event.
    const initDone = first ? this.publishOn(client, this.initTopic, this.initPayload(), 1, true) : undefined
    initDone?.catch(() => undefined)
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error): void => {
          client.off('connect', onConnect); client.off('error', onError); client.off('close', onClose)
          if (err !== undefined) reject(err); else resolve()
        }
        const onConnect = (): void => { done() }
        const onError = (err: Error): void => { done(err) }
        const onClose = (): void => { done(new Error(`connection to ${this.opts.url} closed before CONNACK`)) }
        client.on('connect', onConnect); client.on('error', onError); client.on('close', onClose)
      })
    } catch (err) {
      client.end(true)
      throw err
    }
    up = true
    this.connected = true
    // On CONNACK (AC3 on_connect): replay the offline queue, (1.1.1) connected, subscribe.
    const work: Array<Promise<unknown>> = []
    for (const m of this.offlineQueue.splice(0)) work.push(this.publishOn(client, m.topic, m.payload, 1, true))
    const connectedTopic = this.connectedTopic
    if (connectedTopic !== undefined) work.push(this.publishOn(client, connectedTopic, '', 0, false))
    const topics = this.subscriptionTopics()
    if (topics.length > 0) work.push(client.subscribeAsync(topics, { qos: 1 }))
    if (initDone !== undefined) work.push(initDone)
    await Promise.all(work)
    this.emit('connect')
  }

  private initPayload (): string {
    return pyJson({
      gateways_euis: this.gatewayEuis,
      time: pythonNowIsoZ(),
      api_version: this.version,
      app_version: this.opts.appVersion ?? APP_CONNECT_VERSION,
    })
  }

  private publishOn (client: MqttClient, topic: string, payload: string | Buffer, qos: 0 | 1, retain: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const set = this.inflight.get(client)
      const fail = (err: Error): void => { reject(err) }
      set?.add(fail)
      client.publish(topic, payload, { qos, retain }, err => {
        set?.delete(fail)
        if (err !== undefined && err !== null) reject(err); else resolve()
      })
    })
  }

  /** app_publish_msg: QoS 1 retained; while disconnected, the offline queue (max 10 000, newer dropped). */
  private async publishApp (topic: string, payload: string): Promise<void> {
    const client = this.client
    if (client !== undefined && this.connected) {
      await this.publishOn(client, topic, payload, 1, true)
      return
    }
    if (this.offlineQueue.length < OFFLINE_QUEUE_MAX) this.offlineQueue.push({ topic, payload })
  }

  private onMqttMessage (client: MqttClient, topic: string, payload: Buffer, retain: boolean): void {
    // A retained message is cleared (zero-length retained QoS 1 publish) before parsing (AC3:695-697).
    if (retain) this.publishOn(client, topic, '', 1, true).catch(err => { this.emitError(err as Error) })
    let body: unknown
    try { body = JSON.parse(payload.toString('utf8')) } catch { return } // non-JSON (also empty): dropped
    const parts = topic.split('/')
    let event: string | undefined
    let topicDevEui = ''
    if (parts.length === 3) event = parts[2]
    else if (parts.length >= 4) { topicDevEui = parts[2] ?? ''; event = parts[3] }
    else return
    const obj = isObject(body) ? body : undefined
    const devEui = typeof obj?.deveui === 'string' ? obj.deveui : topicDevEui
    if (event === 'down' && obj !== undefined) this.deliverDownlink(devEui, obj, { topic })
    else if (event === 'clear') this.emit('clear', { devEui, topic })
  }

  /** Confirmed downlinks the simulated network server holds per device (dashed lower-case DevEUI). */
  private readonly confirmedQueue = new Map<string, Array<{ retries: number, tries: number, lost: boolean }>>()
  /** Devices whose next uplink carries the ACK bit. */
  private readonly owesAck = new Set<string>()
  private readonly toLose = new Map<string, number>()

  /** The device misses the next `count` confirmed downlinks (every transmission of each). */
  lose (devEui: string, count = 1): void {
    const key = dashed(devEui.replace(/[-:]/g, '').toLowerCase())
    this.toLose.set(key, (this.toLose.get(key) ?? 0) + count)
  }

  /** One uplink's Class A window: whether it carries an ACK, and which confirmed downlink goes out after it. */
  private window (dev: SimDevice, opts: UplinkOptions): UplinkOptions {
    if (this.opts.acknowledge !== true || opts.ack !== undefined) return opts
    const key = dev.devEui.toLowerCase()
    const ack = this.owesAck.delete(key)
    const q = this.confirmedQueue.get(key)
    const head = q?.[0]
    if (q !== undefined && head !== undefined) {
      head.tries++
      if (!head.lost) {
        q.shift()
        this.owesAck.add(key)
      } else if (head.tries > head.retries) {
        q.shift()
      }
    }
    return ack ? { ...opts, ack: true } : opts
  }

  private deliverDownlink (devEui: string, payload: Json, where: { topic?: string, path?: string }): ReceivedDownlink {
    if (this.opts.acknowledge === true && payload.ack === true) {
      const key = devEui.toLowerCase()
      const losing = this.toLose.get(key) ?? 0
      if (losing > 0) this.toLose.set(key, losing - 1)
      const q = this.confirmedQueue.get(key) ?? []
      q.push({ retries: typeof payload.ack_retries === 'number' ? payload.ack_retries : 0, tries: 0, lost: losing > 0 })
      this.confirmedQueue.set(key, q)
    }
    const raw = typeof payload.data === 'string' ? payload.data : ''
    // encodeHex: hex is converted; anything else is passed on unchanged, i.e. taken as base64 (AC3:1055-1064).
    const data = this.encodeHex && /^(?:[0-9a-fA-F]{2})*$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64')
    const d: ReceivedDownlink = { devEui, ...where, payload, data, receivedAt: Date.now() }
    this.downlinks.push(d)
    this.emit('downlink', d)
    return d
  }

  private async endClient (client: MqttClient, force: boolean): Promise<void> {
    if (client.disconnected && !client.connected) { client.end(true); return }
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { client.end(true); resolve() }, 2000)
      client.end(force, {}, () => { clearTimeout(timer); resolve() })
    })
  }

  // ---------------------------------------------------------------- HTTP internals

  private httpTarget (): HttpTarget {
    const u = new URL(this.opts.url)
    const secure = u.protocol === 'https:'
    const tls: https.AgentOptions = {}
    if (secure) {
      tls.rejectUnauthorized = true
      if (this.opts.ca !== undefined) tls.ca = this.opts.ca
      if (this.opts.ca === undefined || this.opts.checkHostname === false) tls.checkServerIdentity = () => undefined
      // The client certificate is loaded only when both halves are set (§3).
      if (this.opts.cert !== undefined && this.opts.key !== undefined) { tls.cert = this.opts.cert; tls.key = this.opts.key }
    }
    const prefix = u.pathname === '/' ? '' : u.pathname
    return {
      mod: secure ? https : http,
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port !== '' ? Number(u.port) : secure ? 443 : 80,
      prefix,
      tls,
    }
  }

  /** One persistent connection shared by uplinks and polls, as AC3's single http.client connection. */
  private newAgent (): http.Agent {
    const t = this.http as HttpTarget
    const opts = { keepAlive: true, maxSockets: 1, ...t.tls }
    return t.mod === https ? new https.Agent(opts) : new http.Agent(opts)
  }

  private httpOnce (method: 'GET' | 'POST', path: string, body: string | null): Promise<{ status: number, text: string }> {
    const t = this.http as HttpTarget
    const payload = body === null ? Buffer.alloc(0) : Buffer.from(body, 'utf8')
    return new Promise((resolve, reject) => {
      const req = t.mod.request({
        host: t.host,
        port: t.port,
        method,
        path,
        agent: this.agent,
        timeout: HTTP_TIMEOUT_MS,
        headers: {
          'Content-type': 'application/json',
          Accept: 'text/plain',
          'Accept-Encoding': 'identity',
          'Content-Length': String(payload.length),
        },
      }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => { chunks.push(c) })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
        res.on('error', reject)
      })
      req.on('timeout', () => { req.destroy(new Error(`${method} ${path} timed out`)) })
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** Three tries with a sleep after each failure; any response counts as delivered, whatever its status (§3). */
  private async httpPost (path: string, body: string | null, tries = 3): Promise<{ status: number, text: string }> {
    let lastErr: unknown
    for (let attempt = 0; attempt < tries; attempt++) {
      try {
        return await this.httpOnce('POST', path, body)
      } catch (err) {
        lastErr = err
        if (this.stopped || attempt + 1 >= tries) break
        await sleep(this.opts.httpRetryDelayMs ?? 5000)
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr))
  }

  private applyHttpDownlinks (text: string, path: string, allowSingle: boolean): ReceivedDownlink[] {
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { return [] }
    const list: unknown[] = Array.isArray(parsed) ? parsed : allowSingle && isObject(parsed) ? [parsed] : []
    const out: ReceivedDownlink[] = []
    for (const item of list) {
      if (isObject(item) && 'deveui' in item && 'data' in item) out.push(this.deliverDownlink(String(item.deveui), item, { path }))
    }
    return out
  }

  private schedulePoll (): void {
    if (this.stopped || this.httpConfig === undefined) return
    const interval = this.opts.httpPollIntervalMs ?? this.httpConfig.downlink_query_interval * 1000
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined
      this.polling = this.pollDownlinks()
        .catch(err => { if (!this.stopped) this.emitError(err as Error) })
        .finally(() => { this.polling = undefined; this.schedulePoll() })
    }, interval)
  }

  private stopPoll (): void {
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer)
    this.pollTimer = undefined
  }

  // ---------------------------------------------------------------- helpers

  private device (device?: SimDevice | number): SimDevice {
    if (device === undefined) device = 0
    if (typeof device === 'number') {
      const d = this.devices[device]
      if (d === undefined) throw new Error(`no device #${device} (have ${this.devices.length})`)
      return d
    }
    return device
  }

  private ensureRunning (): void {
    if (!this.started) throw new Error('not started')
    if (this.stopped) throw new Error('stopped')
  }

  private emitError (err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
