/**
 * Publishing normalized events into the embedded broker, and listening to command topics, without
 * a network client: straight through Aedes, so subscribers, persistence and (with Redis) the
 * other instances see them like any publication.
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { EventKind } from '../model/events.js'
import { deviceTopic, gatewayStatusTopic } from '../model/topics.js'

export interface PublishOptions { qos?: 0 | 1, retain?: boolean }

/** Where the rules engine plugs in: decoders before an event is published, rules after. */
export interface PublishHooks {
  before?: (kind: EventKind, event: Record<string, unknown>) => Promise<void>
  after?: (kind: EventKind, event: Record<string, unknown>) => void
}

export class EventBus {
  hooks: PublishHooks = {}
  /**
   * The bodies of this instance's own publications, by payload: in-process subscribers get the
   * same Buffer back from the broker and can skip parsing it again. Weak, so nothing is kept.
   */
  private readonly bodies = new WeakMap<Buffer, unknown>()

  constructor (private readonly broker: () => Aedes, readonly root: string) {}

  deviceTopic (app: string, devEui: string, kind: EventKind | 'down' | 'clear'): string {
    return deviceTopic(this.root, app, devEui, kind)
  }

  gatewayTopic (gatewayId: string): string {
    return gatewayStatusTopic(this.root, gatewayId)
  }

  /** Resolves once Aedes has stored (QoS 1) and dispatched the message. */
  publish (topic: string, body: unknown, opts: PublishOptions = {}): Promise<void> {
    const payload = Buffer.from(JSON.stringify(body))
    this.bodies.set(payload, body)
    return new Promise((resolve, reject) => {
      this.broker().publish({ cmd: 'publish', topic, payload, qos: opts.qos ?? 1, retain: opts.retain ?? false, dup: false }, err => {
        err === undefined || err === null ? resolve() : reject(err)
      })
    })
  }

  /** A normalized event: decoded first (uplinks), then published, then handed to the rules. */
  async publishEvent (kind: EventKind, event: { app: string, devEui: string }): Promise<void> {
    const e = event as unknown as Record<string, unknown>
    if (this.hooks.before !== undefined) await this.hooks.before(kind, e)
    await this.publish(this.deviceTopic(event.app, event.devEui, kind), event)
    this.hooks.after?.(kind, e)
  }

  /** The body a payload was made from, when this instance published it (read-only; undefined otherwise). */
  bodyOf (payload: Buffer): unknown {
    return this.bodies.get(payload)
  }

  /**
   * Subscribes inside the broker; returns the unsubscribe function. `local` tells whether the
   * message was published on this instance: in a cluster every instance receives it.
   */
  async subscribe (filter: string, handler: (topic: string, payload: Buffer, local: boolean) => void): Promise<() => Promise<void>> {
    const broker = this.broker()
    const deliver = (packet: AedesPublishPacket, cb: () => void): void => {
      try {
        handler(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), packet.brokerId === undefined || packet.brokerId === broker.id)
      } finally {
        cb()
      }
    }
    await new Promise<void>(resolve => broker.subscribe(filter, deliver, resolve))
    return () => new Promise<void>(resolve => broker.unsubscribe(filter, deliver, resolve))
  }
}
