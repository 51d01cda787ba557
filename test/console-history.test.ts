/**
 * The history behind the console's device pages (src/console/device-history.ts): its bounds
 * (uplinks and requests per device, age, devices), requests grouped with their outcomes by id,
 * one application's device never shown under another; and with a real redis-server, a history
 * that outlives the daemon: a second daemon on the same Redis shows the first one's uplinks and
 * downlink outcomes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, until, type MqttClient } from './helpers/mqtt.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { writeUsers } from './security/console-helpers.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { MemoryDeviceHistory, RedisDeviceHistory, type DeviceHistoryStore, type HistoryLimits } from '../src/console/device-history.js'
import { createLogger } from '../src/log.js'

const FARM_APPEUI = '16-ea-76-f6-ab-66-3d-80'
const LIMITS: HistoryLimits = { uplinks: 3, downlinks: 2, maxAgeMs: 3_600_000, devices: 2 }
const DEV_A = '00000000000000aa'
const DEV_B = '00000000000000bb'
const DEV_C = '00000000000000cc'

const up = (devEui: string, fCnt: number, at: number): [string, unknown] => [`lorabridge/farm/devices/${devEui}/up`, { id: `u${fCnt}`, app: 'farm', devEui, fCnt, fPort: 2, hex: '01', receivedAt: new Date(at).toISOString(), gateways: [{ id: 'gw', rssi: -80, snr: 7 }] }]
const outcome = (devEui: string, kind: string, id: string, at: number, extra: Record<string, unknown> = {}): [string, unknown] => [`lorabridge/farm/devices/${devEui}/${kind}`, { id, app: 'farm', devEui, receivedAt: new Date(at).toISOString(), ...extra }]

/** The same checks on either store: `now` moves the clock both the store and the events use. */
async function checkBounds (store: DeviceHistoryStore, clock: { now: number }): Promise<void> {
  const take = ([topic, body]: [string, unknown]): void => { store.take(topic, body, true) }
  const t0 = clock.now
  for (let i = 0; i < 5; i++) take(up(DEV_A, i, t0 + i * 1000))
  // Three requests: the oldest falls out of the two kept; each keeps its outcomes, in order.
  for (const [i, id] of ['r1', 'r2', 'r3'].entries()) {
    clock.now = t0 + 10_000 + i * 1000
    take([`lorabridge/farm/devices/${DEV_A}/down`, { id, fPort: 3, hex: '0a' }])
    take(outcome(DEV_A, 'down/queued', id, clock.now + 100))
  }
  take(outcome(DEV_A, 'down/failed', 'r3', t0 + 13_000, { reason: 'not-acknowledged', detail: '<b>x</b>' }))
  await store.flush()
  const a = await store.read('farm', DEV_A)
  expect(a?.uplinks.map(u => u.fCnt)).toEqual([4, 3, 2])
  expect(a?.uplinks[0]).toMatchObject({ fPort: 2, hex: '01', gateways: [{ id: 'gw', rssi: -80, snr: 7 }] })
  expect(a?.downlinks.map(d => [d.id, d.state, d.outcomes.map(o => o.kind)])).toEqual([
    ['r3', 'failed', ['down/queued', 'down/failed']],
    ['r2', 'queued', ['down/queued']],
  ])
  expect(a?.downlinks[0]?.request).toMatchObject({ fPort: 3, hex: '0a' })
  expect(a?.downlinks[0]?.outcomes[1]).toMatchObject({ reason: 'not-acknowledged', detail: '<b>x</b>' })
  // Another application's name shows nothing of it.
  expect(await store.read('city', DEV_A)).toBeUndefined()

  // The device bound: a third device makes the least recently heard one go.
  clock.now = t0 + 20_000
  take(up(DEV_B, 1, clock.now))
  clock.now = t0 + 21_000
  take(up(DEV_A, 5, clock.now))
  for (let i = 0; i < 70; i++) take(up(DEV_C, i, t0 + 22_000 + i))
  await store.flush()
  expect(await store.read('farm', DEV_B)).toBeUndefined()
  expect((await store.read('farm', DEV_A))?.uplinks.map(u => u.fCnt)).toEqual([5, 4, 3])
  expect((await store.read('farm', DEV_C))?.uplinks.length).toBe(3)

  // The age bound: an hour later, nothing is shown.
  clock.now = t0 + 22_000 + LIMITS.maxAgeMs + 1000
  expect(await store.read('farm', DEV_A)).toBeUndefined()
}

describe('device history', () => {
  it('in memory: bounded per device, by age and by devices; requests grouped with their outcomes', async () => {
    const clock = { now: Date.parse('2026-06-01T10:00:00Z') }
    await checkBounds(new MemoryDeviceHistory('lorabridge', LIMITS, () => clock.now), clock)
  })

  it('keeps only what it needs of hostile or huge messages', async () => {
    const h = new MemoryDeviceHistory('lorabridge', { ...LIMITS, uplinks: 10 })
    h.take(`lorabridge/farm/devices/${DEV_A}/up`, { id: 'x', hex: 'ab'.repeat(5000), decoded: { blob: 'x'.repeat(10_000) }, gateways: Array.from({ length: 50 }, (_, i) => ({ id: `g${i}`, rssi: 'loud' })), decodeErrors: ['e'.repeat(5000), 3] }, true)
    h.take(`lorabridge/farm/devices/${DEV_A}/up`, 'not an object', true)
    h.take(`lorabridge/farm/devices/${DEV_A}/down`, [{ id: 'a', fPort: 1, data: 'AQI=' }, 'junk', { fPort: 2, hex: '03' }], true)
    h.take('lorabridge/gateways/x/status', { online: true }, true)
    const read = await h.read('farm', DEV_A)
    expect(read?.uplinks).toHaveLength(1)
    const u = read!.uplinks[0]!
    expect(u.hex).toHaveLength(1024)
    expect(u.decoded).toBeUndefined()
    expect(u.decodedTooLarge).toBe(true)
    expect(u.gateways).toHaveLength(8)
    expect(u.gateways[0]).toEqual({ id: 'g0' })
    expect(u.decodeErrors).toEqual(['e'.repeat(512)])
    expect(read?.downlinks.map(d => [d.id, d.request?.hex])).toEqual(expect.arrayContaining([['a', '0102'], ['(no id)', '03']]))
  })

  describe('in Redis', () => {
    let redis: RedisServer
    let client: Redis
    beforeAll(async () => {
      redis = await startRedis()
      client = new Redis(redis.url)
    })
    afterAll(async () => {
      client?.disconnect()
      await redis?.stop()
    })

    it('the same bounds, with the keys expiring with the window', async () => {
      const clock = { now: Date.now() }
      const store = new RedisDeviceHistory('lorabridge', LIMITS, client, 'test:', createLogger('silent'), () => clock.now)
      await checkBounds(store, clock)
      const keys = await client.keys('test:console:history:*')
      expect(keys.length).toBeGreaterThan(0)
      for (const k of keys) expect(await client.pttl(k)).toBeGreaterThan(0)
    })

    it('a daemon restarted on the same Redis, and another instance of the cluster, show the uplinks and downlink outcomes seen before', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'lorabridge-console-history-'))
      await writeUsers(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
      const config = {
        applications: [{ name: 'farm', match: { appEui: [FARM_APPEUI] } }],
        mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
        redis: { url: redis.url, keyPrefix: 'restart:' },
        http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }], console: { history: { uplinks: 3 } } },
      }
      const session = async (t: TestDaemon): Promise<(path: string, body?: unknown) => Promise<Response>> => {
        const base = `http://127.0.0.1:${t.port('http')}`
        const login = await fetch(`${base}/console/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'root', password: 'admin-secret' }) })
        const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!
        return (path, body) => fetch(`${base}${path}`, body === undefined ? { headers: { cookie } } : { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      }
      let t: TestDaemon | undefined
      let sim: ConduitSimulator | undefined
      let observer: MqttClient | undefined
      try {
        t = await startTestDaemon(config, { dir })
        observer = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`)
        const seen: string[] = []
        observer.on('message', (topic, payload) => { seen.push(`${topic} ${payload.toString()}`) })
        await observer.subscribeAsync('lorabridge/#', { qos: 1 })
        sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', devices: [generatedDevice(80, FARM_APPEUI)] })
        await sim.start()
        const devEui = sim.devices[0]!.devEui.replace(/-/g, '')
        for (let i = 0; i < 5; i++) await sim.uplink(0, { port: 2, data: Buffer.from([i]) })
        await until(() => seen.filter(s => s.startsWith(`lorabridge/farm/devices/${devEui}/up `)).length === 5, 'five uplinks', 10_000)
        const api = await session(t)
        const sent = await api(`/console/api/devices/farm/${devEui}/down`, { fPort: 4, hex: 'c0ffee' })
        expect(sent.status).toBe(202)
        const { id } = await sent.json() as { id: string }
        await until(() => seen.some(s => s.startsWith(`lorabridge/farm/devices/${devEui}/down/queued `) && s.includes(id)), 'the outcome', 10_000)
        const before = await (await api(`/console/api/devices/farm/${devEui}`)).json() as { uplinks: Array<{ fCnt: number, hex: string }>, downlinks: Array<{ id: string, state: string }>, window: { store: string } }
        expect(before.window.store).toBe('redis')
        expect(before.uplinks.map(u => u.hex)).toEqual(['04', '03', '02'])
        expect(before.downlinks).toMatchObject([{ id, state: 'queued', request: { fPort: 4, hex: 'c0ffee' } }])

        await sim.stop()
        sim = undefined
        await observer.endAsync(true)
        observer = undefined
        await t.stop()
        // A new daemon, nothing heard yet: the device page shows the same history.
        t = await startTestDaemon(config, { dir })
        const after = await (await (await session(t))(`/console/api/devices/farm/${devEui}`)).json() as typeof before
        expect(after.uplinks).toEqual(before.uplinks)
        expect(after.downlinks).toEqual(before.downlinks)

        // A second instance of the cluster, on the same Redis, shows it too; and what reaches the
        // first one from now on (an uplink through its Conduit) shows on the second, written once.
        const dirB = await mkdtemp(join(tmpdir(), 'lorabridge-console-history-b-'))
        await writeUsers(join(dirB, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
        const second = await startTestDaemon(config, { dir: dirB })
        try {
          sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', devices: [{ ...generatedDevice(80, FARM_APPEUI), fCnt: 5 }] })
          await sim.start()
          await sim.uplink(0, { port: 2, data: Buffer.from([5]) })
          const apiB = await session(second)
          await until(async () => ((await (await apiB(`/console/api/devices/farm/${devEui}`)).json()) as typeof before).uplinks[0]?.hex === '05', 'the new uplink on the other instance', 10_000)
          const onB = await (await apiB(`/console/api/devices/farm/${devEui}`)).json() as typeof before
          expect(onB.uplinks.map(u => u.hex)).toEqual(['05', '04', '03'])
          expect(onB.downlinks).toEqual(before.downlinks)
          expect(await client.zcard(`restart:lorabridge:console:history:{farm/${devEui}}:up`)).toBe(3)
        } finally {
          await sim?.stop().catch(() => {})
          sim = undefined
          await second.stop()
          await rm(dirB, { recursive: true, force: true })
        }
      } finally {
        await sim?.stop().catch(() => {})
        await observer?.endAsync(true).catch(() => {})
        await t?.stop()
        await rm(dir, { recursive: true, force: true })
      }
    })
  })
})
