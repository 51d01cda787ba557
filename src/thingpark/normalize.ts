/**
 * ThingPark reports → normalized events (PRODUCT.md §2). Values are read through FieldReader, so
 * typed JSON, untyped JSON and XML of one report give byte-identical output.
 */
import type { DeviceLocation, DeviceStatus, GatewayReception, Join, ThingParkNetwork, Uplink } from '../model/events.js'
import { dashedEui } from '../model/eui.js'
import { frameId } from '../model/ids.js'
import type { FieldReader } from './reports.js'
import { omitUndefined as compact } from '../util/omit-undefined.js'

export interface TpContext {
  network: ThingParkNetwork
  app: (devEui: string) => string
  receivedAt: Date
  raw: unknown
}

export type TpNormalized<T> = { ok: true, event: T } | { ok: false, message: string }


function devEuiOf (f: FieldReader): string | undefined {
  const d = f.hex('DevEUI', true, 16)
  return d
}

function network (f: FieldReader, ctx: TpContext): ThingParkNetwork {
  return compact({ ...ctx.network, customerId: f.str('CustomerID'), lrcId: f.str('Lrcid') })
}

/** `Lrrs.Lrr` (up to 10 base stations), or the best one's top-level fields. */
function gateways (f: FieldReader): GatewayReception[] | undefined {
  const list = f.lrrs().map(l => compact({ id: l.str('Lrrid') ?? '', rssi: l.num('LrrRSSI'), snr: l.num('LrrSNR') }))
    .filter(g => g.id !== '')
  if (list.length > 0) return list
  const id = f.str('Lrrid')
  return id === undefined ? undefined : [compact({ id, rssi: f.num('LrrRSSI'), snr: f.num('LrrSNR') })]
}

export function isJoinRequest (f: FieldReader): boolean {
  return f.has('rawJoinRequest') || (!f.has('payload_hex') && !f.has('FCntUp'))
}

export function normalizeUplink (f: FieldReader, ctx: TpContext): TpNormalized<Uplink> {
  const devEui = devEuiOf(f)
  const fPort = f.int('FPort', false, 0, 255)
  const fCnt = f.int('FCntUp', true, 0)
  const hex = f.hex('payload_hex', true)
  const mtype = f.int('MType', false, 0, 7)
  const adr = f.int('ADRbit', false, 0, 1)
  const ack = f.int('ACKbit', false, 0, 1)
  const devAddr = f.hex('DevAddr', false, 8)
  const frequency = f.num('Frequency')
  const sf = f.int('SpFact', false, 5, 12)
  const gws = gateways(f)
  if (f.errors.length > 0 || devEui === undefined || hex === undefined) return { ok: false, message: f.errors.join('; ') }
  const bytes = Buffer.from(hex, 'hex')
  const radio = compact({ frequency, spreadingFactor: sf, dataRate: sf !== undefined ? `SF${sf}` : undefined })
  return {
    ok: true,
    event: compact<Uplink>({
      id: frameId('up', devEui, devAddr, fCnt, hex),
      app: ctx.app(devEui),
      devEui,
      devAddr,
      fPort,
      fCnt,
      // MType 4 is a confirmed data up (§1.2). ThingPark sends ADRbit only when it is set, so its
      // absence means false (and `adr` is always present here).
      confirmed: mtype !== undefined ? mtype === 4 : undefined,
      adr: adr === 1,
      // ThingPark sends ACKbit only when it is set (§1.2); published only then, as from a Conduit.
      ack: ack === 1 ? true : undefined,
      data: bytes.toString('base64'),
      hex,
      time: f.time('Time'),
      receivedAt: ctx.receivedAt.toISOString(),
      radio: Object.keys(radio).length > 0 ? radio : undefined,
      gateways: gws,
      network: network(f, ctx),
      raw: ctx.raw,
    }),
  }
}

/** The join-request variant of DevEUI_uplink (§1.3): JoinEUI from the raw frame (MHDR, JoinEUI LE, DevEUI LE, DevNonce, MIC). */
export function normalizeJoin (f: FieldReader, ctx: TpContext): TpNormalized<Join> {
  const devEui = devEuiOf(f)
  const raw = f.hex('rawJoinRequest')
  const gws = gateways(f)
  f.int('Spfact', false, 5, 12)
  if (f.errors.length > 0 || devEui === undefined) return { ok: false, message: f.errors.join('; ') }
  const joinEui = raw !== undefined && raw.length >= 18 ? dashedEui(Buffer.from(raw.slice(2, 18), 'hex').reverse().toString('hex')) : undefined
  const time = f.time('Time')
  return {
    ok: true,
    event: compact<Join>({
      id: frameId('join', devEui, joinEui, raw ?? time),
      app: ctx.app(devEui),
      devEui,
      joinEui,
      time,
      receivedAt: ctx.receivedAt.toISOString(),
      gateways: gws,
      network: network(f, ctx),
      raw: ctx.raw,
    }),
  }
}

export function normalizeNotification (f: FieldReader, ctx: TpContext): TpNormalized<DeviceStatus> {
  const devEui = devEuiOf(f)
  const type = f.str('Type', true)
  const devAddr = f.hex('DevAddr', false, 8)
  const fCntDn = f.int('FCntDn', false, 0)
  const var1 = f.str('Var1')
  const var2 = f.str('Var2')
  const numeric = type === 'devstatusans'
  const battery = numeric ? f.num('Var1') : undefined
  const margin = numeric ? f.num('Var2') : undefined
  if (f.errors.length > 0 || devEui === undefined || type === undefined) return { ok: false, message: f.errors.join('; ') }
  const time = f.time('Time')
  return {
    ok: true,
    event: compact<DeviceStatus>({
      id: frameId('status', devEui, time, type, var1, var2),
      app: ctx.app(devEui),
      devEui,
      receivedAt: ctx.receivedAt.toISOString(),
      network: network(f, ctx),
      type,
      time,
      devAddr,
      battery,
      margin,
      resetCause: type === 'reset' ? var1 : undefined,
      fCntDn,
      raw: ctx.raw,
    }),
  }
}

export function normalizeLocation (f: FieldReader, ctx: TpContext): TpNormalized<DeviceLocation> {
  const devEui = devEuiOf(f)
  const latitude = f.num('DevLAT', true)
  const longitude = f.num('DevLON', true)
  const altitude = f.num('DevAlt')
  const radius = f.num('DevLocRadius')
  const altitudeRadius = f.num('DevAltRadius')
  const algorithm = f.int('NwGeolocAlgoUsed') ?? f.int('NwGeolocAlgo')
  const fCnt = f.int('DevUlFCntUpUsed', false, 0)
  if (f.errors.length > 0 || devEui === undefined || latitude === undefined || longitude === undefined) return { ok: false, message: f.errors.join('; ') }
  const time = f.time('DevLocTime') ?? f.time('Time')
  return {
    ok: true,
    event: compact<DeviceLocation>({
      id: frameId('location', devEui, time, latitude, longitude),
      app: ctx.app(devEui),
      devEui,
      receivedAt: ctx.receivedAt.toISOString(),
      network: network(f, ctx),
      latitude,
      longitude,
      altitude,
      radius,
      altitudeRadius,
      algorithm,
      fCnt,
      time,
      raw: ctx.raw,
    }),
  }
}

const CAUSES: Record<string, string> = {
  A0: 'radio stopped', A1: 'downlink radio stopped', A2: 'RX1 or ping slot not available', A3: 'radio busy', A4: 'listen-before-talk', A5: 'radio board error',
  B0: 'too late', C0: 'LRC selected RX2', D0: 'duty cycle at the LRR', DA: 'duty cycle at the LRC', DB: 'max dwell time', DC: 'no GPS-synchronised LRR',
  DD: 'no LRR connected', DE: 'duty cycle not allowed by the peering operator', DF: 'wrong NetID', E0: 'class C max delay expired',
}

/** `DeliveryFailedCause1..4` (RX1, RX2, ping slot, RXR) as words (§1.6). */
export function deliveryCauses (f: FieldReader): string {
  const slots = ['RX1', 'RX2', 'ping slot', 'RXR']
  return slots.map((slot, i) => {
    const c = f.str(`DeliveryFailedCause${i + 1}`)
    return c === undefined || c === '00' ? undefined : `${slot}: ${c} ${CAUSES[c.toUpperCase()] ?? 'unknown cause'}`
  }).filter(x => x !== undefined).join('; ')
}
