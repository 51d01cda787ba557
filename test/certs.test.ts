// Why a real handshake: parsing the certificates only proves they are well-formed; OpenSSL's
// chain, hostname, EKU and validity checks are what the broker and its clients actually run.

import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import tls from 'node:tls'
import type { Socket } from 'node:net'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { mkdtemp, rm, stat, readFile, unlink, access } from 'node:fs/promises'
import { tmpdir, hostname } from 'node:os'
import { join } from 'node:path'
import {
  createCa, createServerCert, createClientCert, ensureCertificates, writeClientCert, devCertPaths,
  DEV_SERVER_HOSTS, type PemPair,
} from '../src/tls/certs.js'

const DAY = 24 * 60 * 60 * 1000

interface Outcome {
  /** The client received the server's greeting, so both sides accepted the handshake. */
  clientOk: boolean
  clientError?: Error
  protocol?: string | null
  serverCn?: string
  serverAuthorized?: boolean
  serverAuthorizationError?: string
  serverError?: Error
}

/**
 * One connection to a fresh server on 127.0.0.1:0. The server writes "ok" once its side is
 * satisfied: with TLS 1.3 the client finishes before the server has checked the client certificate,
 * so "secureConnect" alone would not show a refusal.
 */
async function handshake (serverOpts: tls.TlsOptions, clientOpts: tls.ConnectionOptions): Promise<Outcome> {
  const outcome: Outcome = { clientOk: false }
  const sockets = new Set<Socket>()
  const server = tls.createServer(serverOpts, sock => {
    const peer = sock.getPeerCertificate()
    outcome.serverCn = typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined
    outcome.serverAuthorized = sock.authorized
    if (sock.authorizationError !== undefined) outcome.serverAuthorizationError = String(sock.authorizationError)
    sock.end('ok')
  })
  server.on('connection', s => { sockets.add(s) })
  server.on('tlsClientError', err => { outcome.serverError = err })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no port')

  let client: tls.TLSSocket | undefined
  try {
    await new Promise<void>(resolve => {
      const c = tls.connect({ host: '127.0.0.1', port: address.port, ...clientOpts })
      client = c
      let data = ''
      const timer = setTimeout(() => { c.destroy(new Error('handshake timed out')) }, 5000)
      c.setEncoding('utf8')
      c.on('secureConnect', () => { outcome.protocol = c.getProtocol() })
      c.on('data', (d: string) => { data += d })
      c.on('error', err => { outcome.clientError = err })
      c.on('close', () => {
        clearTimeout(timer)
        outcome.clientOk = data === 'ok' && outcome.clientError === undefined
        resolve()
      })
    })
  } finally {
    client?.destroy()
    for (const s of sockets) s.destroy()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  }
  return outcome
}

let ca: PemPair
let server: PemPair
let client: PemPair
let otherCaClient: PemPair
let expiredClient: PemPair

beforeAll(async () => {
  ca = await createCa()
  const otherCa = await createCa({ commonName: 'some other CA' })
  ;[server, client, otherCaClient, expiredClient] = await Promise.all([
    createServerCert(ca, { hosts: DEV_SERVER_HOSTS }),
    createClientCert(ca, { commonName: 'conduit-01' }),
    createClientCert(otherCa, { commonName: 'intruder' }),
    createClientCert(ca, { commonName: 'expired', notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) }),
  ])
})

describe('generated certificates (node:crypto view)', () => {
  it('CA is a self-signed RSA-2048 CA with PKCS#8 key', () => {
    const c = new X509Certificate(ca.cert)
    expect(c.ca).toBe(true)
    expect(c.subject).toBe('CN=lorabridge development CA')
    expect(c.verify(c.publicKey)).toBe(true)
    expect(ca.key.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true)
    const key = createPrivateKey(ca.key)
    expect(key.asymmetricKeyType).toBe('rsa')
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048)
    expect(c.checkPrivateKey(key)).toBe(true)
    expect(c.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/i)
    const years = (Date.parse(c.validTo) - Date.parse(c.validFrom)) / (365.25 * DAY)
    expect(Math.round(years)).toBe(10)
  })

  it('server certificate is issued by the CA and covers the dev hosts', () => {
    const c = new X509Certificate(server.cert)
    const issuer = new X509Certificate(ca.cert)
    expect(c.ca).toBe(false)
    expect(c.checkIssued(issuer)).toBe(true)
    expect(c.verify(issuer.publicKey)).toBe(true)
    expect(c.subject).toBe('CN=localhost')
    expect(c.checkHost('localhost')).toBe('localhost')
    expect(c.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(c.checkIP('::1')).toBe('::1')
    expect(c.subjectAltName).toContain('DNS:localhost')
    expect(c.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1'])
    expect(c.checkPrivateKey(createPrivateKey(server.key))).toBe(true)
  })

  it('client certificate carries the name and clientAuth', () => {
    const c = new X509Certificate(client.cert)
    expect(c.subject).toBe('CN=conduit-01')
    expect(c.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2'])
    expect(c.checkIssued(new X509Certificate(ca.cert))).toBe(true)
  })

  it('serial numbers differ', async () => {
    const a = new X509Certificate((await createClientCert(ca, { commonName: 'a' })).cert)
    expect(a.serialNumber).not.toBe(new X509Certificate(client.cert).serialNumber)
  })
})

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  describe(`TLS handshake, ${version}`, () => {
    const pin = { minVersion: version, maxVersion: version }
    const serverOpts = (): tls.TlsOptions => ({ ...pin, cert: server.cert, key: server.key })
    const mtlsOpts = (): tls.TlsOptions => ({ ...serverOpts(), requestCert: true, rejectUnauthorized: true, ca: ca.cert })

    it('server certificate verifies for servername localhost', async () => {
      const r = await handshake(serverOpts(), { ...pin, ca: ca.cert, servername: 'localhost' })
      expect(r.clientError).toBeUndefined()
      expect(r.clientOk).toBe(true)
      expect(r.protocol).toBe(version)
    })

    it('server certificate verifies when connecting to the IP 127.0.0.1', async () => {
      const r = await handshake(serverOpts(), { ...pin, ca: ca.cert })
      expect(r.clientError).toBeUndefined()
      expect(r.clientOk).toBe(true)
    })

    it('server certificate is refused for a name it does not cover', async () => {
      const r = await handshake(serverOpts(), { ...pin, ca: ca.cert, servername: 'example.com' })
      expect(r.clientOk).toBe(false)
      expect((r.clientError as NodeJS.ErrnoException | undefined)?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
    })

    it('client certificate from the CA is accepted and its CN is visible', async () => {
      const r = await handshake(mtlsOpts(), { ...pin, ca: ca.cert, servername: 'localhost', cert: client.cert, key: client.key })
      expect(r.clientError).toBeUndefined()
      expect(r.clientOk).toBe(true)
      expect(r.serverAuthorized).toBe(true)
      expect(r.serverCn).toBe('conduit-01')
    })

    it('client certificate from another CA is refused', async () => {
      const r = await handshake(mtlsOpts(), { ...pin, ca: ca.cert, servername: 'localhost', cert: otherCaClient.cert, key: otherCaClient.key })
      expect(r.clientOk).toBe(false)
      expect(r.serverCn).toBeUndefined()
      expect(r.serverError).toBeDefined()
    })

    it('expired client certificate is refused', async () => {
      const r = await handshake(mtlsOpts(), { ...pin, ca: ca.cert, servername: 'localhost', cert: expiredClient.cert, key: expiredClient.key })
      expect(r.clientOk).toBe(false)
      expect(r.serverCn).toBeUndefined()
      expect(r.serverError).toBeDefined()
    })

    // Node's refusal above carries no reason ("socket hang up"); a lenient server shows OpenSSL's.
    it('refusals are for the right reason', async () => {
      const lenient = (): tls.TlsOptions => ({ ...mtlsOpts(), rejectUnauthorized: false })
      const base = { ...pin, ca: ca.cert, servername: 'localhost' }
      const expired = await handshake(lenient(), { ...base, cert: expiredClient.cert, key: expiredClient.key })
      expect(expired.serverAuthorized).toBe(false)
      expect(expired.serverAuthorizationError).toBe('CERT_HAS_EXPIRED')
      const foreign = await handshake(lenient(), { ...base, cert: otherCaClient.cert, key: otherCaClient.key })
      expect(foreign.serverAuthorized).toBe(false)
      expect(foreign.serverAuthorizationError).toMatch(/UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/)
    })

    it('no client certificate is refused', async () => {
      const r = await handshake(mtlsOpts(), { ...pin, ca: ca.cert, servername: 'localhost' })
      expect(r.clientOk).toBe(false)
      expect(r.serverCn).toBeUndefined()
    })
  })
}

describe('certificate files', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lorabridge-certs-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  const exists = async (f: string): Promise<boolean> => await access(f).then(() => true, () => false)

  it('ensureCertificates creates four files once, keys 0600', async () => {
    const certDir = join(dir, 'nested', 'tls')
    const first = await ensureCertificates(certDir, { hosts: ['broker.example.test', 'localhost', '10.0.0.7'] })
    const paths = devCertPaths(certDir)
    expect(first.paths).toEqual(paths)
    expect([...first.created].sort()).toEqual([paths.ca, paths.caKey, paths.cert, paths.key].sort())
    for (const f of first.created) expect(await exists(f)).toBe(true)
    if (process.platform !== 'win32') {
      expect((await stat(paths.key)).mode & 0o777).toBe(0o600)
      expect((await stat(paths.caKey)).mode & 0o777).toBe(0o600)
    }
    const cert = new X509Certificate(await readFile(paths.cert))
    expect(cert.checkIssued(new X509Certificate(await readFile(paths.ca)))).toBe(true)
    expect(cert.checkHost('broker.example.test')).toBe('broker.example.test')
    expect(cert.checkIP('10.0.0.7')).toBe('10.0.0.7')
    expect(cert.checkIP('::1')).toBe('::1')
    expect(cert.subjectAltName?.match(/DNS:localhost\b/g)).toHaveLength(1)
    if (/^[A-Za-z0-9.-]+$/.test(hostname())) expect(cert.checkHost(hostname())).toBeDefined()

    const second = await ensureCertificates(certDir)
    expect(second.created).toEqual([])
  })

  it('ensureCertificates reuses an existing CA for a missing server pair', async () => {
    const certDir = join(dir, 'reuse')
    const { paths } = await ensureCertificates(certDir)
    const caBefore = await readFile(paths.ca, 'utf8')
    await unlink(paths.cert)
    await unlink(paths.key)
    const again = await ensureCertificates(certDir)
    expect(again.created).toEqual([paths.cert, paths.key])
    expect(await readFile(paths.ca, 'utf8')).toBe(caBefore)
    expect(new X509Certificate(await readFile(paths.cert)).checkIssued(new X509Certificate(caBefore))).toBe(true)

    // Half a pair is an error, not a reason to replace the other half.
    await unlink(paths.key)
    await expect(ensureCertificates(certDir)).rejects.toThrow(/server\.key/)
  })

  it('writeClientCert signs with the directory CA and refuses to overwrite', async () => {
    const certDir = join(dir, 'nested', 'tls')
    const out = await writeClientCert(certDir, 'conduit-7')
    expect(out).toEqual({ cert: join(certDir, 'conduit-7.crt'), key: join(certDir, 'conduit-7.key') })
    const firstPem = await readFile(out.cert, 'utf8')
    expect(firstPem.endsWith('-----END CERTIFICATE-----\n')).toBe(true)
    const first = new X509Certificate(firstPem)
    expect(first.subject).toBe('CN=conduit-7')
    expect(first.checkIssued(new X509Certificate(await readFile(join(certDir, 'ca.crt'))))).toBe(true)
    if (process.platform !== 'win32') expect((await stat(out.key)).mode & 0o777).toBe(0o600)

    await expect(writeClientCert(certDir, 'conduit-7')).rejects.toThrow(/refusing to overwrite/)
    expect(await readFile(out.cert, 'utf8')).toBe(firstPem)

    await writeClientCert(certDir, 'conduit-7', { force: true })
    expect(new X509Certificate(await readFile(out.cert)).serialNumber).not.toBe(first.serialNumber)
  })

  it('writeClientCert rejects bad or reserved names and a missing CA', async () => {
    const certDir = join(dir, 'nested', 'tls')
    for (const bad of ['../evil', '-dash', '.hidden', '', 'a b', 'a/b']) {
      await expect(writeClientCert(certDir, bad)).rejects.toThrow(/not allowed/)
    }
    await expect(writeClientCert(certDir, 'ca', { force: true })).rejects.toThrow(/reserved/)
    await expect(writeClientCert(join(dir, 'empty'), 'conduit-1')).rejects.toThrow(/no CA/)
    expect(await exists(join(dir, 'empty'))).toBe(false)
  })
})
