/**
 * What the console shows that no other component keeps in a listable form: the latest status of
 * every gateway (from the retained `{root}/gateways/{id}/status`), and per device its last uplink,
 * signal and a per-minute uplink count for the last hour (from `{root}/{app}/devices/{devEui}/up`).
 * Both follow the normalized topics inside the broker, so in a cluster they see every instance's
 * events. Bounded: the least recently heard devices are forgotten first.
 */
import { deviceFilter, gatewayStatusTopic, parseDeviceTopic, parseGatewayStatusTopic } from '../model/topics.js'
import type { GatewayStatus } from '../core/presence.js'

export const RATE_MINUTES = 60

export interface GatewayView extends Partial<GatewayStatus> {
  id: string
}

export interface DeviceView {
  devEui: string
  app: string
  network: string | undefined
  lastUplink: string | undefined
  lastJoin: string | undefined
  fCnt: number | undefined
  fPort: number | undefined
  /** Signal of the best reception of the last uplink (highest SNR). */
  rssi: number | undefined
  snr: number | undefined
  /** The gateway (or ThingPark connection) that heard the last uplink best. */
  gateway: string | undefined
  uplinks: number
  /** The last uplink's decoded values (a decoder's or codec's), and why it has none when its decoder failed. */
  decoded?: unknown
  decodeErrors?: string[]
  /** What lorabridge holds for the device or waits to hear acknowledged (its retained `down/pending`). */
  pending?: Array<{ id: string, state: string, confirmed: boolean, size?: number, fPort?: number, expiresAt?: string }>
  /** Uplinks per minute, oldest first; the last entry is the current minute. */
  rate: number[]
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const num = (v: unknown): number | undefined => typeof v === 'number' && Number.isFinite(v) ? v : undefined
const str = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

/** Per-minute counts in a ring; `minute` is the epoch minute of the newest slot. */
class MinuteCounts {
  private readonly slots = new Array<number>(RATE_MINUTES).fill(0)
  private minute = 0

  add (minute: number): void {
    this.advance(minute)
    this.slots[minute % RATE_MINUTES]!++
  }

  series (minute: number): number[] {
    this.advance(minute)
    return Array.from({ length: RATE_MINUTES }, (_, i) => this.slots[(minute - RATE_MINUTES + 1 + i) % RATE_MINUTES]!)
  }

  private advance (minute: number): void {
    if (minute <= this.minute) return
    for (let m = Math.max(this.minute + 1, minute - RATE_MINUTES + 1); m <= minute; m++) this.slots[m % RATE_MINUTES] = 0
    this.minute = minute
  }
}

/** A device as kept: its view, with the per-minute counts the view's `rate` is read from. */
interface DeviceState extends Omit<DeviceView, 'rate'> {
  counts: MinuteCounts
}

export class ConsoleState {
  private readonly gateways = new Map<string, GatewayView>()
  private readonly devices = new Map<string, DeviceState>()
  private readonly total = new MinuteCounts()

  constructor (readonly root: string, private readonly maxDevices = 10_000, private readonly maxGateways = 10_000, private readonly now: () => number = Date.now) {}

  /** The filters to follow inside the broker. */
  get filters (): string[] {
    return [gatewayStatusTopic(this.root, '+'), deviceFilter(this.root, 'up'), deviceFilter(this.root, 'join'), deviceFilter(this.root, 'down/pending')]
  }

  /**
   * Takes one normalized message (`parsed`: its body when already known, as for this instance's
   * own publications); anything unexpected is ignored (the tail shows it as it is).
   */
  take (topic: string, payload: Buffer, parsed?: unknown): void {
    const gatewayId = parseGatewayStatusTopic(this.root, topic)
    const device = gatewayId === undefined ? parseDeviceTopic(this.root, topic) : undefined
    if (gatewayId === undefined && (device === undefined || (device.kind !== 'up' && device.kind !== 'join' && device.kind !== 'down/pending'))) return
    let body: unknown = parsed
    if (body === undefined) {
      try {
        body = JSON.parse(payload.toString('utf8'))
      } catch {
        return
      }
    }
    if (!isObject(body)) return
    if (gatewayId !== undefined) this.gateway(gatewayId, body)
    else if (device?.kind === 'down/pending') this.pendingOf(device.devEui, body)
    else if (device !== undefined) this.device(device.app, device.devEui, device.kind as 'up' | 'join', body)
  }

  private gateway (id: string, status: Record<string, unknown>): void {
    if (!this.gateways.has(id) && this.gateways.size >= this.maxGateways) this.gateways.delete(this.gateways.keys().next().value as string)
    this.gateways.set(id, { ...(status as Partial<GatewayStatus>), id })
  }

  /** Only for devices already known (a pending list alone does not add a device). */
  private pendingOf (devEui: string, body: Record<string, unknown>): void {
    const d = this.devices.get(devEui)
    if (d === undefined || !Array.isArray(body.pending)) return
    d.pending = body.pending.filter(isObject).slice(0, 50).map(p => ({
      id: str(p.id) ?? '?', state: str(p.state) ?? '?', confirmed: p.confirmed === true,
      ...(num(p.size) !== undefined ? { size: num(p.size) } : {}), ...(num(p.fPort) !== undefined ? { fPort: num(p.fPort) } : {}), ...(str(p.expiresAt) !== undefined ? { expiresAt: str(p.expiresAt) } : {}),
    }))
  }

  private device (app: string, devEui: string, kind: 'up' | 'join', e: Record<string, unknown>): void {
    let d = this.devices.get(devEui)
    if (d === undefined) {
      d = { devEui, app, network: undefined, lastUplink: undefined, lastJoin: undefined, fCnt: undefined, fPort: undefined, rssi: undefined, snr: undefined, gateway: undefined, uplinks: 0, counts: new MinuteCounts() }
      if (this.devices.size >= this.maxDevices) this.devices.delete(this.devices.keys().next().value as string)
    }
    // Re-inserted so that map order is least recently heard first.
    this.devices.delete(devEui)
    this.devices.set(devEui, d)
    d.app = app
    const network = isObject(e.network) ? e.network : {}
    d.network = str(network.type) ?? d.network
    const at = str(e.receivedAt) ?? new Date(this.now()).toISOString()
    const best = (Array.isArray(e.gateways) ? e.gateways : []).filter(isObject)
      .sort((a, b) => (num(b.snr) ?? -Infinity) - (num(a.snr) ?? -Infinity))[0]
    d.gateway = str(best?.id) ?? str(network.gateway) ?? str(network.connection) ?? d.gateway
    if (kind === 'join') {
      d.lastJoin = at
      return
    }
    d.lastUplink = at
    d.fCnt = num(e.fCnt)
    d.fPort = num(e.fPort)
    d.rssi = num(best?.rssi)
    d.snr = num(best?.snr)
    // Kept small: a decoded object is at most what one uplink carries, and only the last one is kept.
    d.decoded = e.decoded
    d.decodeErrors = Array.isArray(e.decodeErrors) ? e.decodeErrors.filter((x): x is string => typeof x === 'string') : undefined
    d.uplinks++
    const minute = Math.floor(this.now() / 60_000)
    d.counts.add(minute)
    this.total.add(minute)
  }

  gatewayList (): GatewayView[] {
    return [...this.gateways.values()].sort((a, b) => a.id.localeCompare(b.id))
  }

  /** Most recently heard first, at most `limit`. */
  deviceList (limit = 1000): DeviceView[] {
    const minute = Math.floor(this.now() / 60_000)
    const out: DeviceView[] = []
    for (const d of [...this.devices.values()].reverse().slice(0, limit)) {
      const { counts, ...rest } = d
      out.push({ ...rest, rate: counts.series(minute) })
    }
    return out
  }

  /** One device's view, when it was last heard in `app`. */
  deviceView (app: string, devEui: string): DeviceView | undefined {
    const d = this.devices.get(devEui)
    if (d === undefined || d.app !== app) return undefined
    const { counts, ...rest } = d
    return { ...rest, rate: counts.series(Math.floor(this.now() / 60_000)) }
  }

  get deviceCount (): number { return this.devices.size }

  /** Uplinks per minute over the last hour, all devices. */
  totalRate (): number[] {
    return this.total.series(Math.floor(this.now() / 60_000))
  }
}
