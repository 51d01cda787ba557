/**
 * TLS settings for the mqtts, wss and https listeners: TLS 1.2 and 1.3 (Conduits pin 1.2),
 * forward-secret AEAD suites only by default, the server certificate, client certificates off /
 * optional / required, and certificate revocation lists re-read when they change.
 */
import { readFile } from 'node:fs/promises'
import { type Server as TlsServer, type TlsOptions, type TLSSocket } from 'node:tls'
import type { Config, ClientCertificates } from '../config/schema.js'
import { dataPath } from '../config/load.js'
import { LorabridgeError } from '../errors.js'
import type { Logger } from '../log.js'
import { devCertPaths } from './certs.js'
import { CrlWatcher, checkSecureContext } from './crl-watcher.js'

export interface TlsFileSettings {
  cert?: string | undefined
  key?: string | undefined
  ca?: string | undefined
  clientCertificates?: ClientCertificates | undefined
  minVersion?: 'TLSv1.2' | 'TLSv1.3' | undefined
  ciphers?: string | undefined
  ecdhCurve?: string | undefined
  crl?: string | string[] | undefined
}

export interface ServerTls {
  options: TlsOptions
  clientCertificates: ClientCertificates
  /**
   * Registers a server built from `options`: when a CRL file changes, its new contents are
   * applied to the server's secure context (new handshakes only; open connections stay).
   */
  attach: (server: TlsServer, log: Logger) => void
}

export async function readPem (config: Config, p: string, what: string): Promise<Buffer> {
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
  const crlSetting = own?.crl ?? base.crl
  const crlFiles = crlSetting === undefined ? [] : (Array.isArray(crlSetting) ? crlSetting : [crlSetting]).map(f => dataPath(config, f))
  const [cert, key, ca, crl] = await Promise.all([
    readPem(config, pick('cert'), 'certificate'),
    readPem(config, pick('key'), 'private key'),
    clientCertificates === 'off' ? Promise.resolve(undefined) : readPem(config, pick('ca'), 'CA bundle'),
    Promise.all(crlFiles.map(async f => await readPem(config, f, 'CRL'))),
  ])
  const options: TlsOptions = {
    cert,
    key,
    ...(ca !== undefined ? { ca } : {}),
    ...(crl.length > 0 && clientCertificates !== 'off' ? { crl } : {}),
    minVersion: own?.minVersion ?? base.minVersion,
    maxVersion: 'TLSv1.3',
    ciphers: own?.ciphers ?? base.ciphers,
    ecdhCurve: own?.ecdhCurve ?? base.ecdhCurve,
    // The server's order decides: a client that lists a weak suite first still gets a strong one.
    honorCipherOrder: true,
    requestCert: clientCertificates !== 'off',
    // Verification failures are enforced right after the handshake (clientCertificateRefusal),
    // before any MQTT or HTTP byte is read: OpenSSL's own refusal reaches the server only as
    // "socket hang up", and operators need to see "CERT_HAS_EXPIRED" in the log and counters.
    rejectUnauthorized: false,
  }
  checkSecureContext(options)
  const watcher = options.crl !== undefined ? new CrlWatcher(crlFiles, options) : undefined
  return {
    clientCertificates,
    options,
    attach: (server, log) => { watcher?.attach(server, log) },
  }
}

/**
 * Why a TLS client must be refused, or undefined. A presented certificate that fails verification
 * (revoked ones included) is always a refusal (with `optional` too: it is not "no certificate");
 * with `required`, so is having none.
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

/** What a verified client certificate is, beyond its name: checked against the users file's records. */
export interface CertificateFacts {
  /** SHA-256 of the DER certificate, lowercase hex without separators. */
  sha256: string
  /** Serial number, uppercase hex as OpenSSL prints it. */
  serial: string
  notBefore: Date
}

export function certificateFacts (socket: TLSSocket): CertificateFacts | undefined {
  if (!socket.authorized) return undefined
  const peer = socket.getPeerCertificate()
  if (peer === null || peer.raw === undefined) return undefined
  return {
    sha256: peer.fingerprint256.replace(/:/g, '').toLowerCase(),
    serial: peer.serialNumber.toUpperCase(),
    notBefore: new Date(peer.valid_from),
  }
}
