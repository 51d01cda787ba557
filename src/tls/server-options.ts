/**
 * TLS settings for the mqtts, wss and https listeners: TLS 1.2 and 1.3 (Conduits pin 1.2), the
 * server certificate, and client certificates off / optional / required.
 */
import { readFile } from 'node:fs/promises'
import type { TlsOptions, TLSSocket } from 'node:tls'
import type { Config, ClientCertificates } from '../config/schema.js'
import { dataPath } from '../config/load.js'
import { LorabridgeError } from '../errors.js'
import { devCertPaths } from './certs.js'

export interface TlsFileSettings {
  cert?: string | undefined
  key?: string | undefined
  ca?: string | undefined
  clientCertificates?: ClientCertificates | undefined
}

export interface ServerTls {
  options: TlsOptions
  clientCertificates: ClientCertificates
}

async function readPem (config: Config, p: string, what: string): Promise<Buffer> {
  const file = dataPath(config, p)
  try {
    return await readFile(file)
  } catch (err) {
    throw new LorabridgeError('LB_ERR_TLS_FILE', `cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err })
  }
}

/** Builds server TLS options; absent files fall back to the development certificates in dataDir. */
export async function loadServerTls (config: Config, own?: TlsFileSettings): Promise<ServerTls> {
  const base = config.mqtt.tls
  const dev = devCertPaths(config.dataDir)
  const pick = <K extends 'cert' | 'key' | 'ca'>(k: K): string => own?.[k] ?? base[k] ?? dev[k]
  const clientCertificates = own?.clientCertificates ?? base.clientCertificates
  const [cert, key, ca] = await Promise.all([
    readPem(config, pick('cert'), 'certificate'),
    readPem(config, pick('key'), 'private key'),
    clientCertificates === 'off' ? Promise.resolve(undefined) : readPem(config, pick('ca'), 'CA bundle'),
  ])
  return {
    clientCertificates,
    options: {
      cert,
      key,
      ...(ca !== undefined ? { ca } : {}),
      minVersion: base.minVersion,
      maxVersion: 'TLSv1.3',
      requestCert: clientCertificates !== 'off',
      // Verification failures are enforced right after the handshake (clientCertificateRefusal),
      // before any MQTT or HTTP byte is read: OpenSSL's own refusal reaches the server only as
      // "socket hang up", and operators need to see "CERT_HAS_EXPIRED" in the log and counters.
      rejectUnauthorized: false,
    },
  }
}

/**
 * Why a TLS client must be refused, or undefined. A presented certificate that fails verification
 * is always a refusal (with `optional` too: it is not "no certificate"); with `required`, so is
 * having none.
 */
export function clientCertificateRefusal (socket: TLSSocket, mode: ClientCertificates): string | undefined {
  if (mode === 'off' || socket.authorized) return undefined
  const peer = socket.getPeerCertificate()
  const presented = peer !== null && Object.keys(peer).length > 0
  if (!presented) return mode === 'required' ? 'no client certificate (client certificates are required)' : undefined
  return String(socket.authorizationError ?? 'certificate not verified')
}

/** The identity a verified client certificate carries (PRODUCT.md §6: CN by default). */
export function certificateIdentity (socket: TLSSocket, mode: 'cn' | 'off'): string | undefined {
  if (mode === 'off' || !socket.authorized) return undefined
  const cn = socket.getPeerCertificate()?.subject?.CN
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}
