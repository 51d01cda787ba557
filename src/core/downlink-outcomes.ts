/**
 * The end of every downlink request: `down/queued`, `down/sent` or `down/failed`, published as a
 * normalized event (rules can act on it), counted and, when failed, logged. One object, built
 * before the router and the network adapters, and handed to each at construction: adapters that
 * finish later (HTTP Conduits fetching their downlinks, ThingPark's sent reports) report through
 * it too, with no reporter bound after the fact.
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { DownlinkOutcome } from '../model/events.js'
import type { EventBus } from './bus.js'

export type OutcomeKind = 'down/queued' | 'down/failed' | 'down/sent'

/** How a request's outcome is published, by the router and by transports that finish later. */
export type OutcomeReporter = (kind: OutcomeKind, o: Omit<DownlinkOutcome, 'receivedAt'>, networkType: string) => Promise<void>

export function outcomeReporter (deps: { bus: EventBus, log: Logger, metrics: Metrics }): OutcomeReporter {
  return async (kind, o, networkType) => {
    const event: DownlinkOutcome = { ...o, receivedAt: new Date().toISOString() }
    deps.metrics.downlinks.inc({ network: networkType, result: kind.slice(5), reason: o.reason ?? '' })
    if (kind === 'down/failed') deps.log.info({ id: o.id, app: o.app, devEui: o.devEui, reason: o.reason, detail: o.detail }, 'downlink failed')
    await deps.bus.publishEvent(kind, event)
  }
}
