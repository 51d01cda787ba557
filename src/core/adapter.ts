/**
 * The contract between the pipeline and the network servers lorabridge serves (docs/architecture.md).
 * An adapter turns what its network sends into normalized events and hands them to the pipeline
 * (`EventSink.accept`); the pipeline hands it downlinks for the devices it carried (`send`,
 * `clear`). Routes are the adapter's own: the pipeline keeps them and gives them back, unread.
 */
import type { Component } from '../component.js'
import type { RouteRegistrar } from '../http/http-listeners.js'
import type { DeviceLocation, DeviceStatus, DownlinkFailure, DownlinkOutcome, DownlinkRequest, AnyDownlinkRequest, Join, Network, Uplink } from '../model/events.js'
import type { RouteSummary } from './routes.js'

export type NetworkName = 'multitech' | 'thingpark'

/** A device to reach: its application, its DevEUI, and the route its adapter recorded. */
export interface DownlinkTarget { app: string, devEui: string, route: unknown }

export type SendResult =
  | { status: 'queued', network?: Network, caveats?: string[] }
  /** The adapter reports the outcome later, through EventSink.outcome (HTTP Conduits fetch their downlinks). */
  | { status: 'deferred' }
  | { status: 'failed', reason: DownlinkFailure, detail: string, network?: Network, codecErrors?: string[] }

export interface NetworkAdapter extends Component {
  /** Unique: route entries name their adapter by it. */
  readonly name: string
  readonly network: NetworkName
  send (target: DownlinkTarget, request: DownlinkRequest): Promise<SendResult>
  clear (target: DownlinkTarget): Promise<SendResult>
  /** Its endpoints on the HTTP listeners, if it has any. */
  readonly httpRoutes?: RouteRegistrar
}

export type NormalizedEvent =
  | { kind: 'up', event: Uplink }
  | { kind: 'join', event: Join }
  | { kind: 'status', event: DeviceStatus }
  | { kind: 'location', event: DeviceLocation }

/** One reception, as an adapter hands it to the pipeline. */
export type Reception = NormalizedEvent & {
  network: NetworkName
  /** The gateway that heard it best (metrics per gateway), when there is one. */
  gateway?: string | undefined
  /** The way back to the device, offered before deduplication: a better copy of a frame updates it. */
  route?: { adapter: string, route: unknown, summary: RouteSummary, snr: number | undefined, rssi: number | undefined }
  /** Deduplication key; `${kind}:${event.id}` by default. */
  dedupKey?: string
  /** The network server's receive time (ms), for the dedup window. */
  receivedAtMs?: number
}

export type OutcomeKind = 'down/queued' | 'down/failed' | 'down/sent' | 'down/acked'

/** What adapters hand to the pipeline. */
export interface EventSink {
  /** Offers the route, deduplicates, decodes, publishes, runs the rules. Rejects when the event could not be kept. */
  accept (reception: Reception): Promise<'published' | 'duplicate'>
  /** A dedup check for an adapter's own reports (ThingPark's sent reports); true the first time. */
  firstSighting (key: string): Promise<boolean>
  /** Publishes a downlink request's outcome (adapters that finish later report through it). */
  outcome (kind: OutcomeKind, o: Omit<DownlinkOutcome, 'receivedAt'>, networkType: string): Promise<void>
  /** A request an adapter holds again after a restart (it survived in the store): listed as pending until its outcome. */
  held (app: string, devEui: string, request: DownlinkRequest): void
}

/** Where a rule's validated request goes; `body` is the request as the rule wrote it (what observers of `…/down` see). */
export type DownlinkHandler = (app: string, devEui: string, request: AnyDownlinkRequest, body: Record<string, unknown>) => Promise<void>

/** What encoding a request's `object` gives: the payload and port, or why not (docs/codecs.md). */
export type EncodeResult = { ok: true, bytes: Buffer, fPort: number } | { ok: false, detail: string, codecErrors: string[] }

/** Encodes a request's `object` with the codec that matches the device (the rules own the codecs). */
export type DownlinkEncoder = (device: { app: string, devEui: string, network: string }, object: Record<string, unknown>, fPort: number | undefined) => Promise<EncodeResult>
