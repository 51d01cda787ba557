/**
 * Weakness: a certificate's identity was its CN alone. Three attacks, each against a real daemon
 * with real TLS:
 *  1. A revoked client certificate still connects (no CRL support). With `mqtt.tls.crl` it is
 *     refused in the handshake's aftermath (LB_ERR_TLS_CLIENT_CERT, counted); a CRL changed while
 *     running takes effect without a restart.
 *  2. `users remove NAME` then `users add NAME` re-enabled NAME's old certificates. Now `certs
 *     client` / `users add --cert|--fingerprint` record the certificate's SHA-256 for the name, only
 *     recorded certificates authenticate it, and `users remove` drops them.
 *  3. Another valid certificate from the same CA with the same CN is refused for a pinned user.
 * Legitimate clients keep connecting and exchanging messages throughout.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { runCli } from '../helpers/cli.js'
import { connect, connackCode, nextMessage } from '../helpers/mqtt.js'
import { makeCrl, serialOf } from '../helpers/crl.js'
import { createCa, createClientCert, createServerCert, type PemPair } from '../../src/tls/certs.js'
import { writeUsersFile, type User } from '../../src/auth/users-file.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** A round trip through the broker: the client can still subscribe and receive. */
async function roundTrip (url: string, opts: Record<string, unknown>, sender: { url: string, opts: Record<string, unknown> }): Promise<void> {
  const client = await connect(url, opts)
  try {
    await client.subscribeAsync('lorabridge/default/devices/+/up', { qos: 1 })
    const got = nextMessage(client, 'lorabridge/default/devices/0011223344556677/up')
    const pub = await connect(sender.url, sender.opts)
    await pub.publishAsync('lorabridge/default/devices/0011223344556677/up', 'hello', { qos: 1 })
    await pub.endAsync()
    expect((await got).payload.toString()).toBe('hello')
  } finally {
    await client.endAsync()
  }
}

describe('CRL: a revoked client certificate is refused', () => {
  let t: TestDaemon
  let ca: PemPair
  let alice: PemPair
  let bob: PemPair
  let crlFile: string
  const url = (): string => `mqtts://localhost:${t.port('mqtts')}`

  beforeAll(async () => {
    ca = await createCa({ commonName: 'revocation test CA' })
    const server = await createServerCert(ca, { hosts: ['localhost', '127.0.0.1'] })
    ;[alice, bob] = await Promise.all([createClientCert(ca, { commonName: 'alice' }), createClientCert(ca, { commonName: 'bob' })])
    const dir = await mkdtemp(join(tmpdir(), 'lorabridge-crl-'))
    crlFile = join(dir, 'revoked.crl')
    await Promise.all([
      writeFile(join(dir, 'ca.pem'), ca.cert),
      writeFile(join(dir, 'server.pem'), server.cert),
      writeFile(join(dir, 'server-key.pem'), server.key),
      writeFile(crlFile, await makeCrl(ca, [serialOf(alice.cert)])),
    ])
    const users = new Map<string, User>([
      ['alice', { name: 'alice', role: 'admin', apps: ['*'], downlink: true }],
      ['bob', { name: 'bob', role: 'admin', apps: ['*'], downlink: true }],
    ])
    t = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }, { protocol: 'mqtts', host: '127.0.0.1', port: 0 }],
        tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem'), crl: crlFile },
      },
    }, { dir })
    await writeUsersFile(join(t.dataDir, 'users.yaml'), users)
    await sleep(1100)
  })
  afterAll(async () => {
    await t?.stop()
    if (t !== undefined) await rm(t.dir, { recursive: true, force: true })
  })

  const tlsFor = (pair: PemPair) => ({ ca: ca.cert, cert: pair.cert, key: pair.key })

  it('refuses the revoked certificate over TLS 1.2 and 1.3, logs LB_ERR_TLS_CLIENT_CERT and counts it', async () => {
    const before = await t.counter('tlsFailures', { code: 'LB_ERR_TLS_CLIENT_CERT', protocol: 'mqtts' })
    expect(await connackCode(url(), { ...tlsFor(alice), maxVersion: 'TLSv1.2' })).not.toBe(0)
    expect(await connackCode(url(), { ...tlsFor(alice), maxVersion: 'TLSv1.3' })).not.toBe(0)
    await sleep(100)
    expect(await t.counter('tlsFailures', { code: 'LB_ERR_TLS_CLIENT_CERT', protocol: 'mqtts' })).toBe(before + 2)
    expect(t.logs.withCode('LB_ERR_TLS_CLIENT_CERT').some(l => /REVOKED/i.test(String(l.reason)))).toBe(true)
  })

  it('accepts a certificate the CRL does not name, which keeps exchanging messages', async () => {
    await roundTrip(url(), { ...tlsFor(bob), maxVersion: 'TLSv1.2' }, { url: `mqtt://127.0.0.1:${t.port('mqtt')}`, opts: {} })
  })

  it('re-reads the CRL when it changes: a newly revoked certificate is refused without a restart', async () => {
    await writeFile(crlFile, await makeCrl(ca, [serialOf(alice.cert), serialOf(bob.cert)]))
    let code: number | string = 0
    for (let i = 0; i < 50 && code === 0; i++) {
      await sleep(200)
      code = await connackCode(url(), tlsFor(bob))
    }
    expect(code).not.toBe(0)
    expect(t.logs.find(l => l.msg === 'CRL reloaded')).toBeDefined()
    // Put bob back: the CRL can also un-revoke (certificateHold lifted).
    await writeFile(crlFile, await makeCrl(ca, [serialOf(alice.cert)]))
    for (let i = 0; i < 50 && code !== 0; i++) {
      await sleep(200)
      code = await connackCode(url(), tlsFor(bob))
    }
    expect(code).toBe(0)
  })
})

describe('pinning: only the certificates recorded for a user authenticate it', () => {
  let t: TestDaemon
  let devCa: PemPair
  const url = (): string => `mqtts://localhost:${t.port('mqtts')}`
  const anon = (): { url: string, opts: Record<string, unknown> } => ({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, opts: {} })
  const cli = async (...args: string[]): Promise<string> => {
    const r = await runCli(['-c', t.configFile, ...args])
    expect(r.code, r.stderr).toBe(0)
    return r.stdout
  }
  const pair = async (name: string): Promise<PemPair> => ({ cert: await readFile(join(t.dataDir, `${name}.crt`), 'utf8'), key: await readFile(join(t.dataDir, `${name}.key`), 'utf8') })
  const tlsFor = (p: PemPair) => ({ ca: devCa.cert, cert: p.cert, key: p.key })
  const refusals = async (): Promise<number> => await t.counter('authFailures', { code: 'LB_ERR_AUTH_CERT_NOT_REGISTERED' })

  beforeAll(async () => {
    t = await startTestDaemon()
    devCa = { cert: await readFile(join(t.dataDir, 'ca.crt'), 'utf8'), key: await readFile(join(t.dataDir, 'ca.key'), 'utf8') }
  })
  afterAll(async () => { await t?.stop() })

  it('`certs client` records the fingerprint and serial, and `users add` after it authenticates that certificate', async () => {
    await cli('certs', 'client', 'alice')
    await cli('users', 'add', 'alice', '--role', 'consumer', '--apps', '*')
    await sleep(1100)
    const first = await pair('alice')
    const sha256 = createHash('sha256').update(new X509Certificate(first.cert).raw).digest('hex')
    const listed = JSON.parse(await cli('users', 'list', '--json')) as Array<{ name: string, certificates?: Array<{ sha256: string, serial: string }> }>
    expect(listed.find(u => u.name === 'alice')?.certificates).toEqual([expect.objectContaining({ sha256, serial: serialOf(first.cert).toUpperCase() })])
    await roundTrip(url(), tlsFor(first), anon())
  })

  it('refuses another valid certificate from the same CA with the same CN (CONNACK 5, counted)', async () => {
    const forged = await createClientCert(devCa, { commonName: 'alice' })
    const before = await refusals()
    expect(await connackCode(url(), tlsFor(forged))).toBe(5)
    expect(await refusals()).toBe(before + 1)
    expect(t.logs.withCode('LB_ERR_AUTH_CERT_NOT_REGISTERED').length).toBeGreaterThan(0)
    await roundTrip(url(), tlsFor(await pair('alice')), anon())
  })

  it('after `users remove` and `users add` of the same name, the old certificate is refused and a newly issued one works', async () => {
    const old = await pair('alice')
    await cli('users', 'remove', 'alice')
    await cli('users', 'add', 'alice', '--role', 'consumer', '--apps', '*')
    await sleep(1100)
    const before = await refusals()
    expect(await connackCode(url(), tlsFor(old))).toBe(5)
    expect(await refusals()).toBe(before + 1)
    await cli('certs', 'client', 'alice', '--force')
    await sleep(1100)
    const fresh = await pair('alice')
    await roundTrip(url(), tlsFor(fresh), anon())
    expect(await connackCode(url(), tlsFor(old))).toBe(5)
  })

  it('without a recorded certificate, one issued before the user was added is refused and one issued after works', async () => {
    const early = await createClientCert(devCa, { commonName: 'eve', notBefore: new Date(Date.now() - 3_600_000) })
    await cli('users', 'add', 'eve', '--role', 'consumer', '--apps', '*')
    await sleep(1100)
    expect(await connackCode(url(), tlsFor(early))).toBe(5)
    const late = await createClientCert(devCa, { commonName: 'eve', notBefore: new Date() })
    await roundTrip(url(), tlsFor(late), anon())
  })

  it('`users add --cert FILE` and `--fingerprint HEX` pin certificates made elsewhere', async () => {
    const carol = await createClientCert(devCa, { commonName: 'carol', notBefore: new Date(Date.now() - 3_600_000) })
    const carolFile = join(t.dir, 'carol-elsewhere.crt')
    await writeFile(carolFile, carol.cert)
    await cli('users', 'add', 'carol', '--role', 'consumer', '--apps', '*', '--cert', carolFile)
    const dave = await createClientCert(devCa, { commonName: 'dave', notBefore: new Date(Date.now() - 3_600_000) })
    const daveSha = new X509Certificate(dave.cert).fingerprint256
    await cli('users', 'add', 'dave', '--role', 'consumer', '--apps', '*', '--fingerprint', daveSha)
    await sleep(1100)
    await roundTrip(url(), tlsFor(carol), anon())
    await roundTrip(url(), tlsFor(dave), anon())
    const otherCarol = await createClientCert(devCa, { commonName: 'carol' })
    expect(await connackCode(url(), tlsFor(otherCarol))).toBe(5)
  })
})
