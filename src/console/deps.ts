/** What the web console is built from. */
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { UsersStore } from '../auth/users-file.js'
import type { Authenticator } from '../auth/authenticator.js'
import type { Broker } from '../broker/broker.js'
import type { EventBus } from '../core/bus.js'
import type { RouteTable } from '../core/routes.js'
import type { RulesComponent } from '../rules/component.js'
import type { ConsoleTokens } from './sessions.js'
import type { AnyDownlinkRequest } from '../model/events.js'
import type { RedisConnection } from '../store/redis.js'

export interface WebConsoleDeps {
  config: Config
  log: Logger
  metrics: Metrics
  users: UsersStore
  authenticator: Authenticator
  /** Shared with the Authenticator, which consumes what the console mints. */
  tokens: ConsoleTokens
  broker: Broker
  bus: EventBus
  routes: RouteTable
  rules: RulesComponent
  /** Routes a downlink request sent from a device page, as the router routes a rule's (echoed on `…/down`, then routed). */
  downlink?: (app: string, devEui: string, request: AnyDownlinkRequest, body: Record<string, unknown>) => Promise<void>
  /** The daemon's Redis, when it has one: device pages' history is kept there. */
  redis?: { connection: RedisConnection, prefix: string } | undefined
  now?: () => number
}
