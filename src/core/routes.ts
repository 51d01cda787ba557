/**
 * Per device, the way back (PRODUCT.md §3): which network server — and for a Conduit which
 * gateway, dialect and encoding — carried its latest uplink or join. When several Conduits hear
 * one frame, the route follows the best signal among them.
 */
export interface MultitechRoute {
  network: 'multitech'
  transport: 'mqtt' | 'http'
  protocol: '1.0' | '1.1' | '1.1.1'
  /** GW-UUID as this Conduit spells it on the wire (v1.0: 32 upper-case hex; v1.1: dashed). */
  gatewayWire: string
  /** GW-UUID, dashed lower case: the gateway's id in normalized topics. */
  gatewayId: string
  /** The device's AppEUI, dashed (v1.0 down topics are per AppEUI). */
  appEui: string | undefined
  encoding: 'hex' | 'base64'
  /** MQTT client id of the Conduit's connection. */
  clientId: string | undefined
}

export interface ThingParkRoute {
  network: 'thingpark'
  connection: string
}

export type Route = MultitechRoute | ThingParkRoute

export interface RouteEntry {
  route: Route
  app: string
  /** Frame the route was learnt from, and its signal, to pick the best gateway for that frame. */
  frame: string
  snr: number | undefined
  rssi: number | undefined
  at: number
}

export interface RouteTable {
  get (devEui: string): Promise<RouteEntry | undefined>
  /** Records a reception; keeps the existing route when it is for the same frame with a better signal. */
  offer (devEui: string, entry: RouteEntry): Promise<void>
}

function better (a: RouteEntry, b: RouteEntry): boolean {
  if ((a.snr ?? -Infinity) !== (b.snr ?? -Infinity)) return (a.snr ?? -Infinity) > (b.snr ?? -Infinity)
  return (a.rssi ?? -Infinity) > (b.rssi ?? -Infinity)
}

export class MemoryRouteTable implements RouteTable {
  private readonly routes = new Map<string, RouteEntry>()

  async get (devEui: string): Promise<RouteEntry | undefined> {
    return this.routes.get(devEui)
  }

  async offer (devEui: string, entry: RouteEntry): Promise<void> {
    const current = this.routes.get(devEui)
    if (current !== undefined && current.frame === entry.frame && !better(entry, current)) return
    this.routes.set(devEui, entry)
  }
}
