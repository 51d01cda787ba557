/**
 * Weakness: Redis is a trust boundary (sessions, queued downlinks, retained messages, the cluster's
 * pub/sub all live there), but the daemon had no tested way to authenticate to it or to reach it
 * over TLS with files, and a wrong password only left it unready, retrying forever.
 * Against a real redis-server with `requirepass`:
 *  - a wrong password fails start-up with LB_ERR_REDIS_AUTH (no silent retry loop), and the password
 *    appears in no log line;
 *  - the right one works for the broker persistence, the pub/sub emitter and lorabridge's own keys
 *    (a retained message and a round trip through Redis);
 *  - rediss:// with `redis.tls` file paths (CA, client certificate and key) against a redis-server
 *    that requires client certificates.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { connect, nextMessage } from '../helpers/mqtt.js'
import { createCa, createClientCert, createServerCert } from '../../src/tls/certs.js'

const PASSWORD = 'redis-S3cret-pw'
const LISTENERS = { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] }

async function readyz (t: TestDaemon): Promise<{ ready: boolean, checks: Record<string, boolean> }> {
  return await (await fetch(`http://127.0.0.1:${t.port('http')}/readyz`)).json() as { ready: boolean, checks: Record<string, boolean> }
}

/** A retained message and a live one, both through Redis (persistence and pub/sub). */
async function exchange (t: TestDaemon): Promise<void> {
  const url = `mqtt://127.0.0.1:${t.port('mqtt')}`
  const pub = await connect(url)
  await pub.publishAsync('lorabridge/default/devices/0011223344556677/status', 'kept', { qos: 1, retain: true })
  const sub = await connect(url)
  const retained = nextMessage(sub, 'lorabridge/default/devices/0011223344556677/status')
  await sub.subscribeAsync('lorabridge/default/devices/#', { qos: 1 })
  expect((await retained).payload.toString()).toBe('kept')
  const live = nextMessage(sub, 'lorabridge/default/devices/0011223344556677/up')
  await pub.publishAsync('lorabridge/default/devices/0011223344556677/up', 'live', { qos: 1 })
  expect((await live).payload.toString()).toBe('live')
  await Promise.all([pub.endAsync(), sub.endAsync()])
}

async function until (probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await probe()) return true
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return false
}

describe('Redis with a password', () => {
  let redis: RedisServer

  beforeAll(async () => { redis = await startRedis({ args: ['--requirepass', PASSWORD] }) })
  afterAll(async () => { await redis?.stop() })

  it('a wrong password fails start-up with LB_ERR_REDIS_AUTH, and the password is not logged', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lorabridge-redis-auth-'))
    try {
      const started = startTestDaemon({ redis: { url: `redis://:wrong-${PASSWORD}@127.0.0.1:${redis.port}` }, mqtt: LISTENERS }, { dir })
      const outcome = await Promise.race([
        started.then(async t => { await t.stop(); return 'started' }, (err: Error & { code?: string }) => err),
        new Promise(resolve => setTimeout(() => resolve('still starting after 10 s'), 10_000)),
      ])
      expect(outcome).toMatchObject({ code: 'LB_ERR_REDIS_AUTH' })
      expect((outcome as Error).message).not.toContain(PASSWORD)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)

  it('the right password works for persistence, pub/sub and state; the password reaches no log line', async () => {
    const t = await startTestDaemon({ redis: { url: `redis://:${PASSWORD}@127.0.0.1:${redis.port}` }, mqtt: LISTENERS })
    try {
      expect(await until(async () => (await readyz(t)).ready)).toBe(true)
      await exchange(t)
      const inspector = new Redis({ port: redis.port, host: '127.0.0.1', password: PASSWORD })
      expect((await inspector.keys('*')).length).toBeGreaterThan(0)
      await inspector.quit()
      // Cut the connections (CLIENT KILL): the outage and recovery lines must not carry the URL's password.
      const admin = new Redis({ port: redis.port, host: '127.0.0.1', password: PASSWORD })
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
      await admin.quit()
      expect(await until(async () => t.logs.lines.some(l => l.msg === 'redis connection restored'))).toBe(true)
      expect(JSON.stringify(t.logs.lines)).not.toContain(PASSWORD)
    } finally {
      await t.stop()
    }
  })
})

describe('Redis over TLS with files (rediss://, client certificates required)', () => {
  let redis: RedisServer
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-redis-tls-'))
    const ca = await createCa({ commonName: 'redis test CA' })
    const server = await createServerCert(ca, { hosts: ['localhost', '127.0.0.1'] })
    const client = await createClientCert(ca, { commonName: 'lorabridge' })
    await Promise.all([
      writeFile(join(dir, 'ca.pem'), ca.cert),
      writeFile(join(dir, 'redis.pem'), server.cert), writeFile(join(dir, 'redis.key'), server.key),
      writeFile(join(dir, 'client.pem'), client.cert), writeFile(join(dir, 'client.key'), client.key),
    ])
    redis = await startRedis({
      tls: true,
      args: ['--requirepass', PASSWORD, '--tls-cert-file', join(dir, 'redis.pem'), '--tls-key-file', join(dir, 'redis.key'),
        '--tls-ca-cert-file', join(dir, 'ca.pem'), '--tls-auth-clients', 'yes'],
    })
  })
  afterAll(async () => {
    await redis?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('connects with redis.tls file paths and a password, and the broker works through it', async () => {
    const t = await startTestDaemon({
      redis: {
        url: `rediss://:${PASSWORD}@localhost:${redis.tlsPort!}`,
        tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key') },
      },
      mqtt: LISTENERS,
    })
    try {
      expect(await until(async () => (await readyz(t)).ready)).toBe(true)
      await exchange(t)
      expect(JSON.stringify(t.logs.lines)).not.toContain(PASSWORD)
    } finally {
      await t.stop()
    }
  })
})
