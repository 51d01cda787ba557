/**
 * Deduplication that never drops a new frame (issue 13): a device that restarts its frame counter
 * (a reset, a rejoin, an ABP device) and repeats a payload sends new frames, published again; the
 * copies of one frame — a Conduit's retained re-send, a QoS 1 redelivery, a second Conduit,
 * ThingPark posting one report twice — are still published once. Copies are told from repeats by
 * the network server's receive time. Over MQTT and ThingPark in memory, and the shared Redis
 * implementation against a real redis-server.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { connect, observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'
import { RedisDeduplicator } from '../src/store/cluster-state.js'
import { MemoryDeduplicator, type Deduplicator } from '../src/core/dedup.js'
import { createRedisConnection, closeRedis } from '../src/store/redis.js'
import { createLogger } from '../src/log.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const MINUTE = 60_000

describe('deduplication in a running daemon', () => {
  let t: TestDaemon
  let url: string
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  const sims: ConduitSimulator[] = []
  let tp: ThingParkSimulator

  const ups = (devEui: string): Array<{ fCnt: number, time: string }> => seen
    .filter(m => m.topic.endsWith(`/devices/${devEui}/up`))
    .map(m => JSON.parse(m.payload) as { fCnt: number, time: string })
  const conduit = async (gw: string, device: number): Promise<ConduitSimulator> => {
    const sim = new ConduitSimulator({ url, version: '1.1', gwUuid: gw, gatewayEuis: [`00-80-00-00-d0-00-${gw.slice(0, 2)}-ff`], devices: [generatedDevice(device)] })
    sims.push(sim)
    await sim.start()
    return sim
  }

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKey: KEY, downlinkUrl: 'http://127.0.0.1:9/unused' }] },
      log: { level: 'debug' },
    })
    url = `mqtt://127.0.0.1:${t.port('mqtt')}`
    ;({ client: observer, seen } = await observe(url))
    tp = new ThingParkSimulator({ asUrl: `http://127.0.0.1:${t.port('http')}/tp`, asId: AS_ID, asKey: KEY })
  })
  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await tp?.stop()
    await observer?.endAsync(true)
    await t?.stop()
  })

  it('publishes a reset device\'s repeated frame (same counter and payload, received a minute later) again', async () => {
    const sim = await conduit('a1000000-6156-cdd4-4523-264b523115c1', 6001)
    const dev = sim.devices[0]!
    const devEui = dev.devEui.replace(/-/g, '')
    const t0 = new Date(Date.now() - 2 * MINUTE)
    await sim.uplink(0, { data: Buffer.from('0102', 'hex'), time: t0 })
    await sim.uplink(0, { data: Buffer.from('0103', 'hex'), time: new Date(t0.getTime() + 10_000) })
    // The device resets: its counter starts again at 0, with the same first payload.
    dev.fCnt = 0
    await sim.uplink(0, { data: Buffer.from('0102', 'hex'), time: new Date(t0.getTime() + MINUTE) })
    await until(() => ups(devEui).length === 3 || undefined, 'three uplinks, the repeat included')
    expect(ups(devEui).map(u => u.fCnt)).toEqual([0, 1, 0])
  })

  it('publishes once a frame heard by two Conduits, and once its retained re-send and redelivery', async () => {
    const a = await conduit('a2000000-6156-cdd4-4523-264b523115c1', 6002)
    const b = await conduit('b2000000-6156-cdd4-4523-264b523115c1', 6002)
    const devEui = a.devices[0]!.devEui.replace(/-/g, '')
    const at = new Date()
    const dupsBefore = await t.counter('duplicates', { network: 'multitech', kind: 'up' })
    await a.uplink(0, { data: Buffer.from('aa', 'hex'), time: at })
    await b.uplink(0, { data: Buffer.from('aa', 'hex'), time: new Date(at.getTime() + 150) })
    // The same message again, byte for byte, as app-connect's retained re-send and a QoS 1
    // redelivery bring it, later (the receive time is the message's own).
    const msg = a.serializeUplink({ ...a.buildUplink({ ...a.devices[0]!, fCnt: 0 }, { data: Buffer.from('aa', 'hex'), time: at }) })
    const raw = await connect(url, { clientId: 'replayer' })
    await sleep(300)
    await raw.publishAsync(a.upTopic(a.devices[0]!), msg, { qos: 1, retain: true })
    await raw.publishAsync(a.upTopic(a.devices[0]!), msg, { qos: 1, dup: true } as never)
    await raw.endAsync()
    await until(async () => await t.counter('duplicates', { network: 'multitech', kind: 'up' }) >= dupsBefore + 3 || undefined, 'three duplicates counted')
    await sleep(200)
    expect(ups(devEui)).toHaveLength(1)
    expect(t.logs.lines.some(l => l.msg === 'duplicate of a frame already published; not published again' && l.devEui === devEui)).toBe(true)
  })

  it('over ThingPark: one report posted twice is published once; the same counter and payload a minute later again', async () => {
    const dev = '0018B20000000D01'
    const at = new Date(Date.now() - 2 * MINUTE)
    expect((await tp.uplink({ devEui: dev, fPort: 2, fCntUp: 0, payloadHex: '0102', time: at })).status).toBe(204)
    expect((await tp.uplink({ devEui: dev, fPort: 2, fCntUp: 0, payloadHex: '0102', time: at })).status).toBe(204)
    expect((await tp.uplink({ devEui: dev, fPort: 2, fCntUp: 0, payloadHex: '0102', time: new Date(at.getTime() + MINUTE) })).status).toBe(204)
    await until(() => ups(dev.toLowerCase()).length === 2 || undefined, 'two uplinks')
    await sleep(200)
    expect(ups(dev.toLowerCase())).toHaveLength(2)
  })
})

describe.each(['memory', 'redis'] as const)('the %s deduplicator', kind => {
  let redis: RedisServer | undefined
  let conn: ReturnType<typeof createRedisConnection> | undefined
  let dedup: Deduplicator

  beforeAll(async () => {
    if (kind === 'memory') { dedup = new MemoryDeduplicator(300_000, undefined, Date.now, 10_000); return }
    redis = await startRedis()
    conn = createRedisConnection({ url: redis.url, keyPrefix: '' }, 'test', createLogger('silent'))
    dedup = new RedisDeduplicator(conn, 'test:', 300_000, 10_000)
  })
  afterAll(async () => {
    dedup?.close()
    if (conn !== undefined) await closeRedis(conn)
    await redis?.stop()
  })

  it('tells copies (same time, within the spread) from repeats (later), and keys without a time by the window', async () => {
    const t0 = 1_700_000_000_000
    expect(await dedup.firstSighting('up:f1', t0)).toBe(true)
    expect(await dedup.firstSighting('up:f1', t0)).toBe(false) // a replay of the same message
    expect(await dedup.firstSighting('up:f1', t0 + 4_000)).toBe(false) // another gateway's copy
    expect(await dedup.firstSighting('up:f1', t0 + 60_000)).toBe(true) // a new frame repeating it
    expect(await dedup.firstSighting('up:f1', t0 + 60_000)).toBe(false) // …and its own replay
    expect(await dedup.firstSighting('sent:x')).toBe(true)
    expect(await dedup.firstSighting('sent:x')).toBe(false)
    expect(await dedup.firstSighting('sent:x', t0)).toBe(false)
  })
  it.runIf(kind === 'redis')('answers a re-sent sighting (its reply lost to a Redis crash) as the first, and every other as a duplicate', async () => {
    const r = dedup as RedisDeduplicator
    const t0 = 1_700_000_100_000
    // What ioredis does after a reconnect: the same script, with the same token, once more.
    expect(await r.sight('up:f2', t0, 'instance-a:7')).toBe(true)
    expect(await r.sight('up:f2', t0, 'instance-a:7')).toBe(true)
    expect(await r.sight('up:f2', t0, 'instance-a:8')).toBe(false)
    expect(await r.sight('up:f2', t0, 'instance-b:7')).toBe(false)
    expect(await r.sight('sent:y', undefined, 'instance-a:9')).toBe(true)
    expect(await r.sight('sent:y', undefined, 'instance-a:9')).toBe(true)
    expect(await dedup.firstSighting('sent:y')).toBe(false)
  })
})
