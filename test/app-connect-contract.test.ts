/**
 * Contract test over every sample F1–F19 of the app-connect protocol document (issue must-show 1):
 * each, sent as a Conduit sends it, yields its documented normalized output, or a documented and
 * counted ignore. Run over MQTT (F1–F18) and over HTTP (F19, and the device samples again through
 * the HTTP paths, which must give the same events but for `network.transport`).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, collect, sleep, type MqttClient, observe } from './helpers/mqtt.js'
import * as F from './fixtures/app-connect.js'

type Outcome =
  | { up: string, body: Record<string, unknown>, exact?: boolean }
  | { join: string, body: Record<string, unknown>, exact?: boolean }
  | { presence: string, body: Record<string, unknown> }
  | { duplicate: 'up' | 'join' }
  | { ignored: string }

interface Row { sample: string, client: string, topic: string, payload: string, qos?: 0 | 1, retain?: boolean, expect: Outcome }

const V10_CLIENT = `lorawan/${F.APP_EUI}/${F.GW_V10}`
const V11_WALK_CLIENT = `lorawan/${F.CATCH_ALL}/${F.GW_WALK}`
const V111_CLIENT = `lorawan/${F.CATCH_ALL}/${F.GW_V11}`
const BACKEND = 'backend-app'
const DEV3 = '00-80-00-ff-ff-00-00-03'
const DEV5 = '00-11-00-11-00-11-00-11'
const WALK_APP = '6c-4e-ef-66-f4-79-86-a6'

const net10 = (appEui: string) => ({ type: 'multitech', transport: 'mqtt', protocol: '1.0', gateway: F.GW_ID, appEui })
const net11 = { type: 'multitech', transport: 'mqtt', protocol: '1.1', gateway: F.GW_WALK, appEui: WALK_APP }

const F3_UPLINK = {
  app: 'farm',
  devEui: '008000ffff000003',
  devAddr: '00d080cb',
  fPort: 33,
  fCnt: 1,
  confirmed: true, // mhdr 0x80: confirmed data up
  adr: true,
  data: 'dGVzdGRhdGE=',
  hex: '7465737464617461',
  time: '2023-03-04T23:14:39.522Z',
  radio: { frequency: 903.5, dataRate: 'SF9BW125', spreadingFactor: 9, bandwidthKHz: 125, codingRate: '4/5' },
  gateways: [{ id: '00-80-00-00-d0-00-01-ff', rssi: -13, snr: 9.2 }],
}
const F5_UPLINK = {
  app: 'default',
  devEui: '0011001100110011',
  devAddr: '0146cd49',
  fPort: 1,
  fCnt: 0,
  confirmed: false,
  adr: true,
  data: 'AAA=',
  hex: '0000',
  time: '2023-09-13T16:52:25.469Z',
  radio: { frequency: 921.4, dataRate: 'SF7BW125', spreadingFactor: 7, bandwidthKHz: 125, codingRate: '4/5' },
  gateways: [{ id: '00-80-00-00-00-01-b5-fc', rssi: -47, snr: 9.5 }],
}
const F6_UPLINK = { ...F5_UPLINK, fCnt: 1, data: 'AXM=', hex: '0173', time: '2023-09-13T16:52:40.760Z', radio: { ...F5_UPLINK.radio, frequency: 924.6 }, gateways: [{ id: '00-80-00-00-00-01-b5-fc', rssi: -49, snr: 11.2 }] }
const F8_JOIN = {
  app: 'farm',
  devEui: '008000ffff000003',
  joinEui: '16-ea-76-f6-ab-66-3d-80',
  appEui: F.APP_EUI,
  time: '2023-03-04T23:07:11.360Z',
  gateways: [{ id: '00-80-00-00-d0-00-01-ff' }],
}

const upTopic = (app: string, dev: string): string => `lorabridge/${app}/devices/${dev}/up`
const joinTopic = (app: string, dev: string): string => `lorabridge/${app}/devices/${dev}/join`
const statusTopic = (gw: string): string => `lorabridge/gateways/${gw}/status`

const F7_VARIANT = F.F5.replace('"fcnt":0', '"fcnt":5').replace('"seqn":0', '"seqn":5')
const F8B_VARIANT = F.F8.replace('23:07:11.360064Z', '23:09:00.000000Z')

/** In order: presence steps rely on what came before (a gateway must be online to go offline). */
const ROWS: Row[] = [
  { sample: 'F1 init v1.0', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${F.GW_V10}/init`, payload: F.F1, expect: { presence: F.GW_ID, body: { online: true, network: 'multitech', protocol: '1.0', transport: 'mqtt', gatewayEuis: ['00-80-00-00-d0-00-01-1a', '00-80-00-00-d0-00-01-ff'] } } },
  { sample: 'F1b init without versions', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${F.GW_V10}/init`, payload: F.F1b, expect: { presence: F.GW_ID, body: { online: true, protocol: '1.0', gatewayEuis: ['00-80-00-00-d0-00-01-ff'] } } },
  { sample: 'F3 up v1.0 base64 with joineui', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${DEV3}/up`, payload: F.F3, expect: { up: upTopic('farm', '008000ffff000003'), exact: true, body: { ...F3_UPLINK, network: net10(F.APP_EUI) } } },
  { sample: 'F4 up, older firmware', client: V10_CLIENT, topic: 'lorawan/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up', payload: F.F4, expect: { up: upTopic('farm', '0080000000015834'), exact: true, body: { ...F.F4_UPLINK, network: net10('16-ea-76-f6-ab-66-3d-80') } } },
  { sample: 'F4 again (retained replay)', client: V10_CLIENT, topic: 'lorawan/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up', payload: F.F4, expect: { duplicate: 'up' } },
  { sample: 'F8 joined v1.0, AppEUI topic', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${DEV3}/joined`, payload: F.F8, expect: { join: joinTopic('farm', '008000ffff000003'), exact: true, body: { ...F8_JOIN, network: net10(F.APP_EUI) } } },
  { sample: 'F8 joined v1.0, GW-UUID topic (same join)', client: V10_CLIENT, topic: `lorawan/${F.GW_V10}/${DEV3}/joined`, payload: F.F8, expect: { duplicate: 'join' } },
  { sample: 'F8b joined, empty AppEUI segment (same join)', client: V10_CLIENT, topic: `lorawan//${DEV3}/joined`, payload: F.F8, expect: { duplicate: 'join' } },
  { sample: 'F8b joined, empty AppEUI segment (a later join)', client: V10_CLIENT, topic: `lorawan//${DEV3}/joined`, payload: F8B_VARIANT, expect: { join: joinTopic('farm', '008000ffff000003'), body: { ...F8_JOIN, time: '2023-03-04T23:09:00.000Z' } } },
  { sample: 'F10 moved v1.0', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${DEV3}/moved`, payload: F.F10, expect: { ignored: 'moved' } },
  { sample: 'F12 disconnected v1.0 (will)', client: BACKEND, topic: `lorawan/${F.APP_EUI}/${F.GW_V10}/disconnected`, payload: '', retain: false, expect: { presence: F.GW_ID, body: { online: false, reason: 'will' } } },
  { sample: 'F1 init v1.0 (back online)', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${F.GW_V10}/init`, payload: F.F1, expect: { presence: F.GW_ID, body: { online: true, protocol: '1.0' } } },
  { sample: 'F11 close v1.0', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${F.GW_V10}/close`, payload: '', expect: { presence: F.GW_ID, body: { online: false, reason: 'close' } } },
  { sample: 'F14 down v1.0 by AppEUI', client: BACKEND, topic: `lorawan/${F.APP_EUI}/${DEV3}/down`, payload: '{"data":"QA=="}', retain: false, expect: { ignored: 'command' } },
  { sample: 'F14 down v1.0 by GW-EUI', client: BACKEND, topic: `lorawan/00-80-00-00-d0-00-01-ff/${DEV3}/down`, payload: '{"data":"AQ==","port":1}', retain: false, expect: { ignored: 'command' } },
  { sample: 'F14 down v1.0 by GW-UUID', client: BACKEND, topic: `lorawan/${F.GW_V10}/${DEV3}/down`, payload: '{"data":"AQ==","port":1}', retain: false, expect: { ignored: 'command' } },
  { sample: 'F15 clear v1.0', client: BACKEND, topic: `lorawan/${F.APP_EUI}/${DEV3}/clear`, payload: '{}', retain: false, expect: { ignored: 'command' } },
  { sample: 'F16 lora_req v1.0', client: BACKEND, topic: `lorawan/${F.APP_EUI}/${F.GW_V10}/lora_req`, payload: F.F16_REQ, retain: false, expect: { ignored: 'command' } },
  { sample: 'F16 lora_res v1.0', client: V10_CLIENT, topic: `lorawan/${F.APP_EUI}/${F.GW_V10}/lora_res`, payload: F.F16_RES, expect: { ignored: 'response' } },
  { sample: 'F2 init v1.1', client: V11_WALK_CLIENT, topic: `lorawan/${F.GW_WALK}/init`, payload: F.F2, expect: { presence: F.GW_WALK, body: { online: true, protocol: '1.1', transport: 'mqtt', gatewayEuis: ['00-80-00-00-00-01-b5-fc'] } } },
  { sample: 'F9 joined v1.1', client: V11_WALK_CLIENT, topic: `lorawan/${F.GW_WALK}/${WALK_APP}/${DEV5}/joined`, payload: F.F9, expect: { join: joinTopic('default', '0011001100110011'), exact: true, body: { app: 'default', devEui: '0011001100110011', joinEui: WALK_APP, appEui: WALK_APP, time: '2023-09-13T16:52:20.498Z', gateways: [{ id: '00-80-00-00-00-01-b5-fc' }], network: net11 } } },
  { sample: 'F5 up v1.1 base64', client: V11_WALK_CLIENT, topic: `lorawan/${F.GW_WALK}/${WALK_APP}/${DEV5}/up`, payload: F.F5, expect: { up: upTopic('default', '0011001100110011'), exact: true, body: { ...F5_UPLINK, network: net11 } } },
  { sample: 'F6 up v1.1 encodeHex', client: V11_WALK_CLIENT, topic: `lorawan/${F.GW_WALK}/${WALK_APP}/${DEV5}/up`, payload: F.F6, expect: { up: upTopic('default', '0011001100110011'), exact: true, body: { ...F6_UPLINK, network: net11 } } },
  { sample: 'F7 v1.1 uplink on the v1.0 topic (same frame as F5)', client: V11_WALK_CLIENT, topic: `lorawan/${WALK_APP}/${DEV5}/up`, payload: F.F5, expect: { duplicate: 'up' } },
  { sample: 'F7 v1.1 uplink on the v1.0 topic (a new frame)', client: V11_WALK_CLIENT, topic: `lorawan/${WALK_APP}/${DEV5}/up`, payload: F7_VARIANT, expect: { up: upTopic('default', '0011001100110011'), body: { fCnt: 5, network: net11 } } },
  { sample: 'F10b moved v1.1 (empty)', client: V11_WALK_CLIENT, topic: `lorawan/${F.GW_V11}/${F.APP_EUI}/${DEV3}/moved`, payload: '', expect: { ignored: 'moved' } },
  { sample: 'F2b init v1.1.1 (time without µs)', client: V111_CLIENT, topic: `lorawan/${F.GW_V11}/init`, payload: F.F2b, expect: { presence: F.GW_ID, body: { online: true, protocol: '1.1.1', gatewayEuis: ['00-80-00-00-d0-00-01-ff'] } } },
  { sample: 'F12 disconnected v1.1 (will)', client: BACKEND, topic: `lorawan/${F.GW_V11}/disconnected`, payload: '', retain: false, expect: { presence: F.GW_ID, body: { online: false, reason: 'will' } } },
  { sample: 'F13 connected 1.1.1', client: V111_CLIENT, topic: `lorawan/${F.GW_V11}/connected`, payload: '', qos: 0, retain: false, expect: { presence: F.GW_ID, body: { online: true, protocol: '1.1.1' } } },
  { sample: 'F11 close v1.1', client: V111_CLIENT, topic: `lorawan/${F.GW_V11}/close`, payload: '', expect: { presence: F.GW_ID, body: { online: false, reason: 'close' } } },
  { sample: 'F14 down v1.1', client: BACKEND, topic: `lorawan/${F.GW_V11}/down`, payload: F.F14_V11, retain: false, expect: { ignored: 'command' } },
  { sample: 'F14 down, hex mode', client: BACKEND, topic: `lorawan/${F.GW_V11}/down`, payload: '{"deveui":"00-80-00-ff-ff-00-00-03","data":"3244","port":1}', retain: false, expect: { ignored: 'command' } },
  { sample: 'F15 clear 1.1.1', client: BACKEND, topic: `lorawan/${F.GW_V11}/clear`, payload: '{"deveui":"00-80-00-ff-ff-00-00-03"}', retain: false, expect: { ignored: 'command' } },
  { sample: 'F16 lora_req v1.1', client: BACKEND, topic: `lorawan/${F.GW_V11}/lora_req`, payload: F.F16_REQ, retain: false, expect: { ignored: 'command' } },
  { sample: 'F16 lora_res v1.1', client: V111_CLIENT, topic: `lorawan/${F.GW_V11}/lora_res`, payload: F.F16_RES, expect: { ignored: 'response' } },
  { sample: 'F17 api_req v1.1', client: BACKEND, topic: `lorawan/${F.GW_V11}/api_req`, payload: F.F17_REQ, retain: false, expect: { ignored: 'command' } },
  { sample: 'F17 api_res v1.1', client: V111_CLIENT, topic: `lorawan/${F.GW_V11}/api_res`, payload: F.F17_RES, expect: { ignored: 'response' } },
  { sample: 'F18 log_req v1.1', client: BACKEND, topic: `lorawan/${F.GW_V11}/log_req`, payload: F.F18_REQ, retain: false, expect: { ignored: 'command' } },
  { sample: 'F18 log_res v1.1', client: V111_CLIENT, topic: `lorawan/${F.GW_V11}/log_res`, payload: F.F18_RES, expect: { ignored: 'response' } },
]

const CONFIG = {
  applications: [{ name: 'farm', match: { appEui: ['16-ea-76-f6-ab-66-3d-80'] } }],
  mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
}

async function until (probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!await probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

function expectEvent (got: Record<string, unknown>, body: Record<string, unknown>, exact: boolean | undefined): void {
  expect(got.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  expect(Date.parse(got.receivedAt as string)).not.toBeNaN()
  if (exact === true) expect(got).toEqual({ ...body, id: got.id, receivedAt: got.receivedAt })
  else expect(got).toMatchObject(body)
}

describe('app-connect over MQTT: samples F1–F18', () => {
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  const clients = new Map<string, MqttClient>()

  beforeAll(async () => {
    t = await startTestDaemon(CONFIG)
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await Promise.all([...clients.values(), observer].map(c => c?.endAsync(true)))
    await t?.stop()
  })

  const client = async (id: string): Promise<MqttClient> => {
    let c = clients.get(id)
    if (c === undefined) {
      c = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: id, clean: false, keepalive: 60 })
      clients.set(id, c)
    }
    return c
  }

  for (const row of ROWS) {
    it(row.sample, async () => {
      const c = await client(row.client)
      const from = seen.length
      const counter = async (): Promise<number> => 'duplicate' in row.expect
        ? t.counter('duplicates', { network: 'multitech', kind: row.expect.duplicate })
        : 'ignored' in row.expect ? t.counter('ingestIgnored', { network: 'multitech', reason: row.expect.ignored }) : 0
      const before = await counter()
      await c.publishAsync(row.topic, row.payload, { qos: row.qos ?? 1, retain: row.retain ?? true })
      const e = row.expect
      if ('up' in e || 'join' in e || 'presence' in e) {
        const topic = 'up' in e ? e.up : 'join' in e ? e.join : statusTopic(e.presence)
        await until(() => seen.slice(from).some(m => m.topic === topic), topic)
        const got = JSON.parse(seen.slice(from).find(m => m.topic === topic)!.payload) as Record<string, unknown>
        if ('presence' in e) expect(got).toMatchObject(e.body)
        else expectEvent(got, e.body, e.exact)
      } else {
        await until(async () => await counter() === before + 1, `counter for ${JSON.stringify(e)}`)
      }
      // Nothing else normalized came out of this sample.
      await sleep(30)
      const extra = seen.slice(from).filter(m => !m.topic.startsWith('lorabridge/gateways/') && !('up' in e || 'join' in e))
      expect(extra).toEqual([])
      expect(await t.counter('ingestErrors')).toBe(0)
    })
  }

  it('publishes gateway status retained, so a late subscriber sees the last one', async () => {
    const late = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'late-observer' })
    const got = collect(late)
    await late.subscribeAsync('lorabridge/gateways/+/status', { qos: 1 })
    await until(() => got.length >= 2, 'retained statuses')
    const byGw = Object.fromEntries(got.map(m => [m.topic, JSON.parse(m.payload) as Record<string, unknown>]))
    expect(byGw[statusTopic(F.GW_ID)]).toMatchObject({ online: false, reason: 'close', protocol: '1.1.1' })
    expect(byGw[statusTopic(F.GW_WALK)]).toMatchObject({ online: true, protocol: '1.1' })
    await late.endAsync()
  })
})

describe('app-connect over HTTP: F19 and the device samples through the HTTP paths', () => {
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let base: string

  beforeAll(async () => {
    t = await startTestDaemon(CONFIG)
    base = `http://127.0.0.1:${t.port('http')}/api/v1/lorawan`
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await observer?.endAsync(true)
    await t?.stop()
  })

  /** As app-connect sends it: JSON content type, `Accept: text/plain` (§3). */
  const post = async (path: string, body: string): Promise<{ status: number, json: unknown }> => {
    const res = await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'text/plain' } })
    return { status: res.status, json: await res.json() }
  }
  const next = async (topic: string, from: number): Promise<Record<string, unknown>> => {
    await until(() => seen.slice(from).some(m => m.topic === topic), topic)
    return JSON.parse(seen.slice(from).find(m => m.topic === topic)!.payload) as Record<string, unknown>
  }
  const httpNet = (appEui: string) => ({ ...net10(appEui), transport: 'http' })

  it('F19 init answers the configuration JSON and brings the gateway online', async () => {
    const from = seen.length
    const r = await post(`/${F.APP_EUI}/${F.GW_V10}/init`, '{"gateways_euis": ["00-80-00-00-a0-00-0f-4d"]}')
    expect(r).toEqual({ status: 200, json: { timeout: 20, queue_size: 10, downlink_query_interval: 30 } })
    expect(await next(statusTopic(F.GW_ID), from)).toMatchObject({ online: true, protocol: '1.0', transport: 'http', gatewayEuis: ['00-80-00-00-a0-00-0f-4d'] })
  })

  it('F19 GET …/down with a JSON body of DevEUIs answers an array', async () => {
    const { request } = await import('node:http')
    const body = '["00-80-00-00-00-01-58-34"]'
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request(`${base}/${F.APP_EUI}/down`, { method: 'GET', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'text/plain' } }, res => {
        let s = ''
        res.on('data', d => { s += String(d) })
        res.on('end', () => resolve(s))
      })
      req.on('error', reject)
      req.end(body)
    })
    expect(JSON.parse(answer)).toEqual([])
  })

  it('F19 batched up: each uplink normalized, the same as over MQTT but for transport', async () => {
    const from = seen.length
    const second = F.F4.replace('"fcnt":27', '"fcnt":28').replace('"seqn":27', '"seqn":28')
    const r = await post(`/${F.APP_EUI}/up`, `[${F.F4}, ${second}]`)
    expect(r).toEqual({ status: 200, json: [] })
    await until(() => seen.slice(from).filter(m => m.topic === upTopic('farm', '0080000000015834')).length === 2, 'two uplinks')
    const [first, other] = seen.slice(from).filter(m => m.topic === upTopic('farm', '0080000000015834')).map(m => JSON.parse(m.payload) as Record<string, unknown>)
    expectEvent(first!, { ...F.F4_UPLINK, network: httpNet('16-ea-76-f6-ab-66-3d-80') }, true)
    expect(other).toMatchObject({ fCnt: 28 })
  })

  it('F3 and F6 through the single-uplink path give the MQTT samples\' events', async () => {
    let from = seen.length
    expect((await post(`/${F.APP_EUI}/${DEV3}/up`, F.F3)).status).toBe(200)
    // Its radio card (…d0-00-01-ff) was in no init over HTTP: the gateway is unknown, so not named.
    expectEvent(await next(upTopic('farm', '008000ffff000003'), from), { ...F3_UPLINK, network: { type: 'multitech', transport: 'http', protocol: '1.0', appEui: F.APP_EUI } }, true)
    from = seen.length
    expect((await post(`/${WALK_APP}/${DEV5}/up`, F.F6)).status).toBe(200)
    // No init from this Conduit over HTTP: its gateway is unknown, so the network block names none.
    expectEvent(await next(upTopic('default', '0011001100110011'), from), { ...F6_UPLINK, network: { type: 'multitech', transport: 'http', protocol: '1.0', appEui: WALK_APP } }, true)
  })

  it('F19 joined, and joined with an empty AppEUI segment', async () => {
    let from = seen.length
    expect((await post('/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/joined', F.F19_JOINED))).toEqual({ status: 200, json: {} })
    expect(await next(joinTopic('farm', '0080000000015834'), from)).toMatchObject({ app: 'farm', devEui: '0080000000015834', appEui: '16-ea-76-f6-ab-66-3d-80', time: '2020-09-16T18:20:00.000Z', network: httpNet('16-ea-76-f6-ab-66-3d-80') })
    from = seen.length
    expect((await post(`//${DEV3}/joined`, F8B_VARIANT)).status).toBe(200)
    expect(await next(joinTopic('farm', '008000ffff000003'), from)).toMatchObject({ devEui: '008000ffff000003', time: '2023-03-04T23:09:00.000Z' })
  })

  it('F19 close with an empty body takes the gateway offline', async () => {
    const from = seen.length
    const res = await fetch(`${base}/${F.APP_EUI}/${F.GW_V10}/close`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '0' } })
    expect(res.status).toBe(200)
    expect(await next(statusTopic(F.GW_ID), from)).toMatchObject({ online: false, reason: 'close' })
  })

  it('F19 v1.1 paths: the catch-all AppEUI and the dashed GW-UUID', async () => {
    const from = seen.length
    const r = await post(`/${F.CATCH_ALL}/${F.GW_V11}/init`, F.F2b)
    expect(r.status).toBe(200)
    expect(await next(statusTopic(F.GW_ID), from)).toMatchObject({ online: true, protocol: '1.1.1', transport: 'http' })
    expect(await t.counter('ingestErrors')).toBe(0)
  })
})
