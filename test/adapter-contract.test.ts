/**
 * The adapter contract (docs/architecture.md "The adapter contract"), one suite over the three
 * NetworkAdapters, as MQTT.js runs one client suite over every transport. Each adapter is driven
 * through a small driver with the same interface, by the project's own simulators:
 *
 * - `multitech-mqtt`: a ConduitSimulator over MQTT (app-connect 1.1), plus a raw mqtt.js client
 *   for what the simulator has no call for (the same JSON published again, malformed JSON);
 * - `multitech-http`: a ConduitSimulator in app-connect's HTTP mode, plus raw POSTs of the same
 *   kind (the same body again, a non-JSON body);
 * - `thingpark`: a ThingParkSimulator posting signed reports, and the simulated LRC (startLrc) as
 *   the downlink side.
 *
 * The same checks run for each: one report gives one event; a duplicate is acknowledged but gives
 * none; with the store (a real redis-server) down nothing is acknowledged, and the resend after it
 * heals is published once; a downlink reaches the device's network server and ends in exactly one
 * outcome; bad input gives a stable code, a counter, and the daemon goes on.
 *
 * Everything is observed as a user would: a real MQTT subscriber on `lorabridge/+/devices/+/up`
 * (and the outcome topics), acknowledgements (PUBACK, HTTP status), `GET /metrics`, log lines.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { randomBytes, randomUUID } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { connect, collect, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice, type ReceivedDownlink, type SimDevice } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'
import { parseExposition, type Sample } from './helpers/metrics.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const TP_PATH = '/thingpark/tp-eu'
const APP = 'default'
const BARRIER = 'contract-barrier/'
/** Generous: the machine may be shared; these bound waits, they are not what is checked. */
const WAIT_MS = 15_000
/** How long a report sent while Redis is down may go without any answer (a refusal is immediate). */
const OUTAGE_ANSWER_MS = 10_000

// ------------------------------------------------------------------------------------ helpers


/** GET /metrics, read as a Prometheus scraper reads it. */
async function scrape (t: TestDaemon): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${t.port('http')}/metrics`)
  expect(res.status).toBe(200)
  return parseExposition(await res.text())
}

/** The sum of a family's samples whose labels include `labels`, from a fresh scrape. */
async function metric (t: TestDaemon, name: string, labels: Record<string, string>): Promise<number> {
  return (await scrape(t)).filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0)
}

async function readyz (t: TestDaemon): Promise<number> {
  return (await fetch(`http://127.0.0.1:${t.port('http')}/readyz`)).status
}

/** One POST on a connection of its own: the status and body, or a rejection when the connection ends without an answer. */
function post (url: string, body: string | Buffer, contentType = 'application/json'): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')
    const req = httpRequest(url, { method: 'POST', agent: false, headers: { 'content-type': contentType, 'content-length': String(payload.length) } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** The promise's value if it settles within `ms`, else undefined (it keeps running). */
async function within<T> (p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<undefined>(resolve => { timer = setTimeout(() => resolve(undefined), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

const bare = (dashed: string): string => dashed.replace(/-/g, '').toLowerCase()
const freshHex = (): string => randomBytes(4).toString('hex')

interface Outcome { kind: string, event: Record<string, unknown> }

/** An application's view: a real mqtt.js subscriber on the normalized uplinks and the downlink outcomes. */
class Observer {
  private constructor (readonly client: MqttClient, readonly seen: Array<{ topic: string, payload: string }>) {}

  static async open (url: string, clientId: string): Promise<Observer> {
    const client = await connect(url, { clientId })
    const seen = collect(client)
    await client.subscribeAsync(['lorabridge/+/devices/+/up', 'lorabridge/+/devices/+/down/+', `${BARRIER}#`], { qos: 1 })
    return new Observer(client, seen)
  }

  /** Normalized uplinks of one device for one frame counter. */
  ups (devEui: string, fCnt: number): Array<Record<string, unknown>> {
    return this.seen
      .filter(m => /^lorabridge\/[^/]+\/devices\/[^/]+\/up$/.test(m.topic))
      .map(m => JSON.parse(m.payload) as Record<string, unknown>)
      .filter(e => e.devEui === devEui && e.fCnt === fCnt)
  }

  /** Every outcome (down/queued, down/failed, down/sent) published for a request id. */
  outcomes (id: string): Outcome[] {
    return this.seen
      .map(m => ({ m, kind: /^lorabridge\/[^/]+\/devices\/[^/]+\/(down\/[a-z]+)$/.exec(m.topic)?.[1] }))
      .filter((x): x is { m: { topic: string, payload: string }, kind: string } => x.kind !== undefined)
      .map(({ m, kind }) => ({ kind, event: JSON.parse(m.payload) as Record<string, unknown> }))
      .filter(o => o.event.id === id)
  }

  /**
   * A message of the observer's own, published and heard back: what the broker dispatched to it
   * before has been delivered. Repeated until heard (after a Redis restart the broker's
   * subscriptions come back a moment after readiness).
   */
  async barrier (): Promise<void> {
    const end = Date.now() + WAIT_MS
    for (;;) {
      const topic = BARRIER + randomUUID()
      await this.client.publishAsync(topic, 'b', { qos: 1 })
      const heard = await until(() => this.seen.some(m => m.topic === topic), 'the barrier', 1000).then(() => true, () => false)
      if (heard) return
      if (Date.now() > end) throw new Error('the observer does not hear its own publications')
    }
  }

  /** A little time for anything late, then everything dispatched so far is delivered. */
  async settle (): Promise<void> {
    await sleep(300)
    await this.barrier()
  }

  async close (): Promise<void> {
    await this.client.endAsync(true)
  }
}

// ------------------------------------------------------------------------------------ drivers

/** How the network server was answered: acknowledged (PUBACK, HTTP 2xx) or not. */
interface Ack { acknowledged: boolean, status?: number, error?: string }

/** One frame as sent: enough for the checks; the driver keeps what it needs to send it again. */
interface Frame { fCnt: number, hex: string }

interface Received { devEui: string, fPort: number, hex: string }

interface Driver {
  readonly adapter: 'multitech-mqtt' | 'multitech-http' | 'thingpark'
  readonly network: 'multitech' | 'thingpark'
  /** The device, as normalized events spell it (16 lower-case hex digits). */
  readonly devEui: string
  /** A device of this network never heard: no route. */
  readonly stranger: string
  /** The stable code of `badInput()`. */
  readonly badInputCode: string
  /** What the network server gets during a store outage: no answer at all (undefined), or this status. */
  readonly outageStatus: number | undefined
  /** A new frame from the device, sent as its network server sends it. */
  report (hex: string): Promise<{ frame: Frame, ack: Ack }>
  /** The same frame again, as that network server would resend it. */
  repeat (frame: Frame): Promise<Ack>
  /** A malformed message on the adapter's input; what was answered, when the input answers. */
  badInput (): Promise<{ status?: number, error?: string }>
  /** The network server asks for its downlinks (HTTP Conduits poll); a no-op where they are pushed. */
  fetchDownlinks (): Promise<void>
  /** Downlinks the device's network server received (the Conduit, the LRC: only signed requests). */
  received (): Received[]
  stop (): Promise<void>
}

interface Env {
  t: TestDaemon
  observer: Observer
  /** The LRC the daemon's ThingPark connection posts downlinks to. */
  lrc?: ThingParkSimulator
}

interface DriverSpec {
  adapter: Driver['adapter']
  make: (env: Env, slot: number) => Promise<Driver>
}

/** The exact body of each uplink the simulated Conduit sends (also of one never answered), by frame counter. */
function captureBodies (sim: ConduitSimulator): Map<number, string> {
  const bodies = new Map<number, string>()
  const serialize = sim.serializeUplink.bind(sim)
  sim.serializeUplink = msg => {
    const body = serialize(msg)
    bodies.set(Number(msg.fcnt), body)
    return body
  }
  return bodies
}

const received = (d: ReceivedDownlink): Received => ({ devEui: bare(d.devEui), fPort: Number(d.payload.port), hex: d.data.toString('hex') })

/** app-connect 1.1 over MQTT: the simulated Conduit, and a raw client on the Conduit's topics. */
async function mqttDriver (env: Env, slot: number): Promise<Driver> {
  const url = `mqtt://127.0.0.1:${env.t.port('mqtt')}`
  const dev: SimDevice = generatedDevice(700 + slot)
  const sim = new ConduitSimulator({ url, version: '1.1', devices: [dev] })
  await sim.start()
  const got: ReceivedDownlink[] = []
  sim.on('downlink', (d: ReceivedDownlink) => { got.push(d) })
  const bodies = captureBodies(sim)
  let raw: MqttClient | undefined
  const rawClient = async (): Promise<MqttClient> => {
    if (raw?.connected !== true) {
      await raw?.endAsync(true)
      raw = await connect(url, { clientId: `${sim.clientId}-raw` })
    }
    return raw
  }
  return {
    adapter: 'multitech-mqtt',
    network: 'multitech',
    devEui: bare(dev.devEui),
    stranger: bare(generatedDevice(790 + slot).devEui),
    badInputCode: 'LB_ERR_APPCONNECT_JSON',
    outageStatus: undefined,
    async report (hex) {
      // A Conduit whose connection was closed reconnects before it sends (the simulator would queue it offline).
      if (!sim.isConnected) await sim.reconnect()
      const fCnt = sim.devices[0]!.fCnt
      try {
        await sim.uplink(0, { port: 2, data: Buffer.from(hex, 'hex') }) // resolves on PUBACK
        return { frame: { fCnt, hex }, ack: { acknowledged: true } }
      } catch (err) {
        return { frame: { fCnt, hex }, ack: { acknowledged: false, error: (err as Error).message } }
      }
    },
    async repeat (frame) {
      const body = bodies.get(frame.fCnt)
      if (body === undefined) throw new Error(`frame ${frame.fCnt} was not sent`)
      const c = await rawClient()
      try {
        await c.publishAsync(sim.upTopic(sim.devices[0]!), body, { qos: 1, retain: true })
        return { acknowledged: true }
      } catch (err) {
        return { acknowledged: false, error: (err as Error).message }
      }
    },
    async badInput () {
      const c = await rawClient()
      await c.publishAsync(sim.upTopic(sim.devices[0]!), '{', { qos: 1, retain: true })
      return {}
    },
    async fetchDownlinks () {},
    received: () => got.map(received),
    async stop () {
      await raw?.endAsync(true)
      await sim.stop()
    },
  }
}

/** app-connect 1.1 in HTTP mode: the simulated Conduit, and raw POSTs on its paths. */
async function httpDriver (env: Env, slot: number): Promise<Driver> {
  const base = `http://127.0.0.1:${env.t.port('http')}`
  const dev: SimDevice = generatedDevice(740 + slot)
  // The test polls (pollDownlinks) rather than the Conduit's timer; a failed POST is retried after 50 ms.
  const sim = new ConduitSimulator({ url: base, version: '1.1', devices: [dev], httpPollIntervalMs: 3_600_000, httpRetryDelayMs: 50 })
  await sim.start()
  const got: ReceivedDownlink[] = []
  sim.on('downlink', (d: ReceivedDownlink) => { got.push(d) })
  const upUrl = `${base}/api/v1/lorawan/${dev.appEui}/${dev.devEui}/up`
  const bodies = captureBodies(sim)
  return {
    adapter: 'multitech-http',
    network: 'multitech',
    devEui: bare(dev.devEui),
    stranger: bare(generatedDevice(795 + slot).devEui),
    badInputCode: 'LB_ERR_APPCONNECT_JSON',
    outageStatus: undefined,
    async report (hex) {
      const fCnt = sim.devices[0]!.fCnt
      try {
        // The simulator tries three times and resolves once answered: app-connect takes any answer as
        // delivered (§3) and does not expose the status, so here "acknowledged" means "answered"
        // (repeat() posts itself and checks for 2xx; checks 1 and 5 check the event itself).
        await sim.uplink(0, { port: 2, data: Buffer.from(hex, 'hex') })
        return { frame: { fCnt, hex }, ack: { acknowledged: true } }
      } catch (err) {
        return { frame: { fCnt, hex }, ack: { acknowledged: false, error: (err as Error).message } }
      }
    },
    async repeat (frame) {
      const body = bodies.get(frame.fCnt)
      if (body === undefined) throw new Error(`frame ${frame.fCnt} was not sent`)
      try {
        const res = await post(upUrl, body)
        return { acknowledged: res.status >= 200 && res.status < 300, status: res.status }
      } catch (err) {
        return { acknowledged: false, error: (err as Error).message }
      }
    },
    async badInput () {
      const res = await post(upUrl, 'not json {')
      return { status: res.status, error: (JSON.parse(res.text) as { error?: string }).error }
    },
    async fetchDownlinks () {
      await sim.pollDownlinks()
      await sleep(50) // a Conduit polls every downlink_query_interval, not in a busy loop
    },
    received: () => got.map(received),
    async stop () { await sim.stop() },
  }
}

/** ThingPark: signed DevEUI_uplink reports from the simulator; downlinks as the simulated LRC records them. */
async function thingparkDriver (env: Env, slot: number): Promise<Driver> {
  const asUrl = `http://127.0.0.1:${env.t.port('http')}${TP_PATH}`
  const sim = new ThingParkSimulator({ asUrl, asId: AS_ID, asKey: KEY })
  const devEui = `0018b20000c0${(0x10 + slot).toString(16).padStart(4, '0')}`
  const reports = new Map<number, Record<string, unknown>>()
  let fCnt = 1
  const send = async (report: Record<string, unknown>): Promise<Ack> => {
    // Each post is signed again: a fresh query Time, so a fresh Token (§2).
    const res = await sim.post('DevEUI_uplink', report)
    return { acknowledged: res.status >= 200 && res.status < 300, status: res.status }
  }
  return {
    adapter: 'thingpark',
    network: 'thingpark',
    devEui,
    stranger: `0018b20000c0ff${slot.toString(16).padStart(2, '0')}`,
    badInputCode: 'LB_ERR_THINGPARK_BODY',
    outageStatus: 503,
    async report (hex) {
      const frame = { fCnt: fCnt++, hex }
      const report = sim.buildUplink({ devEui, fPort: 2, fCntUp: frame.fCnt, payloadHex: hex })
      reports.set(frame.fCnt, report)
      return { frame, ack: await send(report) }
    },
    async repeat (frame) {
      const report = reports.get(frame.fCnt)
      if (report === undefined) throw new Error(`frame ${frame.fCnt} was not sent`)
      return send(report)
    },
    async badInput () {
      // Correctly signed (for a report it does not carry): the body is not JSON.
      const res = await sim.uplink({ devEui, fPort: 2, fCntUp: 999, payloadHex: '00' }, { rawBody: '{"DevEUI_uplink": {' })
      return { status: res.status, error: (JSON.parse(res.body) as { error?: string }).error }
    },
    async fetchDownlinks () {},
    received: () => (env.lrc?.lrcRequests ?? [])
      .filter(r => r.status === 200 && r.tokenValid && r.timeOk)
      .map(r => ({ devEui: (r.params.DevEUI ?? '').toLowerCase(), fPort: Number(r.params.FPort), hex: (r.params.Payload ?? '').toLowerCase() })),
    async stop () { await sim.stop() },
  }
}

const DRIVERS: DriverSpec[] = [
  { adapter: 'multitech-mqtt', make: mqttDriver },
  { adapter: 'multitech-http', make: httpDriver },
  { adapter: 'thingpark', make: thingparkDriver },
]

// ------------------------------------------------------------------------------------ daemons

function daemonConfig (downlinkUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
    thingpark: {
      connections: [{ name: 'tp-eu', path: TP_PATH, asId: AS_ID, asKey: KEY, downlinkUrl }],
      downlink: { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 100, timeoutMs: 2000 },
    },
    ...extra,
  }
}

/** The events of one frame, once at least one came and anything late had its chance. */
async function eventsOf (observer: Observer, d: Driver, frame: Frame): Promise<Array<Record<string, unknown>>> {
  await until(() => observer.ups(d.devEui, frame.fCnt).length > 0, `the uplink event of ${d.adapter} frame ${frame.fCnt}`, WAIT_MS)
  await observer.settle()
  return observer.ups(d.devEui, frame.fCnt)
}

describe('the NetworkAdapter contract', () => {
  /** In-memory stores: checks 1, 2, 4, 5. */
  const mem: Partial<Env> = {}
  /** On a real redis-server the test starts and stops: check 3. */
  const red: Partial<Env> = {}
  let redis: RedisServer | undefined
  const drivers: Driver[] = []

  beforeAll(async () => {
    // The LRC first, so that the daemon is configured with its real address.
    mem.lrc = new ThingParkSimulator({ asUrl: 'http://127.0.0.1:9/unused', asId: AS_ID, asKey: KEY })
    const lrcUrl = await mem.lrc.startLrc({ sentReportDelayMs: -1 }) // no DevEUI_downlink_Sent: down/queued is the last word
    mem.t = await startTestDaemon(daemonConfig(lrcUrl))
    mem.observer = await Observer.open(`mqtt://127.0.0.1:${mem.t.port('mqtt')}`, 'contract-observer')

    redis = await startRedis()
    red.t = await startTestDaemon(daemonConfig('http://127.0.0.1:9/unused', { redis: { url: redis.url } }))
    red.observer = await Observer.open(`mqtt://127.0.0.1:${red.t.port('mqtt')}`, 'contract-observer-redis')
  })

  afterAll(async () => {
    for (const d of drivers) await d.stop().catch(() => {})
    await mem.observer?.close().catch(() => {})
    await red.observer?.close().catch(() => {})
    await mem.t?.stop()
    await red.t?.stop()
    await mem.lrc?.stop()
    await redis?.stop()
  })

  describe.each(DRIVERS)('$adapter', ({ adapter, make }) => {
    let d: Driver
    let env: Env
    const slot = DRIVERS.findIndex(s => s.adapter === adapter)

    beforeAll(async () => {
      env = mem as Env
      d = await make(env, slot)
      drivers.push(d)
    })

    it('1. one report gives one event', async () => {
      const hex = freshHex()
      const { frame, ack } = await d.report(hex)
      expect(ack.acknowledged, ack.error).toBe(true)
      const events = await eventsOf(env.observer, d, frame)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ app: APP, devEui: d.devEui, fCnt: frame.fCnt, fPort: 2, hex, network: { type: d.network } })
    })

    it('2. a duplicate gives none, and is counted', async () => {
      const { frame, ack } = await d.report(freshHex())
      expect(ack.acknowledged, ack.error).toBe(true)
      expect(await eventsOf(env.observer, d, frame)).toHaveLength(1)
      const labels = { network: d.network, kind: 'up' }
      const before = await metric(env.t, 'lorabridge_duplicates_total', labels)

      const again = await d.repeat(frame)
      expect(again.acknowledged, again.error).toBe(true)
      await env.observer.settle()
      expect(env.observer.ups(d.devEui, frame.fCnt)).toHaveLength(1)
      expect(await metric(env.t, 'lorabridge_duplicates_total', labels)).toBe(before + 1)
    })

    it('3. a store outage means nothing is acknowledged; the resend after it is published once', async () => {
      const r = red as Env
      const rd = await make(r, slot + 10)
      drivers.push(rd)
      // The device works on this daemon.
      const warm = await rd.report(freshHex())
      expect(warm.ack.acknowledged, warm.ack.error).toBe(true)
      expect(await eventsOf(r.observer, rd, warm.frame)).toHaveLength(1)

      // Redis crashes; one report while it is down. Its answer, if one comes while it is down.
      let pending: Promise<{ frame: Frame, ack: Ack }> | undefined
      let during: { frame: Frame, ack: Ack } | undefined
      await redis!.kill()
      try {
        await until(async () => (await readyz(r.t)) === 503, 'not ready while Redis is down', WAIT_MS)
        pending = rd.report(freshHex())
        during = await within(pending, OUTAGE_ANSWER_MS)
      } finally {
        await redis!.restart()
        await until(async () => (await readyz(r.t)) === 200, 'ready again', WAIT_MS)
      }
      expect(during, `${adapter}: while Redis was down the report got no answer at all within ${OUTAGE_ANSWER_MS / 1000} s: neither acknowledged nor refused (the contract: ${rd.outageStatus === undefined ? 'the connection is closed without an answer' : `status ${rd.outageStatus}`})`).toBeDefined()
      if (during !== undefined) {
        expect(during.ack.acknowledged, `${adapter}: acknowledged while Redis was down`).toBe(false)
        expect(during.ack.status).toBe(rd.outageStatus)
      }
      const { frame } = during ?? await pending!

      // The network server sends it again once the store is back: published exactly once.
      await r.observer.barrier()
      const again = await rd.repeat(frame)
      expect(again.acknowledged, again.error).toBe(true)
      const events = await eventsOf(r.observer, rd, frame)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ devEui: rd.devEui, fCnt: frame.fCnt, hex: frame.hex })
    })

    it('4. a downlink gives exactly one outcome', async () => {
      // A route: the device's uplink.
      const { frame, ack } = await d.report(freshHex())
      expect(ack.acknowledged, ack.error).toBe(true)
      await eventsOf(env.observer, d, frame)

      const id = `dl-${adapter}-${randomUUID()}`
      const hex = freshHex()
      await env.observer.client.publishAsync(`lorabridge/${APP}/devices/${d.devEui}/down`, JSON.stringify({ id, fPort: 5, hex }), { qos: 1 })
      const delivered = await until(async () => {
        await d.fetchDownlinks()
        return d.received().find(r => r.hex === hex)
      }, `${adapter}: the downlink at the network server`, WAIT_MS)
      expect(delivered).toEqual({ devEui: d.devEui, fPort: 5, hex })
      await until(() => env.observer.outcomes(id).length > 0, `an outcome for ${id}`, WAIT_MS)
      await d.fetchDownlinks() // a later fetch must not hand it over again
      await env.observer.settle()
      expect(env.observer.outcomes(id).map(o => o.kind)).toEqual(['down/queued'])
      expect(env.observer.outcomes(id)[0]!.event).toMatchObject({ id, app: APP, devEui: d.devEui, command: 'down', network: { type: d.network } })
      expect(d.received().filter(r => r.hex === hex)).toHaveLength(1)
    })

    it('4b. a downlink for a device with no route gives one down/failed no-route', async () => {
      const id = `nowhere-${adapter}-${randomUUID()}`
      await env.observer.client.publishAsync(`lorabridge/${APP}/devices/${d.stranger}/down`, JSON.stringify({ id, fPort: 5, hex: '00' }), { qos: 1 })
      await until(() => env.observer.outcomes(id).length > 0, `an outcome for ${id}`, WAIT_MS)
      await env.observer.settle()
      expect(env.observer.outcomes(id).map(o => o.kind)).toEqual(['down/failed'])
      expect(env.observer.outcomes(id)[0]!.event).toMatchObject({ id, devEui: d.stranger, reason: 'no-route' })
    })

    it('5. bad input gives a stable code and a counter, and the next good report is handled', async () => {
      const labels = { network: d.network, code: d.badInputCode }
      const before = await metric(env.t, 'lorabridge_ingest_errors_total', labels)
      const logsFrom = env.t.logs.lines.length
      const answer = await d.badInput()
      if (answer.status !== undefined) {
        expect(answer.status).toBe(400)
        expect(answer.error).toBe(d.badInputCode)
      }
      await until(async () => (await metric(env.t, 'lorabridge_ingest_errors_total', labels)) === before + 1, `${d.badInputCode} counted`, WAIT_MS)
      expect(env.t.logs.lines.slice(logsFrom).filter(l => l.code === d.badInputCode)).toHaveLength(1)

      const { frame, ack } = await d.report(freshHex())
      expect(ack.acknowledged, ack.error).toBe(true)
      expect(await eventsOf(env.observer, d, frame)).toHaveLength(1)
      expect(await metric(env.t, 'lorabridge_ingest_errors_total', labels)).toBe(before + 1)
    })
  })
})
