/**
 * First-start convenience (PRODUCT.md §5): when a TLS listener needs a certificate and none is
 * configured, a development CA and server certificate are created in dataDir, and their paths
 * logged so that a Conduit can be given the CA.
 */
import type { Component } from '../component.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import { ensureCertificates } from './certs.js'

export function needsDevelopmentCertificates (config: Config): boolean {
  const tlsListener = config.mqtt.listeners.some(l => l.protocol === 'mqtts' || l.protocol === 'wss') ||
    config.http.listeners.some(l => l.protocol === 'https' && l.tls?.cert === undefined)
  const t = config.mqtt.tls
  return tlsListener && (t.cert === undefined || t.key === undefined || (t.ca === undefined && t.clientCertificates !== 'off'))
}

export class DevCertificates implements Component {
  readonly name = 'dev-certificates'
  constructor (private readonly config: Config, private readonly log: Logger) {}

  async start (): Promise<void> {
    if (!needsDevelopmentCertificates(this.config)) return
    const { paths, created } = await ensureCertificates(this.config.dataDir)
    // Say what they stand in for: a configured server certificate with no CA set uses only the CA.
    const t = this.config.mqtt.tls
    const server = t.cert === undefined || t.key === undefined
    const usedFor = [...(server ? ['server certificate'] : []), ...(t.ca === undefined && t.clientCertificates !== 'off' ? ['client certificate CA'] : [])]
    if (created.length > 0) {
      this.log.warn({ created, ca: paths.ca, ...(server ? { cert: paths.cert } : {}), usedFor }, 'generated development certificates; give ca.crt to clients, and configure mqtt.tls for production')
    } else {
      this.log.info({ ca: paths.ca, ...(server ? { cert: paths.cert } : {}), usedFor }, server ? 'using development certificates' : 'using the development CA for client certificates (mqtt.tls.ca is not set)')
    }
  }

  async stop (): Promise<void> {}
}
