/**
 * The normalized events (PRODUCT.md §2): what subscribers receive, whichever network server a
 * device is on. camelCase; absent data is omitted, never null.
 */

export interface MultitechNetwork {
  type: 'multitech'
  transport: 'mqtt' | 'http'
  protocol: '1.0' | '1.1' | '1.1.1'
  /** GW-UUID, dashed lower case. */
  gateway?: string
  /** The device's AppEUI, dashed as app-connect spells it. */
  appEui?: string
}

export interface ThingParkNetwork {
  type: 'thingpark'
  connection: string
  asId?: string
  customerId?: string
  lrcId?: string
}

export type Network = MultitechNetwork | ThingParkNetwork

export interface Radio {
  frequency?: number
  dataRate?: string
  spreadingFactor?: number
  bandwidthKHz?: number
  codingRate?: string
}

export interface GatewayReception {
  id: string
  rssi?: number
  snr?: number
}

interface EventBase {
  /** Stable across duplicates of the same frame. */
  id: string
  app: string
  /** 16 lower-case hex digits. */
  devEui: string
  /** ISO-8601, bridge clock. */
  receivedAt: string
  network: Network
}

export interface Uplink extends EventBase {
  devAddr?: string
  fPort?: number
  fCnt?: number
  confirmed?: boolean
  adr?: boolean
  /** The frame's ACK bit: it acknowledges the device's last confirmed downlink. */
  ack?: true
  /** base64 of the application payload. */
  data: string
  hex: string
  decoded?: unknown
  /** The codec's warnings (a decoder that is a codec, docs/codecs.md). */
  decodeWarnings?: string[]
  /** Why the matching decoder gave no `decoded`: the codec's own errors, or the failure. */
  decodeErrors?: string[]
  time?: string
  radio?: Radio
  gateways?: GatewayReception[]
  raw?: unknown
}

export interface Join extends EventBase {
  joinEui?: string
  appEui?: string
  devAddr?: string
  time?: string
  gateways?: GatewayReception[]
  raw?: unknown
}

/** Published by applications and rules on `…/down`. */
export interface DownlinkRequest {
  id: string
  fPort: number
  /** The payload. */
  bytes: Buffer
  confirmed: boolean
  /** Flush what is queued for the device first (`replace` or `flush` in the request). */
  flush: boolean
  /** When it must have been sent by (ms since the epoch): `expiresAt` or `ttlSeconds`. */
  expiresAt?: number
}

/** A request carrying `object` instead of a payload: the device's codec encodes it (docs/codecs.md). */
export interface EncodeRequest {
  id: string
  /** Overrides the codec's fPort when given. */
  fPort: number | undefined
  object: Record<string, unknown>
  confirmed: boolean
  flush: boolean
  expiresAt?: number
}

export type AnyDownlinkRequest = DownlinkRequest | EncodeRequest

/** `down/queued`, `down/sent`, `down/acked`, `down/failed`. */
export interface DownlinkOutcome {
  id: string
  app: string
  devEui: string
  receivedAt: string
  network?: Network
  command?: 'down' | 'clear'
  reason?: DownlinkFailure
  detail?: string
  /** ThingPark `DevEUI_downlink_Sent`: the frame counter and slot used. */
  fCntDn?: number
  transmissionSlot?: number
  /** `encode-failed`: the codec's messages. */
  codecErrors?: string[]
  /** `down/queued`: what the network cannot do of what was asked (an expiry a Conduit cannot honour…). */
  caveats?: string[]
  /** `down/acked`: the uplink that carried the ACK. */
  ackedBy?: { id: string, fCnt?: number }
}

export type DownlinkFailure = 'no-route' | 'gateway-offline' | 'unsupported' | 'invalid' | 'encode-failed' | 'too-large' | 'expired' | 'queue-full' | 'flushed' | 'shutdown'
  /** Confirmed downlinks: the device's uplinks show it was not received, or nothing could be concluded in time; a later request with `replace` flushed it. */
  | 'not-acknowledged' | 'unknown' | 'replaced'
  /** ThingPark: the LRC refused the request (4xx), was unreachable past the retries, rejected it later, or did not transmit it. */
  | 'lrc-refused' | 'network-error' | 'rejected' | 'not-transmitted'

/** `status`: ThingPark device notifications (reset, join, device status answer). */
export interface DeviceStatus {
  id: string
  app: string
  devEui: string
  receivedAt: string
  network: Network
  type: string
  time?: string
  devAddr?: string
  battery?: number
  margin?: number
  resetCause?: string
  fCntDn?: number
  raw?: unknown
}

/** `location`: network geolocation. */
export interface DeviceLocation {
  id: string
  app: string
  devEui: string
  receivedAt: string
  network: Network
  latitude: number
  longitude: number
  altitude?: number
  radius?: number
  altitudeRadius?: number
  algorithm?: number
  fCnt?: number
  time?: string
  raw?: unknown
}

export type EventKind = 'up' | 'join' | 'status' | 'location' | 'down/queued' | 'down/sent' | 'down/acked' | 'down/failed'
