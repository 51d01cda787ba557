/**
 * The normalized topic layout (PRODUCT.md §1), built and parsed here and nowhere else:
 * `{root}/{app}/devices/{devEui}/{kind}` (`kind`: `up`, `join`, `status`, `location`, the commands
 * `down` and `clear`, and the outcomes `down/queued`, `down/sent`, `down/failed`) and
 * `{root}/gateways/{gatewayId}/status`. (app-connect's own `lorawan/…` topics: multitech/topics.ts.)
 */

export type DeviceCommand = 'down' | 'clear'

export interface DeviceTopic {
  app: string
  devEui: string
  /** Everything after the DevEUI: `up`, `down`, `down/queued`, … */
  kind: string
}

export function deviceTopic (root: string, app: string, devEui: string, kind: string): string {
  return `${root}/${app}/devices/${devEui}/${kind}`
}

/** The filter for one kind of every device of every application. */
export function deviceFilter (root: string, kind: string): string {
  return `${root}/+/devices/+/${kind}`
}

export function gatewayStatusTopic (root: string, gatewayId: string): string {
  return `${root}/gateways/${gatewayId}/status`
}

/** The parts of a device topic under `root`; undefined for any other topic. */
export function parseDeviceTopic (root: string, topic: string): DeviceTopic | undefined {
  const levels = topic.split('/')
  if (levels.length < 5 || levels[0] !== root || levels[2] !== 'devices') return undefined
  return { app: levels[1]!, devEui: levels[3]!, kind: levels.slice(4).join('/') }
}

/** The gateway id of a `{root}/gateways/{id}/status` topic; undefined for any other topic. */
export function parseGatewayStatusTopic (root: string, topic: string): string | undefined {
  const levels = topic.split('/')
  return levels.length === 4 && levels[0] === root && levels[1] === 'gateways' && levels[3] === 'status' ? levels[2] : undefined
}

/** The command a topic carries (`…/down`, `…/clear`), if it is a command topic. */
export function commandOf (root: string, topic: string): { app: string, devEui: string, command: DeviceCommand } | undefined {
  const t = parseDeviceTopic(root, topic)
  if (t === undefined || (t.kind !== 'down' && t.kind !== 'clear')) return undefined
  return { app: t.app, devEui: t.devEui, command: t.kind }
}
