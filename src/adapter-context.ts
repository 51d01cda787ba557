/**
 * The one object every network adapter is built from: the daemon's shared parts, and the
 * pipeline as the sink for what the adapter receives.
 */
import type { Config } from './config/schema.js'
import type { Logger } from './log.js'
import type { Metrics } from './metrics.js'
import type { Broker } from './broker/broker.js'
import type { UsersStore } from './auth/users-file.js'
import type { ApplicationResolver } from './model/applications.js'
import type { KeyValueStore } from './store/kv.js'
import type { ClientLocator } from './store/cluster-state.js'
import type { ReplayMemory } from './thingpark/replay-memory.js'
import type { FailureBudget } from './util/failure-budget.js'
import type { EventBus } from './core/bus.js'
import type { GatewayPresence } from './core/presence.js'
import type { EventSink } from './core/adapter.js'

export interface AdapterContext {
  config: Config
  /** A child logger per adapter is made from it. */
  log: (component: string) => Logger
  metrics: Metrics
  broker: Broker
  bus: EventBus
  presence: GatewayPresence
  apps: ApplicationResolver
  users: UsersStore
  kv: KeyValueStore
  locator: ClientLocator
  /** ThingPark tokens accepted, until their Time leaves the window. */
  replays: ReplayMemory
  /** Refused unauthenticated ThingPark requests per sender. */
  failures: FailureBudget
  /** The bridge clock for `receivedAt` and time windows. */
  now: () => Date
  /** False while the store (Redis) is unreachable. */
  ready: () => boolean
  env: NodeJS.ProcessEnv
  events: EventSink
}
