/**
 * End to end with the ThingPark simulator (issue must-show 4 and 5): uplink → normalized `up` →
 * a `down` request → the simulated LRC receives a correctly signed request → its sent report →
 * `down/sent` with the request's id; an LRC answering 503 then 200, 400, or not at all; and pending
 * retries surviving a SIGKILL when Redis is configured.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { startDaemonProcess, type DaemonProcess } from './helpers/cli.js'
import { freePort, startRedis, type RedisServer } from './helpers/redis-server.js'
import mqtt from 'mqtt'
import { collect, connect, observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'
import { correlationIdFor } from '../src/thingpark/downlink.js'
import { schemaViolations } from './helpers/event-schemas.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const DEV = '0018B20000000B20'
const DEV_TOPIC = 'lorabridge/farm/devices/0018b20000000b20'

function config (lrcPort: number, downlink: Record<string, number>): Record<string, unknown> {
  return {
    applications: [{ name: 'farm', match: { thingpark: ['tp-eu'] } }],
    mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
    thingpark: {
      connections: [{ name: 'tp-eu', path: '/thingpark/tp-eu', asId: AS_ID, asKeyEnv: 'TP_EU_KEY', downlinkUrl: `http://127.0.0.1:${lrcPort}/thingpark/lrc/rest/downlink`, downlinkValiditySeconds: 600 }],
      downlink: downlink,
    },
  }
}

describe('ThingPark simulator against lorabridge', () => {
  let t: TestDaemon
  let sim: ThingParkSimulator
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let fCnt = 1

  const events = (suffix: string): Array<Record<string, unknown>> => seen.filter(m => m.topic === `${DEV_TOPIC}/${suffix}`).map(m => JSON.parse(m.payload) as Record<string, unknown>)
  const outcome = (suffix: string, id: string): Promise<Record<string, unknown>> => until(() => events(suffix).find(e => e.id === id), `${suffix} for ${id}`, 10_000)

  beforeAll(async () => {
    const lrcPort = await freePort()
    t = await startTestDaemon(config(lrcPort, { maxAttempts: 4, initialBackoffMs: 20, maxBackoffMs: 100, timeoutMs: 2000 }), { env: { TP_EU_KEY: KEY } })
    sim = new ThingParkSimulator({ asUrl: `http://127.0.0.1:${t.port('http')}/thingpark/tp-eu`, asId: AS_ID, asKey: KEY })
    await sim.startLrc({ port: lrcPort, sentReportDelayMs: 20 })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    // The device's route: an uplink through this connection.
    expect((await sim.uplink({ devEui: DEV, fPort: 2, fCntUp: fCnt++, payloadHex: '0102' })).status).toBe(204)
    await until(() => events('up').length === 1 || undefined, 'first uplink')
  })
  afterAll(async () => {
    await observer?.endAsync(true)
    await sim?.stop()
    await t?.stop()
  })

  for (const contentType of ['json', 'json-untyped', 'xml'] as const) {
    it(`uplink as ${contentType} → a normalized up`, async () => {
      const fc = fCnt++
      expect((await sim.uplink({ devEui: DEV, fPort: 3, fCntUp: fc, payloadHex: 'cafe' }, { contentType })).status).toBe(204)
      expect(await until(() => events('up').find(e => e.fCnt === fc), 'uplink')).toMatchObject({ app: 'farm', devEui: '0018b20000000b20', fPort: 3, hex: 'cafe', network: { type: 'thingpark', connection: 'tp-eu', asId: AS_ID } })
    })
  }

  it('down request → a correctly signed LRC request → down/queued → the sent report → down/sent with the request\'s id', async () => {
    const lrcBefore = sim.lrcRequests.length
    await observer.publishAsync(`${DEV_TOPIC}/down`, JSON.stringify({ id: 'req-1', fPort: 5, hex: 'a1b2c3', confirmed: true, flush: true }), { qos: 1 })
    expect(await outcome('down/queued', 'req-1')).toMatchObject({ app: 'farm', devEui: '0018b20000000b20', network: { type: 'thingpark', connection: 'tp-eu' } })
    const req = sim.lrcRequests[lrcBefore]!
    expect(req.tokenValid).toBe(true)
    expect(req.timeOk).toBe(true)
    expect(req.status).toBe(200)
    expect(req.params).toMatchObject({ DevEUI: DEV, FPort: '5', Payload: 'a1b2c3', Confirmed: '1', FlushDownlinkQueue: '1', AS_ID, CorrelationID: correlationIdFor('req-1') })
    expect(Date.parse(req.params.ValidityTime!) - Date.now()).toBeGreaterThan(500_000)
    expect(Object.keys(req.params).slice(-2)).toEqual(['CorrelationID', 'Token'])
    expect(await outcome('down/sent', 'req-1')).toMatchObject({ app: 'farm', devEui: '0018b20000000b20', command: 'down', transmissionSlot: 1 })
  })

  it('retries an LRC answering 503 three times, then 200: one down/queued', async () => {
    const before = await t.counter('downlinkRetries', { connection: 'tp-eu' })
    sim.lrcScript.push({ status: 503, body: '<html><body>Service unavailable</body></html>' }, { status: 503 }, { status: 503 })
    await observer.publishAsync(`${DEV_TOPIC}/down`, '{"id":"req-503","fPort":1,"hex":"00"}', { qos: 1 })
    await outcome('down/queued', 'req-503')
    expect(await t.counter('downlinkRetries', { connection: 'tp-eu' })).toBe(before + 3)
    expect(sim.lrcRequests.filter(r => r.params.CorrelationID === correlationIdFor('req-503')).map(r => r.status)).toEqual([503, 503, 503, 200])
    await sleep(100)
    expect(events('down/queued').filter(e => e.id === 'req-503').length).toBe(1)
    expect(events('down/failed').filter(e => e.id === 'req-503')).toEqual([])
  })

  it('does not retry an LRC answering 400: one down/failed carrying the LRC\'s text', async () => {
    sim.lrcScript.push({ status: 400, body: '<html><body>Invalid FPort</body></html>' })
    await observer.publishAsync(`${DEV_TOPIC}/down`, '{"id":"req-400","fPort":1,"hex":"00"}', { qos: 1 })
    expect(await outcome('down/failed', 'req-400')).toMatchObject({ reason: 'lrc-refused', detail: '400: Invalid FPort' })
    await sleep(100)
    expect(sim.lrcRequests.filter(r => r.params.CorrelationID === correlationIdFor('req-400')).length).toBe(1)
    expect(events('down/queued').filter(e => e.id === 'req-400')).toEqual([])
  })

  it('gives up on an unreachable LRC after maxAttempts: down/failed', async () => {
    await sim.stop() // the LRC is gone
    await observer.publishAsync(`${DEV_TOPIC}/down`, '{"id":"req-gone","fPort":1,"hex":"00"}', { qos: 1 })
    expect(await outcome('down/failed', 'req-gone')).toMatchObject({ reason: 'network-error', detail: expect.stringMatching(/^4 attempts; last: ECONNREFUSED/) as unknown })
  })

  it('every message it saw matches its schema (docs/schemas/)', () => {
    expect(schemaViolations(seen)).toEqual([])
  })
})

describe('pending ThingPark downlinks with Redis', () => {
  let redis: RedisServer
  let dir: string
  let daemon: DaemonProcess | undefined
  let sim: ThingParkSimulator | undefined

  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => {
    await daemon?.kill('SIGKILL')
    await sim?.stop()
    await redis?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('survive a SIGKILL of the daemon and are sent after the restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-tp-'))
    const lrcPort = await freePort()
    await writeFile(join(dir, 'lorabridge.yaml'), stringify({
      ...config(lrcPort, { maxAttempts: 50, initialBackoffMs: 200, maxBackoffMs: 300, timeoutMs: 2000 }),
      redis: { url: redis.url },
      http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }] },
    }))
    const env = { TP_EU_KEY: KEY }
    daemon = await startDaemonProcess([], { cwd: dir, env })
    const asUrl = (): string => `http://127.0.0.1:${daemon!.port('http')}/thingpark/tp-eu`
    sim = new ThingParkSimulator({ asUrl: asUrl(), asId: AS_ID, asKey: KEY })
    await sim.startLrc({ port: lrcPort, sentReportDelayMs: -1 })
    sim.lrcScript.push(...Array.from({ length: 1000 }, () => ({ status: 503 })))
    expect((await sim.uplink({ devEui: DEV, fPort: 2, fCntUp: 1, payloadHex: '01' })).status).toBe(204)
    // A consumer with a persistent session, as an application would have: what is published while
    // it is away (here: while the daemon restarts) waits for it in Redis.
    const consumer = { clientId: 'tp-consumer', clean: false }
    const first = await connect(`mqtt://127.0.0.1:${daemon.port('mqtt')}`, consumer)
    await first.subscribeAsync(`${DEV_TOPIC}/down/+`, { qos: 1 })
    await first.publishAsync(`${DEV_TOPIC}/down`, '{"id":"survivor","fPort":1,"hex":"5a"}', { qos: 1 })
    await until(() => sim!.lrcRequests.length >= 2 || undefined, 'two refused attempts')
    await first.endAsync(true)

    expect((await daemon.kill('SIGKILL')).signal).toBe('SIGKILL')
    sim.lrcScript.length = 0 // the LRC is back
    const attemptsBefore = sim.lrcRequests.length
    daemon = await startDaemonProcess([], { cwd: dir, env })
    const after = mqtt.connect(`mqtt://127.0.0.1:${daemon.port('mqtt')}`, { ...consumer, reconnectPeriod: 0 })
    const got = collect(after)
    const queued = await until(() => got.find(m => m.topic === `${DEV_TOPIC}/down/queued`), 'down/queued after the restart', 15_000)
    expect(JSON.parse(queued.payload)).toMatchObject({ id: 'survivor', app: 'farm' })
    const sent = sim.lrcRequests.slice(attemptsBefore)
    expect(sent.map(r => [r.status, r.params.Payload, r.tokenValid])).toEqual([[200, '5a', true]])
    expect(daemon.lines.some(l => l.msg === 'resuming a pending ThingPark downlink' && l.id === 'survivor')).toBe(true)
    await after.endAsync(true)
  })
})
