/**
 * Limits on what clients may make the broker keep. A retained message is stored (in Redis, with
 * a cluster) and handed to every future subscriber: commands (`…/down`, `…/clear`) must never be
 * retained — a retained downlink would be sent again to every new subscriber, forever — and no
 * user may fill the store with retained topics. Past a limit the message is still delivered live,
 * only not kept (EMQX's retainer.max_retained_messages; Mosquitto has retain_available only).
 *
 * Counts are kept by this instance for what its clients retained since it started: in a cluster
 * each instance enforces the limits on its own clients, and retained messages older than the
 * process are not counted (docs/security.md).
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import { commandOf } from '../model/topics.js'

export interface RetainedLimits {
  perUser: number
  total: number
}

export type RetainVerdict = { keep: true } | { keep: false, reason: 'command' | 'per-user' | 'total' }

export class RetainedBudget {
  /** Retained topic → the user whose message it holds. */
  private readonly owners = new Map<string, string>()
  private readonly perUser = new Map<string, number>()

  constructor (private readonly limits: RetainedLimits, private readonly root: string, private readonly log: Logger, private readonly metrics: Metrics) {}

  /** For a retained publication by `user`; an empty payload deletes the retained message. */
  check (user: string, topic: string, empty: boolean): RetainVerdict {
    if (commandOf(this.root, topic) !== undefined) return this.refuse(user, topic, 'command')
    const previous = this.owners.get(topic)
    if (empty) {
      if (previous !== undefined) { this.owners.delete(topic); this.adjust(previous, -1) }
      return { keep: true }
    }
    if (previous === user) return { keep: true }
    if (previous === undefined && this.owners.size >= this.limits.total) return this.refuse(user, topic, 'total')
    if ((this.perUser.get(user) ?? 0) >= this.limits.perUser) return this.refuse(user, topic, 'per-user')
    if (previous !== undefined) this.adjust(previous, -1)
    this.owners.set(topic, user)
    this.adjust(user, 1)
    return { keep: true }
  }

  private adjust (user: string, by: number): void {
    const n = (this.perUser.get(user) ?? 0) + by
    if (n <= 0) this.perUser.delete(user)
    else this.perUser.set(user, n)
  }

  private refuse (user: string, topic: string, reason: 'command' | 'per-user' | 'total'): RetainVerdict {
    this.metrics.mqttRetainRefused.inc({ reason })
    this.log.warn({ code: 'LB_ERR_MQTT_RETAIN_LIMIT', user, topic, reason }, 'retained publication delivered live only')
    return { keep: false, reason }
  }
}
