/**
 * Authentication over mqtts and wss against a real daemon: users made with `lorabridge users add`,
 * client certificates made with `lorabridge certs client` (must-show 2, 3 and the wss half of 4).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { runCli } from './helpers/cli.js'
import { connect, connackCode } from './helpers/mqtt.js'
import { createCa, createClientCert } from '../src/tls/certs.js'

const GW_UUID = '029998e0-6156-cdd4-4523-264b523115c1'
const CONDUIT_CLIENT_ID = `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW_UUID}`

async function users (t: TestDaemon, ...args: string[]): Promise<void> {
  const r = await runCli(['-c', t.configFile, 'users', ...args])
  expect(r.code, r.stderr).toBe(0)
}

describe.each(['optional', 'required'] as const)('mqtts with client certificates %s', mode => {
  let t: TestDaemon
  let ca: Buffer

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'mqtts', host: '127.0.0.1', port: 0 }, { protocol: 'wss', host: '127.0.0.1', port: 0, path: '/mqtt' }],
        tls: { clientCertificates: mode },
      },
    })
    ca = await readFile(join(t.dataDir, 'ca.crt'))
    await users(t, 'add', 'conduit-1', '--role', 'gateway', '--gateway', GW_UUID, '--password', 's3cret-pass')
    expect((await runCli(['-c', t.configFile, 'certs', 'client', 'conduit-2'])).code).toBe(0)
    await users(t, 'add', 'conduit-2', '--role', 'gateway', '--gateway', GW_UUID)
    expect((await runCli(['-c', t.configFile, 'certs', 'client', 'nobody'])).code).toBe(0)
  })
  afterAll(async () => { await t?.stop() })

  const tlsOpts = async (name?: string) => name === undefined
    ? { ca }
    : { ca, cert: await readFile(join(t.dataDir, `${name}.crt`)), key: await readFile(join(t.dataDir, `${name}.key`)) }

  if (mode === 'optional') {
    it('accepts the right password with a Conduit-style client id (slash, > 23 characters)', async () => {
      const client = await connect(`mqtts://localhost:${t.port('mqtts')}`, { ...await tlsOpts(), clientId: CONDUIT_CLIENT_ID, clean: false, username: 'conduit-1', password: 's3cret-pass' })
      expect(client.connected).toBe(true)
      await client.endAsync()
    })

    it('refuses a wrong password and an unknown user with CONNACK 4, and counts them', async () => {
      const before = await t.counter('authFailures', { code: 'LB_ERR_AUTH_BAD_CREDENTIALS' })
      expect(await connackCode(`mqtts://localhost:${t.port('mqtts')}`, { ...await tlsOpts(), username: 'conduit-1', password: 'wrong' })).toBe(4)
      expect(await connackCode(`mqtts://localhost:${t.port('mqtts')}`, { ...await tlsOpts(), username: 'ghost', password: 's3cret-pass' })).toBe(4)
      expect(await t.counter('authFailures', { code: 'LB_ERR_AUTH_BAD_CREDENTIALS' })).toBe(before + 2)
    })

    it('refuses no credentials with CONNACK 5 (anonymous is off on mqtts)', async () => {
      expect(await connackCode(`mqtts://localhost:${t.port('mqtts')}`, await tlsOpts())).toBe(5)
    })

    it('connects a wss client at /mqtt with username and password', async () => {
      const client = await connect(`wss://localhost:${t.port('wss')}/mqtt`, { ...await tlsOpts(), username: 'conduit-1', password: 's3cret-pass' })
      expect(client.connected).toBe(true)
      await client.endAsync()
    })

    it('picks up a password changed with `users add` while running', async () => {
      await users(t, 'add', 'conduit-1', '--role', 'gateway', '--gateway', GW_UUID, '--password', 'rotated-pass')
      await new Promise(resolve => setTimeout(resolve, 1100))
      expect(await connackCode(`mqtts://localhost:${t.port('mqtts')}`, { ...await tlsOpts(), username: 'conduit-1', password: 's3cret-pass' })).toBe(4)
      expect(await connackCode(`mqtts://localhost:${t.port('mqtts')}`, { ...await tlsOpts(), username: 'conduit-1', password: 'rotated-pass' })).toBe(0)
      await users(t, 'add', 'conduit-1', '--role', 'gateway', '--gateway', GW_UUID, '--password', 's3cret-pass')
      await new Promise(resolve => setTimeout(resolve, 1100))
    })
  }

  it('accepts a client certificate from `certs client` and maps it to the user of that name', async () => {
    const client = await connect(`mqtts://localhost:${t.port('mqtts')}`, { ...await tlsOpts('conduit-2'), clientId: 'cert-client' })
    expect(client.connected).toBe(true)
    await client.endAsync()
    const line = t.logs.find(l => l.msg === 'client authenticated' && l.clientId === 'cert-client')
    expect(line).toMatchObject({ user: 'conduit-2', role: 'gateway', via: 'certificate' })
  })

  it('accepts a certificate together with the same user name (both together)', async () => {
    const client = await connect(`wss://localhost:${t.port('wss')}/mqtt`, { ...await tlsOpts('conduit-2'), clientId: 'cert-and-name', username: 'conduit-2' })
    expect(client.connected).toBe(true)
    await client.endAsync()
    expect(t.logs.find(l => l.clientId === 'cert-and-name')).toMatchObject({ user: 'conduit-2', via: 'certificate' })
  })

  it('refuses a certificate whose name has no user (CONNACK 5)', async () => {
    expect(await connackCode(`mqtts://localhost:${t.port('mqtts')}`, await tlsOpts('nobody'))).toBe(5)
  })

  it('connects a client limited to TLS 1.2', async () => {
    const client = await connect(`mqtts://localhost:${t.port('mqtts')}`, { ...await tlsOpts('conduit-2'), minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', clientId: 'tls12' })
    const cipher = (client.stream as import('node:tls').TLSSocket).getProtocol()
    expect(cipher).toBe('TLSv1.2')
    await client.endAsync()
  })

  it('refuses a certificate from another CA and an expired one, and counts them', async () => {
    const otherCa = await createCa({ commonName: 'some other CA' })
    const foreign = await createClientCert(otherCa, { commonName: 'conduit-2' })
    const ourCa = { cert: ca.toString(), key: await readFile(join(t.dataDir, 'ca.key'), 'utf8') }
    const expired = await createClientCert(ourCa, { commonName: 'conduit-2', notBefore: new Date(Date.now() - 2 * 86400_000), notAfter: new Date(Date.now() - 86400_000) })
    const before = await t.counter('tlsFailures', { code: 'LB_ERR_TLS_CLIENT_CERT' })
    for (const pair of [foreign, expired]) {
      for (const [url, maxVersion] of [[`mqtts://localhost:${t.port('mqtts')}`, 'TLSv1.2'], [`mqtts://localhost:${t.port('mqtts')}`, 'TLSv1.3'], [`wss://localhost:${t.port('wss')}/mqtt`, 'TLSv1.3']] as const) {
        const outcome = await connackCode(url, { ca, cert: pair.cert, key: pair.key, maxVersion })
        expect(outcome, `${url} ${maxVersion}`).not.toBe(0)
      }
    }
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(await t.counter('tlsFailures', { code: 'LB_ERR_TLS_CLIENT_CERT' })).toBeGreaterThanOrEqual(before + 6)
  })

  if (mode === 'required') {
    it('refuses a client without a certificate even with a right password', async () => {
      await users(t, 'add', 'pw-only', '--role', 'gateway', '--gateway', GW_UUID, '--password', 'pw-only-pass')
      await new Promise(resolve => setTimeout(resolve, 1100))
      expect(await connackCode(`mqtts://localhost:${t.port('mqtts')}`, { ca, username: 'pw-only', password: 'pw-only-pass' })).not.toBe(0)
    })
  }
})

describe('users file', () => {
  it('stores only salted hashes, and lists and removes users', async () => {
    const t = await startTestDaemon()
    try {
      await users(t, 'add', 'alice', '--role', 'consumer', '--apps', 'farm,city')
      const r = await runCli(['-c', t.configFile, 'users', 'add', 'bob', '--role', 'admin', '--password-stdin'], { input: 'bob-password\n' })
      expect(r.code, r.stderr).toBe(0)
      const text = await readFile(join(t.dataDir, 'users.yaml'), 'utf8')
      expect(text).not.toContain('bob-password')
      expect(text).toMatch(/passwordHash: scrypt\$16384\$8\$1\$/)
      const list = await runCli(['-c', t.configFile, 'users', 'list', '--json'])
      expect(JSON.parse(list.stdout)).toEqual([
        { name: 'alice', role: 'consumer', apps: ['farm', 'city'], downlink: false, password: false },
        { name: 'bob', role: 'admin', apps: [], downlink: false, password: true },
      ])
      await users(t, 'remove', 'alice')
      expect((await runCli(['-c', t.configFile, 'users', 'remove', 'alice'])).code).toBe(1)
      expect((await runCli(['-c', t.configFile, 'users', 'add', 'x', '--role', 'boss'])).code).not.toBe(0)
      expect((await runCli(['-c', t.configFile, 'users', 'add', 'x', '--role', 'gateway', '--gateway', 'not-a-uuid'])).code).toBe(1)
    } finally {
      await t.stop()
    }
  })

  it('keeps the last good users when the file is broken while running', async () => {
    const t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0 }] } })
    try {
      await users(t, 'add', 'carol', '--role', 'admin', '--password', 'carol-pass')
      await new Promise(resolve => setTimeout(resolve, 1100))
      const url = `mqtt://127.0.0.1:${t.port('mqtt')}`
      expect(await connackCode(url, { username: 'carol', password: 'carol-pass' })).toBe(0)
      await writeFile(join(t.dataDir, 'users.yaml'), 'users: [this is: not valid')
      await new Promise(resolve => setTimeout(resolve, 1100))
      expect(await connackCode(url, { username: 'carol', password: 'carol-pass' })).toBe(0)
      expect(t.logs.withCode('LB_ERR_USERS_FILE').length).toBeGreaterThan(0)
    } finally {
      await t.stop()
    }
  })
})
