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
      // optional: the handshake succeeds without a certificate; one that is presented but does
      // not verify is refused after the handshake (see badClientCertificate).
      rejectUnauthorized: clientCertificates === 'required',
    },
  }
}

/** With `optional`, a presented certificate that fails verification is a refusal, not "no certificate". */
export function badClientCertificate (socket: TLSSocket): string | undefined {
  if (socket.authorized) return undefined
  const peer = socket.getPeerCertificate()
  if (peer === null || Object.keys(peer).length === 0) return undefined
  return String(socket.authorizationError ?? 'certificate not verified')
}

/** The identity a verified client certificate carries (PRODUCT.md §6: CN by default). */
export function certificateIdentity (socket: TLSSocket, mode: 'cn' | 'off'): string | undefined {
  if (mode === 'off' || !socket.authorized) return undefined
  const cn = socket.getPeerCertificate()?.subject?.CN
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}
