/**
 * app-connect JSON → normalized events (PRODUCT.md §2). Pure functions: the same input gives the
 * same output over MQTT and HTTP, apart from `network.transport` and `receivedAt`.
 */
import type { GatewayReception, Join, MultitechNetwork, Radio, Uplink } from '../model/events.js'
import { dashedEui, normalizeEui } from '../model/eui.js'
import { frameId } from '../model/ids.js'
import type { JoinedPayload, UplinkPayload } from './payloads.js'
import { omitUndefined } from '../util/omit-undefined.js'

export interface NormalizeContext {
  app: (facts: { devEui: string, appEui?: string | undefined, joinEui?: string | undefined, gateways: string[] }) => string
  network: MultitechNetwork
  receivedAt: Date
  includeRaw: boolean
}

export type Normalized<T> = { ok: true, event: T } | { ok: false, code: 'LB_ERR_APPCONNECT_PAYLOAD' | 'LB_ERR_APPCONNECT_EUI', message: string }

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const HEX = /^(?:[0-9a-fA-F]{2})*$/

/** With encodeHex the Conduit sends hex and says so in `data-format` (§2.2); otherwise base64. */
export function payloadBytes (data: string, format: string | undefined): Buffer | undefined {
  if (format === 'hexadecimal') return HEX.test(data) ? Buffer.from(data, 'hex') : undefined
  return BASE64.test(data) ? Buffer.from(data, 'base64') : undefined
}

/** PHY header fields from `mhdr` (MHDR, DevAddr LE, FCtrl, FCnt LE), for firmware that omits them. */
export function parseMhdr (mhdr: string | undefined): { confirmed?: boolean, devAddr?: string, fCnt?: number } {
  if (mhdr === undefined || mhdr.length < 16) return {}
  const b = Buffer.from(mhdr.slice(0, 16), 'hex')
  const mtype = b[0]! >> 5
  return {
    ...(mtype === 2 || mtype === 4 ? { confirmed: mtype === 4 } : {}),
    devAddr: Buffer.from([b[4]!, b[3]!, b[2]!, b[1]!]).toString('hex'),
    fCnt: b.readUInt16LE(6),
  }
}

export function parseDataRate (datr: string | undefined): Radio {
  if (datr === undefined) return {}
  const m = /^SF(\d+)BW(\d+)$/i.exec(datr)
  return { dataRate: datr, ...(m !== null ? { spreadingFactor: Number(m[1]), bandwidthKHz: Number(m[2]) } : {}) }
}

function isoTime (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const t = new Date(value)
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString()
}


function gatewaysOf (gweui: string | undefined, rssi?: number, snr?: number): GatewayReception[] | undefined {
  const id = normalizeEui(gweui)
  return id === undefined ? undefined : [omitUndefined({ id: dashedEui(id), rssi, snr })]
}

export function normalizeUplink (p: UplinkPayload, topicDevEui: string | undefined, ctx: NormalizeContext): Normalized<Uplink> {
  // §7.9: the payload's deveui is authoritative; the topic may be a leftover template.
  const devEui = normalizeEui(p.deveui) ?? topicDevEui
  if (devEui === undefined) return { ok: false, code: 'LB_ERR_APPCONNECT_EUI', message: 'no DevEUI in topic or payload' }
  const bytes = payloadBytes(p.data, p['data-format'])
  if (bytes === undefined) return { ok: false, code: 'LB_ERR_APPCONNECT_PAYLOAD', message: `data is not ${p['data-format'] === 'hexadecimal' ? 'hex' : 'base64'}` }
  const phy = parseMhdr(p.mhdr)
  const devAddr = p.devaddr?.toLowerCase() ?? phy.devAddr
  const fCnt = p.fcnt ?? p.seqn ?? phy.fCnt
  const hex = bytes.toString('hex')
  const appEui = normalizeEui(p.appeui)
  const network: MultitechNetwork = omitUndefined({ ...ctx.network, appEui: appEui !== undefined ? dashedEui(appEui) : ctx.network.appEui })
  const radio = omitUndefined({ frequency: p.freq, ...parseDataRate(p.datr), codingRate: p.codr })
  const event: Uplink = omitUndefined({
    id: frameId('up', devEui, devAddr, fCnt, hex),
    app: ctx.app({ devEui, appEui, joinEui: normalizeEui(p.joineui), gateways: [ctx.network.gateway, normalizeEui(p.gweui)].filter((g): g is string => g !== undefined) }),
    devEui,
    devAddr,
    fPort: p.port,
    fCnt,
    confirmed: phy.confirmed,
    adr: p.adr,
    // Only when set: it is news only then (an acknowledgement of a confirmed downlink).
    ack: p.ack === true ? true : undefined,
    data: bytes.toString('base64'),
    hex,
    time: isoTime(p.time),
    receivedAt: ctx.receivedAt.toISOString(),
    radio: Object.keys(radio).length > 0 ? radio : undefined,
    gateways: gatewaysOf(p.gweui, p.rssi, p.lsnr),
    network,
    raw: ctx.includeRaw ? p : undefined,
  })
  return { ok: true, event }
}

export function normalizeJoin (p: JoinedPayload, topicDevEui: string | undefined, ctx: NormalizeContext): Normalized<Join> {
  const devEui = normalizeEui(p.deveui) ?? topicDevEui
  if (devEui === undefined) return { ok: false, code: 'LB_ERR_APPCONNECT_EUI', message: 'no DevEUI in topic or payload' }
  const appEui = normalizeEui(p.appeui)
  const joinEui = normalizeEui(p.joineui)
  const time = isoTime(p.time)
  const network: MultitechNetwork = omitUndefined({ ...ctx.network, appEui: appEui !== undefined ? dashedEui(appEui) : ctx.network.appEui })
  const event: Join = omitUndefined({
    // v1.0 publishes one join on two topics (F8) with the same body: same id, published once.
    id: frameId('join', devEui, joinEui, time ?? ctx.receivedAt.toISOString()),
    app: ctx.app({ devEui, appEui, joinEui, gateways: [ctx.network.gateway, normalizeEui(p.gweui)].filter((g): g is string => g !== undefined) }),
    devEui,
    joinEui: joinEui !== undefined ? dashedEui(joinEui) : undefined,
    appEui: appEui !== undefined ? dashedEui(appEui) : undefined,
    time,
    receivedAt: ctx.receivedAt.toISOString(),
    gateways: gatewaysOf(p.gweui),
    network,
    raw: ctx.includeRaw ? p : undefined,
  })
  return { ok: true, event }
}
