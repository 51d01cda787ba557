/**
 * Per device, the way back (PRODUCT.md §3): which network adapter carried its latest uplink or
 * join, and the adapter's own description of how to reach the device again. When several gateways
 * hear one frame, the route follows the best signal among them.
 *
 * The route itself is opaque here: only the adapter named by `adapter` reads it (and checks it,
 * since in a cluster it comes back from Redis).
 */
export interface RouteEntry {
  /** The NetworkAdapter's name (adapter.ts). */
  adapter: string
  /** The adapter's own route: plain JSON. */
  route: unknown
  /** What the console and logs show of the route (`network` and a few strings). */
  summary: RouteSummary
  app: string
  /** Frame the route was learnt from, and its signal, to pick the best gateway for that frame. */
  frame: string
  snr: number | undefined
  rssi: number | undefined
  at: number
  /** The uplink's spreading factor and bandwidth, for the downlink size check (regional-limits.ts). */
  radio?: { spreadingFactor?: number, bandwidthKHz?: number }
}

export interface RouteSummary { network: 'multitech' | 'thingpark', [field: string]: string }

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
