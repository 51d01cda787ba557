/**
 * The daemon's own status (PRODUCT.md §1, `{root}/_bridge/…`): each instance keeps a retained
 * `{root}/_bridge/instances/{name}` saying what it is and whether it runs. `name` is stable across
 * restarts (host name and data directory), so a restarted instance replaces its old status instead
 * of adding one. A clean stop publishes `online: false`; an instance that dies cannot, so `lastSeen`
 * moves every `refreshMs`: a status whose `lastSeen` is older than twice that is gone.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import type { Component } from '../component.js'
import type { Logger } from '../log.js'
import type { EventBus } from './bus.js'

export interface InstanceListener { kind: 'mqtt' | 'http', protocol: string, address: string, port: number }

export interface InstanceStatusBody {
  name: string
  /** Random per start: tells two runs of the same instance apart. */
  instance: string
  version: string
  online: boolean
  startedAt: string
  lastSeen: string
  stoppedAt?: string
  store: 'memory' | 'redis'
  listeners: InstanceListener[]
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** `<host>-<8 hex digits of the data directory>`: stable across restarts, distinct per instance. */
export function instanceName (dataDir: string): string {
  const host = hostname().toLowerCase().replace(/[^a-z0-9_-]/g, '-') || 'host'
  return `${host}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`
}

export class InstanceStatus implements Component {
  readonly name = 'instance-status'
  private body: InstanceStatusBody | undefined
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly deps: {
    bus: EventBus
    log: Logger
    instanceName: string
    instance: string
    store: 'memory' | 'redis'
    listeners: () => InstanceListener[]
    now?: () => Date
    refreshMs?: number
  }) {}

  get topic (): string { return `${this.deps.bus.root}/_bridge/instances/${this.deps.instanceName}` }

  private now (): string { return (this.deps.now?.() ?? new Date()).toISOString() }

  async start (): Promise<void> {
    const t = this.now()
    this.body = { name: this.deps.instanceName, instance: this.deps.instance, version: VERSION, online: true, startedAt: t, lastSeen: t, store: this.deps.store, listeners: this.deps.listeners() }
    await this.publish()
    this.timer = setInterval(() => {
      if (this.body === undefined) return
      this.body.lastSeen = this.now()
      this.publish().catch((err: unknown) => { this.deps.log.warn({ err }, 'could not refresh the instance status') })
    }, this.deps.refreshMs ?? 60_000)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    if (this.body === undefined) return
    const t = this.now()
    this.body = { ...this.body, online: false, lastSeen: t, stoppedAt: t }
    await this.publish().catch((err: unknown) => { this.deps.log.warn({ err }, 'could not publish the stopped status') })
    this.body = undefined
  }

  private async publish (): Promise<void> {
    await this.deps.bus.publish(this.topic, this.body, { qos: 1, retain: true })
  }
}
