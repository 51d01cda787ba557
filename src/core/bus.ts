/**
 * Normalized bodies in and out of the embedded broker: serialized once per publication, and
 * handed back unparsed to in-process subscribers (the console) that receive what this instance
 * published.
 */
import type { Broker } from '../broker/broker.js'
import type { EventKind } from '../model/events.js'
import { deviceTopic, gatewayStatusTopic } from '../model/topics.js'

export interface PublishOptions { qos?: 0 | 1, retain?: boolean }

export class EventBus {
  /**
   * The bodies of this instance's own publications, by payload: in-process subscribers get the
   * same Buffer back from the broker and can skip parsing it again. Weak, so nothing is kept.
   */
  private readonly bodies = new WeakMap<Buffer, unknown>()

  constructor (private readonly broker: Broker, readonly root: string) {}

  deviceTopic (app: string, devEui: string, kind: EventKind | 'down' | 'clear' | 'down/pending'): string {
    return deviceTopic(this.root, app, devEui, kind)
  }

  gatewayTopic (gatewayId: string): string {
    return gatewayStatusTopic(this.root, gatewayId)
  }

  /** Resolves once the broker has stored (QoS 1) and dispatched the message. */
  publish (topic: string, body: unknown, opts: PublishOptions = {}): Promise<void> {
    const payload = Buffer.from(JSON.stringify(body))
    this.bodies.set(payload, body)
    return this.broker.publish(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false })
  }

  /**
   * A publication only where it can be heard (a subscriber, a persistent session, another
   * instance): on a single instance nobody listens to most outcome topics, and a publication
   * nobody receives would cost a serialization and the broker's whole publish path for nothing.
   */
  async publishIfHeard (topic: string, body: unknown, opts: PublishOptions = {}): Promise<void> {
    if (await this.broker.mayBeHeard(topic)) await this.publish(topic, body, opts)
  }

  /** The body a payload was made from, when this instance published it (read-only; undefined otherwise). */
  bodyOf (payload: Buffer): unknown {
    return this.bodies.get(payload)
  }

  /** See Broker.subscribe. */
  subscribe (filter: string, handler: (topic: string, payload: Buffer, local: boolean) => void): Promise<() => Promise<void>> {
    return this.broker.subscribe(filter, handler)
  }
}
