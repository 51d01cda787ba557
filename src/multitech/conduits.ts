/**
 * What we know of each Conduit: its GW-UUID (as it spells it, and normalized), app-connect
 * version, encoding, radio-card EUIs and MQTT client id. Learnt from its client id
 * (`lorawan/<eui>/<uuid>`), init, connected and its traffic.
 */
import { isGatewayUuid, normalizeEui, normalizeGatewayId } from '../model/eui.js'

export type AppConnectVersion = '1.0' | '1.1' | '1.1.1'

export interface Conduit {
  gatewayId: string
  gatewayWire: string
  version: AppConnectVersion | undefined
  encoding: 'hex' | 'base64' | undefined
  transport: 'mqtt' | 'http'
  gatewayEuis: string[]
  clientId: string | undefined
  /** The app connection's EUI (v1.0 topics; ff-… under v1.1). */
  appEui: string | undefined
}

/** app-connect's default client id is `lorawan/<app eui>/<gw uuid>` (§1). */
export function parseConduitClientId (clientId: string): { appEui: string | undefined, gatewayWire: string } | undefined {
  const m = /^lorawan\/([^/]*)\/([^/]+)$/.exec(clientId)
  if (m === null || !isGatewayUuid(m[2]!)) return undefined
  return { appEui: normalizeEui(m[1]), gatewayWire: m[2]! }
}

export function versionFromInit (apiVersion: string | undefined, family: '1.0' | '1.1'): AppConnectVersion {
  if (apiVersion === '1.1.1') return '1.1.1'
  if (apiVersion?.startsWith('1.1') === true) return '1.1'
  // Older firmware sends no api_version (F1b): the topic family decides.
  return family === '1.1' ? '1.1' : '1.0'
}

export class ConduitRegistry {
  private readonly byId = new Map<string, Conduit>()
  private readonly byClient = new Map<string, string>()
  private readonly byEui = new Map<string, string>()

  get (gatewayId: string): Conduit | undefined { return this.byId.get(gatewayId) }

  byClientId (clientId: string): Conduit | undefined {
    const id = this.byClient.get(clientId)
    return id === undefined ? undefined : this.byId.get(id)
  }

  byGatewayEui (eui: string | undefined): Conduit | undefined {
    const n = normalizeEui(eui)
    const id = n === undefined ? undefined : this.byEui.get(n)
    return id === undefined ? undefined : this.byId.get(id)
  }

  /** Creates or updates what we know; fields left undefined keep their previous value. */
  learn (gatewayWire: string, patch: Partial<Omit<Conduit, 'gatewayId' | 'gatewayWire'>>): Conduit {
    const gatewayId = normalizeGatewayId(gatewayWire)!
    const prev = this.byId.get(gatewayId)
    const next: Conduit = {
      gatewayId,
      gatewayWire,
      version: patch.version ?? prev?.version,
      encoding: patch.encoding ?? prev?.encoding,
      transport: patch.transport ?? prev?.transport ?? 'mqtt',
      gatewayEuis: patch.gatewayEuis ?? prev?.gatewayEuis ?? [],
      clientId: patch.clientId ?? prev?.clientId,
      appEui: patch.appEui ?? prev?.appEui,
    }
    this.byId.set(gatewayId, next)
    if (next.clientId !== undefined) this.byClient.set(next.clientId, gatewayId)
    for (const eui of next.gatewayEuis) {
      const n = normalizeEui(eui)
      if (n !== undefined) this.byEui.set(n, gatewayId)
    }
    return next
  }
}
