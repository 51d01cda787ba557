/**
 * MQTT over WebSocket for the console's live tail, on the console's own HTTP listener at
 * `/console/mqtt`: the page reaches it on its own origin, whatever MQTT listeners are configured.
 * Only a request carrying a live session cookie is upgraded; the MQTT CONNECT then authenticates
 * as usual, with a one-time secret the console minted for that session (docs/console.md). The
 * stream goes to the broker like one from a `ws` listener: same packet-size guard, same ACL.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Socket } from 'node:net'
import type { Config, HttpListenerConfig, MqttListenerConfig } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { Broker } from '../broker/broker.js'
import { guardPacketSize } from '../broker/connection-guard.js'
import { normalizeAddress } from '../util/net.js'
import type { Session } from './sessions.js'

export const MQTT_WS_PATH = '/console/mqtt'

export interface MqttOverWebSocketDeps {
  config: Config
  log: Logger
  metrics: Metrics
  broker: Broker
  /** The session the request's cookie names, if live and still an admin's; refuses with a reason otherwise. */
  session: (req: IncomingMessage) => Promise<{ session: Session } | { status: 401 | 403 | 421, code: UpgradeRefusal }>
  refused: (code: UpgradeRefusal, address: string, reason: string) => void
}

type UpgradeRefusal = 'LB_ERR_CONSOLE_SESSION' | 'LB_ERR_CONSOLE_ORIGIN' | 'LB_ERR_CONSOLE_HOST'

const STATUS_TEXT = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 421: 'Misdirected Request', 503: 'Service Unavailable' } as const

function refuse (socket: Duplex, status: keyof typeof STATUS_TEXT): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}

/** Attaches the upgrade handler to one HTTP listener's server. */
export function serveMqttOverWebSocket (server: Server, listener: HttpListenerConfig, deps: MqttOverWebSocketDeps): void {
  const protocol: MqttListenerConfig['protocol'] = listener.protocol === 'https' ? 'wss' : 'ws'
  // What the broker and its logs see as the accepting listener; never anonymous.
  const asListener: MqttListenerConfig = { protocol, host: listener.host, port: listener.port, anonymous: false, path: MQTT_WS_PATH }
  const maxPacketSize = deps.config.mqtt.limits.maxPacketSize
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: offered => offered.has('mqtt') ? 'mqtt' : false,
    maxPayload: maxPacketSize + 8,
  })
  server.once('close', () => { wss.close() })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const address = normalizeAddress(req.socket.remoteAddress)
    // Node hands the socket over without an error listener, and the session check below is async:
    // a peer resetting meanwhile must not become an uncaught 'error'.
    socket.on('error', () => {})
    if ((req.url ?? '').split('?')[0] !== MQTT_WS_PATH) { refuse(socket, 404); return }
    deps.session(req).then(found => {
      if (!('session' in found)) {
        deps.refused(found.code, address, found.code === 'LB_ERR_CONSOLE_SESSION' ? 'WebSocket upgrade without a live console session' : found.code === 'LB_ERR_CONSOLE_HOST' ? `WebSocket upgrade for host ${req.headers.host ?? '(none)'}` : 'WebSocket upgrade from another origin')
        refuse(socket, found.status)
        return
      }
      if (socket.destroyed) return
      const { session } = found
      wss.handleUpgrade(req, socket, head, ws => {
        ;(socket as Socket).setNoDelay?.(true)
        session.sockets.add(socket)
        socket.once('close', () => session.sockets.delete(socket))
        const stream = createWebSocketStream(ws)
        stream.on('error', () => { /* reported by the broker as a client error */ })
        guardPacketSize(stream, maxPacketSize, size => {
          deps.metrics.mqttRejected.inc({ code: 'LB_ERR_MQTT_PACKET_TOO_LARGE' })
          deps.log.warn({ code: 'LB_ERR_MQTT_PACKET_TOO_LARGE', protocol, address, reason: `packet of ${size} bytes exceeds ${maxPacketSize}` }, 'connection refused')
        })
        deps.metrics.mqttConnections.inc({ protocol })
        try {
          deps.broker.handle(stream, { protocol, listener: asListener, remoteAddress: address, certificateUser: undefined, console: true })
        } catch {
          // The broker is stopping (or not yet started): nothing to hand the stream to.
          stream.destroy()
        }
      })
    }, (err: unknown) => {
      deps.log.error({ err }, 'console WebSocket upgrade failed')
      refuse(socket, 503)
    })
  })
}
