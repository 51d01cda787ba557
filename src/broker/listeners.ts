/**
 * The MQTT listeners — mqtt (TCP), mqtts (TLS), ws and wss (WebSocket at `path`, subprotocol
 * `mqtt`) — that accept sockets, apply the connection guards, and hand streams to the broker.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket, type AddressInfo } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Component } from '../component.js'
import type { Config, MqttListenerConfig } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { ErrorCode } from '../errors.js'
import { normalizeAddress, rateLimitKey } from '../util/net.js'
import { clientCertificateRefusal, certificateIdentity, certificateFacts, type ServerTls } from '../tls/server-options.js'
import { ConnectRateLimiter, coalesceWrites, guardPacketSize } from './connection-guard.js'
import type { Broker } from './broker.js'
import type { BanList } from './bans.js'

export interface MqttListenersDeps {
  config: Config
  log: Logger
  metrics: Metrics
  broker: Broker
  /** TLS settings, loaded only when a TLS listener exists. */
  tls: () => Promise<ServerTls>
  bans: BanList
}

export interface BoundListener {
  protocol: MqttListenerConfig['protocol']
  address: string
  port: number
}

/**
 * Browsers let any page open a WebSocket to any host and send the page's origin: the server must
 * check it (RFC 6455 §10.2). Other clients send no Origin. Origins compare as scheme://host[:port],
 * case-insensitively.
 */
export function webSocketOriginAllowed (origin: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true
  if (allowed.includes('*')) return true
  const o = origin.trim().toLowerCase().replace(/\/$/, '')
  return allowed.some(a => a.trim().toLowerCase().replace(/\/$/, '') === o)
}

/** MQTT 3.1.1 over WebSocket uses subprotocol `mqtt`; some old clients still offer `mqttv3.1`. */
function chooseSubprotocol (offered: Set<string>): string | false {
  if (offered.has('mqtt')) return 'mqtt'
  if (offered.has('mqttv3.1')) return 'mqttv3.1'
  return false
}

export class MqttListeners implements Component {
  readonly name = 'mqtt-listeners'
  readonly bound: BoundListener[] = []
  private readonly servers: NetServer[] = []
  private readonly sockets = new Map<Socket, MqttListenerConfig['protocol']>()
  /** Bytes of the sockets already closed, by protocol; live ones are read at scrape time. */
  private readonly closedBytes = new Map<string, { read: number, written: number }>()
  private readonly limiter: ConnectRateLimiter
  /** Addresses already reported for the current flood, so a flood does not flood the log. */
  private readonly reportedFloods = new Set<string>()

  constructor (private readonly deps: MqttListenersDeps) {
    const rate = deps.config.mqtt.limits.connectRate
    this.limiter = new ConnectRateLimiter(rate.perAddress, rate.windowSeconds)
  }

  /** Bytes read and written on the MQTT sockets so far, by protocol. */
  bytes (): Array<{ protocol: string, read: number, written: number }> {
    const totals = new Map<string, { read: number, written: number }>()
    for (const [p, t] of this.closedBytes) totals.set(p, { ...t })
    for (const [socket, p] of this.sockets) {
      const t = totals.get(p) ?? { read: 0, written: 0 }
      t.read += socket.bytesRead
      t.written += socket.bytesWritten
      totals.set(p, t)
    }
    return [...totals].map(([protocol, t]) => ({ protocol, ...t }))
  }

  async start (): Promise<void> {
    this.deps.metrics.sources.bytes = () => this.bytes()
    const needsTls = this.deps.config.mqtt.listeners.some(l => l.protocol === 'mqtts' || l.protocol === 'wss')
    const tls = needsTls ? await this.deps.tls() : undefined
    for (const listener of this.deps.config.mqtt.listeners) {
      const server = this.createServer(listener, tls)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(listener.port, listener.host, () => { server.off('error', reject); resolve() })
      })
      const address = server.address() as AddressInfo
      this.servers.push(server)
      this.bound.push({ protocol: listener.protocol, address: address.address, port: address.port })
      this.deps.log.info({ protocol: listener.protocol, address: address.address, port: address.port, ...(listener.protocol.startsWith('ws') ? { path: listener.path } : {}) }, 'listening')
    }
  }

  /** Closes a socket refused at accept, counted, with one log line per address and code per window. */
  private refuseAtAccept (socket: Socket, listener: MqttListenerConfig, address: string, code: ErrorCode, message: string): false {
    this.deps.metrics.mqttRejected.inc({ code })
    const key = `${code} ${address}`
    if (!this.reportedFloods.has(key)) {
      this.reportedFloods.add(key)
      setTimeout(() => this.reportedFloods.delete(key), this.deps.config.mqtt.limits.connectRate.windowSeconds * 1000).unref()
      this.deps.log.warn({ code, address, protocol: listener.protocol }, message)
    }
    socket.destroy()
    return false
  }

  /** Common to every accepted TCP socket: bans, limits, Nagle off, tracking for shutdown. */
  private accept (socket: Socket, listener: MqttListenerConfig): boolean {
    const address = normalizeAddress(socket.remoteAddress)
    if (this.deps.bans.addressBanned(address)) return this.refuseAtAccept(socket, listener, address, 'LB_ERR_MQTT_BANNED', 'connection from a banned address closed')
    if (this.sockets.size >= this.deps.config.mqtt.limits.maxConnections) return this.refuseAtAccept(socket, listener, address, 'LB_ERR_MQTT_CONNECTION_LIMIT', 'connection limit reached; closing new connections')
    if (!this.limiter.allow(rateLimitKey(address))) return this.refuseAtAccept(socket, listener, address, 'LB_ERR_MQTT_CONNECT_RATE', 'connect rate exceeded; closing new connections from this address')
    // Nagle's algorithm costs ~40 ms per hop on small MQTT packets (STYLE §6).
    socket.setNoDelay(true)
    this.sockets.set(socket, listener.protocol)
    socket.once('close', () => {
      this.sockets.delete(socket)
      const t = this.closedBytes.get(listener.protocol) ?? { read: 0, written: 0 }
      t.read += socket.bytesRead
      t.written += socket.bytesWritten
      this.closedBytes.set(listener.protocol, t)
    })
    this.deps.metrics.mqttConnections.inc({ protocol: listener.protocol })
    return true
  }

  private handOver (stream: Duplex, listener: MqttListenerConfig, remoteAddress: string | undefined, tlsSocket?: TLSSocket): void {
    if (listener.protocol === 'mqtt' || listener.protocol === 'mqtts') coalesceWrites(stream)
    guardPacketSize(stream, this.deps.config.mqtt.limits.maxPacketSize, size => {
      this.reject('LB_ERR_MQTT_PACKET_TOO_LARGE', listener, remoteAddress, `packet of ${size} bytes exceeds ${this.deps.config.mqtt.limits.maxPacketSize}`)
    })
    this.deps.broker.handle(stream, {
      protocol: listener.protocol,
      listener,
      remoteAddress: normalizeAddress(remoteAddress),
      certificateUser: tlsSocket !== undefined ? certificateIdentity(tlsSocket, this.deps.config.auth.certificateIdentity) : undefined,
      certificate: tlsSocket !== undefined ? certificateFacts(tlsSocket) : undefined,
    })
  }

  private reject (code: ErrorCode, listener: MqttListenerConfig, address: string | undefined, reason: string): void {
    this.deps.metrics.mqttRejected.inc({ code })
    this.deps.log.warn({ code, protocol: listener.protocol, address: normalizeAddress(address), reason }, 'connection refused')
  }

  /** A client certificate that fails verification (or a missing one, when required) closes the socket. */
  private verifyClientCertificate (socket: TLSSocket, listener: MqttListenerConfig, mode: ServerTls['clientCertificates']): boolean {
    const bad = clientCertificateRefusal(socket, mode)
    if (bad === undefined) return true
    this.deps.metrics.tlsFailures.inc({ code: 'LB_ERR_TLS_CLIENT_CERT', protocol: listener.protocol })
    this.reject('LB_ERR_TLS_CLIENT_CERT', listener, socket.remoteAddress, bad)
    socket.destroy()
    return false
  }

  private onTlsClientError (err: Error, socket: TLSSocket, listener: MqttListenerConfig): void {
    // A peer that hangs up mid-handshake (or a socket we refused for rate) is not a TLS failure.
    const errno = (err as NodeJS.ErrnoException).code
    if (errno === 'ECONNRESET' || errno === 'EPIPE' || socket.destroyed && errno === undefined) return
    const code: ErrorCode = /certificate|CERT/.test(err.message) ? 'LB_ERR_TLS_CLIENT_CERT' : 'LB_ERR_TLS_HANDSHAKE'
    this.deps.metrics.tlsFailures.inc({ code, protocol: listener.protocol })
    this.deps.log.warn({ code, protocol: listener.protocol, address: normalizeAddress(socket.remoteAddress), reason: err.message }, 'TLS handshake failed')
  }

  private createServer (listener: MqttListenerConfig, tls: ServerTls | undefined): NetServer {
    switch (listener.protocol) {
      case 'mqtt': {
        const server = createNetServer(socket => {
          if (this.accept(socket, listener)) this.handOver(socket, listener, socket.remoteAddress)
        })
        return server
      }
      case 'mqtts': {
        const server = createTlsServer(tls!.options, socket => {
          if (this.verifyClientCertificate(socket, listener, tls!.clientCertificates)) this.handOver(socket, listener, socket.remoteAddress, socket)
        })
        // 'connection' sees the raw TCP socket before the handshake: refuse floods before paying for TLS.
        server.prependListener('connection', (socket: Socket) => { this.accept(socket, listener) })
        server.on('tlsClientError', (err, socket) => { this.onTlsClientError(err, socket, listener) })
        tls!.attach(server, this.deps.log)
        return server
      }
      case 'ws':
      case 'wss': {
        const server = listener.protocol === 'wss' ? createHttpsServer(tls!.options) : createHttpServer()
        const wss = new WebSocketServer({ noServer: true, handleProtocols: chooseSubprotocol, maxPayload: this.deps.config.mqtt.limits.maxPacketSize + 8 })
        server.prependListener('connection', (socket: Socket) => { this.accept(socket, listener) })
        if (listener.protocol === 'wss') {
          server.on('tlsClientError', (err: Error, socket: TLSSocket) => { this.onTlsClientError(err, socket, listener) })
          tls!.attach(server as HttpsServer, this.deps.log)
        }
        server.on('request', (_req, res) => { res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end(`MQTT over WebSocket at ${listener.path}\n`) })
        server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
          const path = (req.url ?? '').split('?')[0]
          if (path !== listener.path) { socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n'); return }
          // Version 8 of the protocol spelled it Sec-WebSocket-Origin.
          const origin = req.headers.origin ?? req.headers['sec-websocket-origin'] as string | undefined
          if (!webSocketOriginAllowed(origin, listener.allowedOrigins ?? [])) {
            this.deps.metrics.mqttRejected.inc({ code: 'LB_ERR_MQTT_WS_ORIGIN' })
            this.deps.log.warn({ code: 'LB_ERR_MQTT_WS_ORIGIN', protocol: listener.protocol, address: normalizeAddress(req.socket.remoteAddress), origin, reason: 'a web page of an origin not in allowedOrigins' }, 'connection refused')
            socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
            return
          }
          const tlsSocket = listener.protocol === 'wss' ? req.socket as TLSSocket : undefined
          if (tlsSocket !== undefined && !this.verifyClientCertificate(tlsSocket, listener, tls!.clientCertificates)) return
          wss.handleUpgrade(req, socket, head, ws => {
            const stream = createWebSocketStream(ws)
            stream.on('error', () => { /* reported by the broker as a client error */ })
            this.handOver(stream, listener, req.socket.remoteAddress, tlsSocket)
          })
        })
        server.once('close', () => { wss.close() })
        return server
      }
    }
  }

  async stop (): Promise<void> {
    const closing = this.servers.map(s => new Promise<void>(resolve => s.close(() => resolve())))
    // Stop accepting first, then end what is still open — including sockets that never sent
    // CONNECT, which the broker does not know about and which would otherwise hold the exit.
    for (const socket of this.sockets.keys()) socket.destroy()
    await Promise.all(closing)
    this.limiter.close()
    this.servers.length = 0
  }
}
