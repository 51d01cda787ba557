/**
 * Bounded outbound queues: a subscriber that stops reading must never hold the publishers (the
 * app-connect ingest waits for its publications before PUBACK, ThingPark for its before answering)
 * or the other subscribers.
 *
 * Aedes completes a delivery only once the subscriber's socket has taken the bytes: a full socket
 * makes it wait for 'drain' (lib/write.js → client.waitForDrain), and the publication completes
 * only when every delivery has. Here a delivery completes at once and the bytes wait in the
 * socket's buffer instead, bounded per client by `maxQueuedMessages` and `maxQueuedBytes` — the
 * counterparts of Mosquitto's max_queued_messages/max_queued_bytes and EMQX's max_mqueue_len.
 * Past the bound, a clean-session client misses the message (counted); a persistent-session
 * client is disconnected, its QoS 1 messages staying in its stored session for the next
 * connection. A client that reads nothing for `drainTimeout` is disconnected, as before.
 */
import type { Client } from 'aedes'
import type { Duplex } from 'node:stream'
import { LorabridgeError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'

export interface OutboundLimits {
  maxQueuedMessages: number
  maxQueuedBytes: number
  drainTimeout: number
}

export type Admission = 'write' | 'drop'

interface QueueState {
  /** Messages written since the client's buffer was last empty. */
  written: number
  /** The current overflow was reported (one log line per episode). */
  reported: boolean
  /** Disconnection already scheduled. */
  closing: boolean
}

/** The parts of an Aedes client this module relies on (lib/client.js). */
interface AedesClientInternals {
  conn: Duplex
  clean: boolean
  waitForDrain: (callback: (err: Error | null, client: unknown) => void) => void
}

export class OutboundQueues {
  private readonly states = new WeakMap<Client, QueueState>()

  constructor (private readonly limits: OutboundLimits, private readonly log: Logger, private readonly metrics: Metrics) {}

  /**
   * Makes a new client's writes never hold the publisher: Aedes's wait for 'drain' completes at
   * once, and a watchdog disconnects the client if the buffer does not drain within drainTimeout.
   */
  attach (client: Client): void {
    const c = client as unknown as AedesClientInternals
    const timeout = this.limits.drainTimeout
    let watchdog: NodeJS.Timeout | undefined
    const settle = (): void => { if (watchdog !== undefined) { clearTimeout(watchdog); watchdog = undefined } }
    c.waitForDrain = callback => {
      setImmediate(callback, null, client)
      if (timeout <= 0 || watchdog !== undefined) return
      c.conn.once('drain', settle)
      watchdog = setTimeout(() => {
        watchdog = undefined
        c.conn.removeListener('drain', settle)
        // Aedes reports it as a client error: LB_ERR_MQTT_DRAIN_TIMEOUT (broker.ts).
        c.conn.destroy(new Error('drain timeout'))
      }, timeout)
      watchdog.unref()
    }
    c.conn.once('close', settle)
  }

  /** Called for every delivery to `client` (authorizeForward): may it be written? */
  admit (client: Client): Admission {
    const c = client as unknown as AedesClientInternals
    let state = this.states.get(client)
    if (state === undefined) {
      state = { written: 0, reported: false, closing: false }
      this.states.set(client, state)
    }
    const buffered = c.conn.writableLength
    if (buffered === 0) { state.written = 0; state.reported = false }
    if (state.written < this.limits.maxQueuedMessages && buffered < this.limits.maxQueuedBytes) {
      state.written++
      return 'write'
    }
    if (!state.reported) {
      state.reported = true
      this.log.warn({ code: 'LB_ERR_MQTT_QUEUE_FULL', clientId: client.id, queuedMessages: state.written, queuedBytes: buffered, persistent: !c.clean },
        c.clean ? 'client does not keep up; dropping its messages until it reads' : 'client does not keep up; disconnecting it (its session keeps its QoS 1 messages)')
    }
    if (c.clean) {
      this.metrics.mqttDropped.inc({ reason: 'queue-full' })
      return 'drop'
    }
    // A persistent session: the message is in its stored queue already (Aedes enqueues before it
    // delivers); writing it and cutting the connection keeps it there for the next connection.
    if (!state.closing) {
      state.closing = true
      setImmediate(() => { c.conn.destroy(new LorabridgeError('LB_ERR_MQTT_QUEUE_FULL', `outbound queue over ${this.limits.maxQueuedMessages} messages or ${this.limits.maxQueuedBytes} bytes`)) })
    }
    return 'write'
  }
}
