/**
 * The HTTP(S) listeners: one Fastify instance per listener, each with the same routes — health,
 * readiness and metrics here; app-connect HTTP and ThingPark register theirs through `routes`.
 */
import { fastify, LogController, type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import type { Component } from '../component.js'
import type { Config, HttpListenerConfig } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { Server as TlsServer, TLSSocket } from 'node:tls'
import { clientCertificateRefusal, type ServerTls, type TlsFileSettings } from '../tls/server-options.js'
import { isLoopbackHost } from '../util/net.js'

/** Registers routes on one listener's Fastify instance; `listener` is that listener's settings. */
export type RouteRegistrar = (app: FastifyInstance, listener: HttpListenerConfig) => void

export interface Readiness {
  ready: boolean
  checks: Record<string, boolean>
}

export interface HttpListenersDeps {
  config: Config
  log: Logger
  metrics: Metrics
  readiness: () => Readiness
  tls: (own?: TlsFileSettings) => Promise<ServerTls>
  routes: RouteRegistrar[]
}

export interface BoundHttpListener { protocol: HttpListenerConfig['protocol'], address: string, port: number }

/** Metrics name gateways, rules and applications: by default only on a loopback listener. */
export function servesMetrics (listener: Pick<HttpListenerConfig, 'host' | 'metrics'>): boolean {
  return listener.metrics ?? isLoopbackHost(listener.host)
}

function healthRoutes (deps: HttpListenersDeps): RouteRegistrar {
  return (app, listener) => {
    app.get('/healthz', async () => ({ status: 'ok' }))
    app.get('/readyz', async (_req, reply) => {
      const r = deps.readiness()
      return reply.code(r.ready ? 200 : 503).send(r)
    })
    if (servesMetrics(listener)) {
      app.get('/metrics', async (_req, reply) => {
        const body = await deps.metrics.registry.metrics()
        return reply.type(deps.metrics.registry.contentType).send(body)
      })
    }
  }
}

export class HttpListeners implements Component {
  readonly name = 'http-listeners'
  readonly bound: BoundHttpListener[] = []
  private readonly apps: FastifyInstance[] = []

  constructor (private readonly deps: HttpListenersDeps) {}

  async start (): Promise<void> {
    for (const listener of this.deps.config.http.listeners) {
      const tls = listener.protocol === 'https' ? await this.deps.tls(listener.tls) : undefined
      const app = fastify({
        // Fastify's own info lines (one per request, "Server listening at") would drown the log and
        // duplicate our `listening` line; its warnings and errors still come through.
        loggerInstance: this.deps.log.isLevelEnabled('warn') ? this.deps.log.child({}, { level: 'warn' }) : this.deps.log,
        logController: new LogController({ disableRequestLogging: true }),
        // Requests are not logged, so a child logger (with its request id) per request is work for nothing.
        childLoggerFactory: logger => logger,
        bodyLimit: this.deps.config.http.bodyLimit,
        // app-connect polls over HTTP keep-alive; keep idle connections longer than its interval.
        keepAliveTimeout: 75_000,
        // Fastify's default is no limit: a sender trickling a body would hold its socket for ever.
        requestTimeout: this.deps.config.http.requestTimeoutMs,
        // Node looks for requests past their timeout every this often (its default: 30 s).
        ...(tls !== undefined ? { https: { ...tls.options, connectionsCheckingInterval: 1000 } } : { http: { connectionsCheckingInterval: 1000 } }),
      }) as unknown as FastifyInstance
      // Node enforces requestTimeout only while headersTimeout (default 60 s) is not longer.
      app.server.headersTimeout = Math.min(60_000, this.deps.config.http.requestTimeoutMs)
      if (tls !== undefined) this.enforceClientCertificates(app, tls, listener)
      for (const register of [healthRoutes(this.deps), ...this.deps.routes]) register(app, listener)
      await app.listen({ port: listener.port, host: listener.host })
      const address = app.server.address() as AddressInfo
      this.apps.push(app)
      this.bound.push({ protocol: listener.protocol, address: address.address, port: address.port })
      this.deps.log.info({ protocol: listener.protocol, address: address.address, port: address.port }, 'listening')
    }
  }

  /** Same policy as the MQTT listeners: a bad (or, when required, missing) certificate ends the connection before any request is read. */
  private enforceClientCertificates (app: FastifyInstance, tls: ServerTls, listener: HttpListenerConfig): void {
    tls.attach(app.server as unknown as TlsServer, this.deps.log)
    // Refused cipher suites and protocol versions are counted as on the MQTT listeners.
    app.server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || (socket.destroyed && err.code === undefined)) return
      const code = /certificate|CERT/.test(err.message) ? 'LB_ERR_TLS_CLIENT_CERT' : 'LB_ERR_TLS_HANDSHAKE'
      this.deps.metrics.tlsFailures.inc({ code, protocol: listener.protocol })
      this.deps.log.warn({ code, protocol: listener.protocol, address: socket.remoteAddress, reason: err.message }, 'TLS handshake failed')
    })
    app.server.on('secureConnection', (socket: TLSSocket) => {
      const refusal = clientCertificateRefusal(socket, tls.clientCertificates)
      if (refusal === undefined) return
      this.deps.metrics.tlsFailures.inc({ code: 'LB_ERR_TLS_CLIENT_CERT', protocol: listener.protocol })
      this.deps.log.warn({ code: 'LB_ERR_TLS_CLIENT_CERT', protocol: listener.protocol, address: socket.remoteAddress, reason: refusal }, 'connection refused')
      socket.destroy()
    })
  }

  async stop (): Promise<void> {
    await Promise.all(this.apps.map(async app => { await app.close() }))
    this.apps.length = 0
  }
}
