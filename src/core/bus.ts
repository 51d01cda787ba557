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

  /**
   * In-process observers of this instance's own events, heard by a subscriber or not (the console's
   * device history): they cost no serialization and no broker publish, so observing the outcome
   * topics does not make every outcome a publication, as a subscription would.
   */
  private readonly observers: Array<(topic: string, body: unknown) => void> = []

  /** Calls `handler` with every event this instance publishes or notes; returns the way to stop. */
  observe (handler: (topic: string, body: unknown) => void): () => void {
    this.observers.push(handler)
    return () => { const i = this.observers.indexOf(handler); if (i >= 0) this.observers.splice(i, 1) }
  }

  /** Tells the observers of an event that is not this instance's to publish (an application's request taken from MQTT). */
  note (topic: string, payload: Buffer): void {
    if (this.observers.length === 0) return
    let body: unknown
    try { body = JSON.parse(payload.toString('utf8')) } catch { return }
    this.tell(topic, body)
  }

  private tell (topic: string, body: unknown): void {
    for (const o of this.observers) {
      try { o(topic, body) } catch { /* an observer's failure is its own: the publication goes on */ }
    }
  }

  /** Resolves once the broker has stored (QoS 1) and dispatched the message. */
  publish (topic: string, body: unknown, opts: PublishOptions = {}): Promise<void> {
    if (this.observers.length > 0) this.tell(topic, body)
    return this.send(topic, body, opts)
  }

  /**
   * A publication only where it can be heard (a subscriber, a persistent session, another
   * instance): on a single instance nobody listens to most outcome topics, and a publication
   * nobody receives would cost a serialization and the broker's whole publish path for nothing.
   */
  async publishIfHeard (topic: string, body: unknown, opts: PublishOptions = {}): Promise<void> {
    if (this.observers.length > 0) this.tell(topic, body)
    if (await this.broker.mayBeHeard(topic)) await this.send(topic, body, opts)
  }

  private send (topic: string, body: unknown, opts: PublishOptions): Promise<void> {
    const payload = Buffer.from(JSON.stringify(body))
    this.bodies.set(payload, body)
    return this.broker.publish(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false })
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
