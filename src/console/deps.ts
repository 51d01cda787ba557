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
  now?: () => number
}
