/**
 * Gateway presence on retained `{root}/gateways/{id}/status` (PRODUCT.md §1). A status is
 * published on every transition, and while online at most once per `refreshMs` to move
 * `lastSeen` on — not on every uplink.
 */
import type { Logger } from '../log.js'
import type { EventBus } from './bus.js'

export interface GatewayStatus {
  online: boolean
  network: 'multitech' | 'thingpark'
  protocol?: string
  transport?: 'mqtt' | 'http'
  gatewayEuis: string[]
  since: string
  lastSeen: string
  /** Why it went offline: close, will, connection-lost, silent. */
  reason?: string
}

export interface SeenInfo {
  network: GatewayStatus['network']
  protocol?: string | undefined
  transport?: 'mqtt' | 'http' | undefined
  gatewayEuis?: string[] | undefined
}

export class GatewayPresence {
  private readonly states = new Map<string, GatewayStatus & { publishedAt: number }>()

  constructor (private readonly bus: EventBus, private readonly log: Logger, private readonly refreshMs = 60_000, private readonly now: () => number = Date.now) {}

  status (gatewayId: string): GatewayStatus | undefined {
    const s = this.states.get(gatewayId)
    if (s === undefined) return undefined
    const { publishedAt, ...status } = s
    return status
  }

  /** Evidence of life: init, connected, any traffic. */
  async seen (gatewayId: string, info: SeenInfo): Promise<void> {
    const t = this.now()
    const iso = new Date(t).toISOString()
    const prev = this.states.get(gatewayId)
    const next = {
      online: true,
      network: info.network,
      ...(info.protocol ?? prev?.protocol) !== undefined ? { protocol: info.protocol ?? prev?.protocol } : {},
      ...(info.transport ?? prev?.transport) !== undefined ? { transport: info.transport ?? prev?.transport } : {},
      gatewayEuis: info.gatewayEuis ?? prev?.gatewayEuis ?? [],
      since: prev?.online === true ? prev.since : iso,
      lastSeen: iso,
      publishedAt: prev?.publishedAt ?? 0,
    }
    const changed = prev?.online !== true || prev.protocol !== next.protocol || prev.gatewayEuis.join() !== next.gatewayEuis.join()
    this.states.set(gatewayId, next)
    if (changed || t - next.publishedAt >= this.refreshMs) await this.publish(gatewayId)
  }

  async offline (gatewayId: string, reason: string): Promise<void> {
    const prev = this.states.get(gatewayId)
    if (prev === undefined || !prev.online) return
    const iso = new Date(this.now()).toISOString()
    this.states.set(gatewayId, { ...prev, online: false, since: iso, reason })
    this.log.info({ gateway: gatewayId, reason }, 'gateway offline')
    await this.publish(gatewayId)
  }

  /** Ids of online gateways last seen before `cutoff` (ms), for transports without a connection. */
  silentSince (cutoff: number, transport: 'http'): string[] {
    return [...this.states].filter(([, s]) => s.online && s.transport === transport && Date.parse(s.lastSeen) < cutoff).map(([id]) => id)
  }

  private async publish (gatewayId: string): Promise<void> {
    const s = this.states.get(gatewayId)!
    s.publishedAt = this.now()
    const { publishedAt, ...status } = s
    if (status.online) delete status.reason
    await this.bus.publish(this.bus.gatewayTopic(gatewayId), status, { retain: true })
    if (status.online && status.since === status.lastSeen) this.log.info({ gateway: gatewayId, protocol: status.protocol, transport: status.transport }, 'gateway online')
  }
}
