/**
 * Which application a device belongs to (`applications[].match`). A device matches an application
 * when any list names it; when several could, the most specific wins: DevEUI, then AppEUI/JoinEUI,
 * then gateway or ThingPark connection, each in configuration order. No match: `default`.
 */
import type { Config } from '../config/schema.js'
import { normalizeEui, normalizeGatewayId } from './eui.js'

export const DEFAULT_APP = 'default'

export interface DeviceFacts {
  devEui: string
  appEui?: string | undefined
  joinEui?: string | undefined
  /** Conduit GW-UUIDs and gateway EUIs that heard it. */
  gateways?: readonly string[] | undefined
  thingparkConnection?: string | undefined
}

interface CompiledApp {
  name: string
  devEuis: Set<string>
  appEuis: Set<string>
  gateways: Set<string>
  thingpark: Set<string>
}

/** Gateway identifiers are compared in one spelling: UUIDs dashed, EUIs bare, anything else lower-cased. */
function gatewayKey (value: string): string {
  return normalizeGatewayId(value) ?? normalizeEui(value) ?? value.toLowerCase()
}

export class ApplicationResolver {
  private readonly apps: CompiledApp[]

  constructor (applications: Config['applications']) {
    this.apps = applications.map(a => ({
      name: a.name,
      devEuis: new Set(a.match.devEui.map(e => normalizeEui(e)!)),
      appEuis: new Set(a.match.appEui.map(e => normalizeEui(e)!)),
      gateways: new Set(a.match.gateways.map(gatewayKey)),
      thingpark: new Set(a.match.thingpark),
    }))
  }

  resolve (d: DeviceFacts): string {
    const appEui = d.appEui !== undefined ? normalizeEui(d.appEui) : undefined
    const joinEui = d.joinEui !== undefined ? normalizeEui(d.joinEui) : undefined
    const gws = (d.gateways ?? []).map(gatewayKey)
    return this.apps.find(a => a.devEuis.has(d.devEui))?.name ??
      this.apps.find(a => (appEui !== undefined && a.appEuis.has(appEui)) || (joinEui !== undefined && a.appEuis.has(joinEui)))?.name ??
      this.apps.find(a => gws.some(g => a.gateways.has(g)) || (d.thingparkConnection !== undefined && a.thingpark.has(d.thingparkConnection)))?.name ??
      DEFAULT_APP
  }
}
