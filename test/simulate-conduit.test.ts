// The app-connect simulator (src/simulate/conduit.ts) against a plain in-test Aedes broker and a
// plain node:http server: no lorabridge involved. Observers are real mqtt.js clients.
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net'
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { ConduitSimulator, CATCH_ALL_EUI, type ConduitOptions, type ReceivedDownlink } from '../src/simulate/conduit.js'
import { simulateConduit } from '../src/simulate/conduit-cli.js'
import { compilePayloadTemplate } from '../src/simulate/payload-template.js'
import { until } from './helpers/mqtt.js'

const GW_RAW = '029998e0-6156-cdd4-4523-264b523115c1'
const GW10 = '029998E06156CDD44523264B523115C1'
const GW11 = GW_RAW
const APP10 = '8b-6c-f0-8e-ee-df-1b-b6'
const DEV = { devEui: '00-80-00-ff-ff-00-00-03', appEui: '16-ea-76-f6-ab-66-3d-80', devAddr: '00d080cb', fCnt: 0 }
const GWEUI = '00-80-00-00-d0-00-01-ff'
const PY_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/
const UPLINK_FIELDS = ['tmst', 'time', 'chan', 'rfch', 'freq', 'stat', 'modu', 'datr', 'codr', 'lsnr', 'rssi', 'opts', 'size', 'fcnt', 'cls', 'port', 'mhdr', 'data', 'appeui', 'deveui', 'joineui', 'devaddr', 'ack', 'adr', 'gweui', 'seqn']

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})


const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface BrokerClientInfo { id: string, clean: boolean, will: { topic: string, payload: Buffer, qos: number, retain: boolean } | null | undefined }

async function startBroker (): Promise<{ broker: Aedes, port: number, url: string, clients: BrokerClientInfo[], disconnects: string[], subscribed: string[] }> {
  const broker = await Aedes.createBroker()
  const server: NetServer = createNetServer(broker.handle)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const clients: BrokerClientInfo[] = []
  const disconnects: string[] = []
  const subscribed: string[] = []
  broker.on('client', c => { clients.push({ id: c.id, clean: c.clean, will: (c as unknown as { will?: BrokerClientInfo['will'] }).will }) })
  broker.on('clientDisconnect', c => { disconnects.push(c.id) })
  broker.on('subscribe', (subs, c) => { if (c.id.startsWith('lorawan/')) subscribed.push(...subs.map(s => s.topic)) })
  cleanups.push(async () => {
    await new Promise<void>(resolve => { broker.close(() => { resolve() }) })
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  })
  return { broker, port, url: `mqtt://127.0.0.1:${port}`, clients, disconnects, subscribed }
}

interface Msg { topic: string, payload: Buffer, qos: number, retain: boolean }

async function observer (url: string, filter = 'lorawan/#'): Promise<{ client: MqttClient, msgs: Msg[] }> {
  const client = await mqtt.connectAsync(url, { clientId: `observer-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0, clean: true })
  const msgs: Msg[] = []
  client.on('message', (topic, payload, packet) => { msgs.push({ topic, payload, qos: packet.qos, retain: packet.retain }) })
  await client.subscribeAsync(filter, { qos: 1 })
  cleanups.push(async () => { await client.endAsync(true) })
  return { client, msgs }
}

function sim (opts: ConduitOptions): ConduitSimulator {
  const s = new ConduitSimulator(opts)
  cleanups.push(async () => { await s.stop() })
  return s
}

async function retainedIn (broker: Aedes, topic: string): Promise<unknown[]> {
  const out: unknown[] = []
  for await (const p of (broker as unknown as { persistence: { createRetainedStream: (t: string) => AsyncIterable<unknown> } }).persistence.createRetainedStream(topic)) out.push(p)
  return out
}

function decodeMhdr (hex: string): { mtype: number, devAddr: string, fctrl: number, fcnt: number } {
  const b = Buffer.from(hex, 'hex')
  expect(b.length).toBe(8)
  return { mtype: b[0] as number, devAddr: b.readUInt32LE(1).toString(16).padStart(8, '0'), fctrl: b[5] as number, fcnt: b.readUInt16LE(6) }
}

describe('ConduitSimulator over MQTT', () => {
  it('v1.1: client id, persistent session, no will first, init, uplinks, joined, subscriptions', async () => {
    const b = await startBroker()
    const live = await observer(b.url)
    const s = sim({ url: b.url, version: '1.1', gwUuid: GW10, gatewayEuis: [GWEUI], devices: [{ ...DEV }], appEui: APP10 })
    expect(s.gwUuid).toBe(GW11)
    expect(s.appEui).toBe(CATCH_ALL_EUI) // v1.1 forces the catch-all
    await s.start()

    const c = b.clients.find(x => x.id.startsWith('lorawan/'))
    expect(c?.id).toBe(`lorawan/${CATCH_ALL_EUI}/${GW11}`)
    expect(c?.clean).toBe(false)
    expect(c?.will ?? null).toBeNull()
    expect(b.subscribed).toEqual([`lorawan/${GW11}/down`])

    const init = await until(() => live.msgs.find(m => m.topic === `lorawan/${GW11}/init`), 'init')
    const initText = init.payload.toString()
    expect(initText.startsWith(`{"gateways_euis": ["${GWEUI}"], "time": "`)).toBe(true)
    const initJson = JSON.parse(initText) as Record<string, unknown>
    expect(Object.keys(initJson)).toEqual(['gateways_euis', 'time', 'api_version', 'app_version'])
    expect(initJson).toMatchObject({ api_version: '1.1', app_version: '1.0.0' })
    expect(initJson.time).toMatch(PY_TIME)

    const sent1 = await s.uplink(0, { port: 33, data: Buffer.from('testdata') })
    const sent2 = await s.uplink(0, { confirmed: true })
    const upTopic = `lorawan/${GW11}/${DEV.appEui}/${DEV.devEui}/up`
    const ups = await until(() => { const u = live.msgs.filter(m => m.topic === upTopic); return u.length === 2 && u }, 'two uplinks')
    const upText = (ups[0] as Msg).payload.toString()
    expect(upText).not.toContain('", "') // LNS-compact
    const up = JSON.parse(upText) as Record<string, unknown>
    expect(up).toEqual(sent1)
    expect(Object.keys(up)).toEqual(UPLINK_FIELDS)
    expect(up).toMatchObject({ port: 33, size: 8, fcnt: 0, seqn: 0, data: 'dGVzdGRhdGE=', deveui: DEV.devEui, appeui: DEV.appEui, devaddr: '00d080cb', gweui: GWEUI })
    expect(decodeMhdr(up.mhdr as string)).toEqual({ mtype: 0x40, devAddr: '00d080cb', fctrl: 0x80, fcnt: 0 })
    expect(sent2.fcnt).toBe(1)
    expect(decodeMhdr(sent2.mhdr as string)).toMatchObject({ mtype: 0x80, devAddr: '00d080cb', fcnt: 1 })
    expect(s.devices[0]?.fCnt).toBe(2)

    await s.join(0)
    const joinedTopic = `lorawan/${GW11}/${DEV.appEui}/${DEV.devEui}/joined`
    const joined = await until(() => live.msgs.find(m => m.topic === joinedTopic), 'joined')
    expect(JSON.parse(joined.payload.toString())).toMatchObject({ appeui: DEV.appEui, deveui: DEV.devEui, gweui: GWEUI, remote: false })
    expect(live.msgs.some(m => m.topic.endsWith('/connected'))).toBe(false) // 1.1.1 only

    // Retained with QoS 1: a late subscriber gets init, the last uplink and joined, retain flag set.
    const late = await observer(b.url)
    for (const t of [`lorawan/${GW11}/init`, upTopic, joinedTopic]) {
      const m = await until(() => late.msgs.find(x => x.topic === t), `retained ${t}`)
      expect(m.retain).toBe(true)
      expect(m.qos).toBe(1)
    }
  })

  it('v1.0: topics use the app EUI and upper-case GW-UUID; per-device downlinks and clear', async () => {
    const b = await startBroker()
    const live = await observer(b.url)
    const s = sim({ url: b.url, version: '1.0', gwUuid: GW_RAW, appEui: APP10, gatewayEuis: [GWEUI], devices: [{ ...DEV }] })
    expect(s.gwUuid).toBe(GW10)
    const got: ReceivedDownlink[] = []
    const clears: Array<{ devEui: string, topic: string }> = []
    s.on('downlink', (d: ReceivedDownlink) => { got.push(d) })
    s.on('clear', (c: { devEui: string, topic: string }) => { clears.push(c) })
    await s.start()
    expect(b.clients.find(x => x.id.startsWith('lorawan/'))?.id).toBe(`lorawan/${APP10}/${GW10}`)
    const init = await until(() => live.msgs.find(m => m.topic === `lorawan/${APP10}/${GW10}/init`), 'v1.0 init')
    expect(JSON.parse(init.payload.toString())).toMatchObject({ gateways_euis: [GWEUI], api_version: '1.0' })
    const d = DEV.devEui
    expect(new Set(b.subscribed)).toEqual(new Set([
      `lorawan/${APP10}/${d}/down`, `lorawan/${APP10}/${d}/clear`,
      `lorawan/${DEV.appEui}/${d}/down`, `lorawan/${DEV.appEui}/${d}/clear`,
      `lorawan/${GW10}/${d}/down`, `lorawan/${GW10}/${d}/clear`,
      `lorawan/${APP10}/${GW10}/down`, `lorawan/${APP10}/${GW10}/clear`,
      `lorawan/${GWEUI}/${d}/down`, `lorawan/${GWEUI}/${d}/clear`,
    ]))

    await s.uplink()
    await until(() => live.msgs.find(m => m.topic === `lorawan/${DEV.appEui}/${d}/up`), 'v1.0 up')
    await s.join()
    await until(() => live.msgs.find(m => m.topic === `lorawan/${DEV.appEui}/${d}/joined`), 'v1.0 joined (app)')
    const j = await until(() => live.msgs.find(m => m.topic === `lorawan/${GW10}/${d}/joined`), 'v1.0 joined (gw)')
    expect(j.payload.toString()).toContain('"remote": false')

    await live.client.publishAsync(`lorawan/${DEV.appEui}/${d}/down`, '{"data":"QA=="}', { qos: 1 })
    await live.client.publishAsync(`lorawan/${GWEUI}/${d}/down`, '{"data":"AQ==","port":1}', { qos: 1 })
    await live.client.publishAsync(`lorawan/${GW10}/${d}/clear`, '', { qos: 1 }) // not JSON: dropped
    await live.client.publishAsync(`lorawan/${APP10}/${d}/clear`, '{}', { qos: 1 })
    await until(() => got.length === 2 && clears.length === 1, 'downlinks and clear')
    expect(got[0]).toMatchObject({ devEui: d, topic: `lorawan/${DEV.appEui}/${d}/down` })
    expect(got[0]?.data).toEqual(Buffer.from([0x40]))
    expect(got[1]?.data).toEqual(Buffer.from([0x01]))
    expect(got[1]?.payload).toEqual({ data: 'AQ==', port: 1 })
    expect(clears).toEqual([{ devEui: d, topic: `lorawan/${APP10}/${d}/clear` }])
    expect(s.downlinks).toHaveLength(2)
  })

  it('v1.1.1: connected at QoS 0; the will only from the second connection; offline queue; close', async () => {
    const b = await startBroker()
    const live = await observer(b.url)
    const s = sim({ url: b.url, version: '1.1.1', gwUuid: GW_RAW, gatewayEuis: [GWEUI], devices: [{ ...DEV }] })
    await s.start()
    expect(b.subscribed).toEqual([`lorawan/${GW11}/down`, `lorawan/${GW11}/clear`])
    const connected = await until(() => live.msgs.find(m => m.topic === `lorawan/${GW11}/connected`), 'connected')
    expect(connected.qos).toBe(0)
    expect(connected.payload.length).toBe(0)
    const initIdx = live.msgs.findIndex(m => m.topic === `lorawan/${GW11}/init`)
    expect(initIdx).toBeGreaterThanOrEqual(0)
    expect(initIdx).toBeLessThan(live.msgs.indexOf(connected))

    // First connection: no will, so dropping it says nothing.
    s.drop()
    await until(() => b.disconnects.includes(s.clientId), 'broker sees the drop')
    await s.uplink() // queued while disconnected
    await sleep(200)
    expect(live.msgs.some(m => m.topic.endsWith('/disconnected'))).toBe(false)
    expect(live.msgs.some(m => m.topic.endsWith('/up'))).toBe(false)

    // Second connection: same client id, will set; init not re-sent; connected again; queue replayed.
    await s.reconnect()
    const second = b.clients.filter(x => x.id === s.clientId)
    expect(second).toHaveLength(2)
    expect(second[1]?.clean).toBe(false)
    expect(second[1]?.will?.topic).toBe(`lorawan/${GW11}/disconnected`)
    expect(second[1]?.will?.qos).toBe(1)
    expect(second[1]?.will?.retain).toBe(false)
    expect(Buffer.from(second[1]?.will?.payload ?? 'x').length).toBe(0)
    await until(() => live.msgs.filter(m => m.topic.endsWith('/connected')).length === 2, 'second connected')
    await until(() => live.msgs.find(m => m.topic === `lorawan/${GW11}/${DEV.appEui}/${DEV.devEui}/up`), 'replayed uplink')
    expect(live.msgs.filter(m => m.topic.endsWith('/init'))).toHaveLength(1)

    s.drop()
    const will = await until(() => live.msgs.find(m => m.topic === `lorawan/${GW11}/disconnected`), 'will')
    expect(will.payload.length).toBe(0)
    expect(will.qos).toBe(1)

    // Third connection, then a clean close: close published (retained, empty), no will.
    await s.reconnect()
    await s.close()
    const close = await until(() => live.msgs.find(m => m.topic === `lorawan/${GW11}/close`), 'close')
    expect(close.payload.length).toBe(0)
    await sleep(200)
    expect(live.msgs.filter(m => m.topic.endsWith('/disconnected'))).toHaveLength(1)
  })

  it('v1.1 downlinks: deveui in the body, encodeHex both ways, retained downs cleared, leftover uplink topic', async () => {
    const b = await startBroker()
    const live = await observer(b.url)
    const downTopic = `lorawan/${GW11}/down`
    // Published retained while the gateway is away: delivered on subscribe with retain set, then cleared.
    await live.client.publishAsync(downTopic, '{"deveui":"00-80-00-ff-ff-00-00-03","data":"3244","port":1}', { qos: 1, retain: true })
    expect(await retainedIn(b.broker, downTopic)).toHaveLength(1)
    const s = sim({ url: b.url, version: '1.1', gwUuid: GW_RAW, gatewayEuis: [GWEUI], devices: [{ ...DEV }], encodeHex: true, uplinkTopicStyle: 'v1.0-leftover' })
    const got: ReceivedDownlink[] = []
    s.on('downlink', (d: ReceivedDownlink) => { got.push(d) })
    await s.start()
    await until(() => got.length === 1, 'retained downlink')
    expect(got[0]).toMatchObject({ devEui: DEV.devEui, topic: downTopic, payload: { deveui: DEV.devEui, data: '3244', port: 1 } })
    expect(got[0]?.data).toEqual(Buffer.from('2D'))
    const end = Date.now() + 3000
    while ((await retainedIn(b.broker, downTopic)).length > 0) {
      if (Date.now() > end) throw new Error('retained downlink was not cleared')
      await sleep(20)
    }

    // A non-JSON retained message is cleared too, and dropped.
    s.drop()
    await live.client.publishAsync(downTopic, 'not json', { qos: 1, retain: true })
    await s.reconnect()
    const end2 = Date.now() + 3000
    while ((await retainedIn(b.broker, downTopic)).length > 0) {
      if (Date.now() > end2) throw new Error('retained garbage was not cleared')
      await sleep(20)
    }
    expect(got).toHaveLength(1)

    // Live v1.1 down with hex data.
    await live.client.publishAsync(downTopic, JSON.stringify({ deveui: DEV.devEui, data: 'cafe', port: 7 }), { qos: 1 })
    await until(() => got.length === 2, 'live downlink')
    expect(got[1]?.data).toEqual(Buffer.from([0xca, 0xfe]))

    // encodeHex uplink (F6 shape) on the leftover v1.0 topic (F7).
    await s.uplink(0, { data: Buffer.from([0x01, 0x73]) })
    const up = await until(() => live.msgs.find(m => m.topic === `lorawan/${DEV.appEui}/${DEV.devEui}/up`), 'leftover uplink')
    const text = up.payload.toString()
    expect(text).toContain('"data": "0173", ')
    expect(text.startsWith('{"tmst": ')).toBe(true)
    expect(text.endsWith(', "data-format": "hexadecimal"}')).toBe(true)
    expect(JSON.parse(text)).toMatchObject({ size: 2, data: '0173', 'data-format': 'hexadecimal' })
  })
})

interface Req { method: string, url: string, headers: IncomingHttpHeaders, body: string }

async function startHttp (respond: (r: Req) => string): Promise<{ url: string, reqs: Req[] }> {
  const reqs: Req[] = []
  const server: HttpServer = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => {
      const r: Req = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() }
      reqs.push(r)
      res.setHeader('Content-Type', 'application/json')
      res.end(respond(r))
    })
  })
  server.keepAliveTimeout = 120_000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reqs }
}

describe('ConduitSimulator over HTTP', () => {
  it('v1.1 with a URL prefix: init config, up response downlink, GET /down with a JSON body, joined, batch, close', async () => {
    const devs = [{ ...DEV }, { ...DEV, devEui: '00-80-00-ff-ff-00-00-04', devAddr: '00d080cc' }]
    let polled = 0
    const srv = await startHttp(r => {
      if (r.url.endsWith('/init')) return '{"timeout":20,"queue_size":10,"downlink_query_interval":30}'
      if (r.url.endsWith(`/${DEV.devEui}/up`)) return JSON.stringify({ deveui: DEV.devEui, data: 'AQ==', port: 2 })
      if (r.url.endsWith('/down')) return polled++ === 0 ? JSON.stringify([{ deveui: devs[1]?.devEui, data: 'Ag==' }, { nodata: true }]) : '[]'
      if (r.url.endsWith('/up')) return JSON.stringify([{ deveui: DEV.devEui, data: 'Aw==' }])
      return '{}'
    })
    const s = sim({ url: `${srv.url}/x/y`, version: '1.1', gwUuid: GW_RAW, gatewayEuis: [GWEUI], devices: devs, httpPollIntervalMs: 100 })
    const got: ReceivedDownlink[] = []
    s.on('downlink', (d: ReceivedDownlink) => { got.push(d) })
    await s.start()
    const base = `/x/y/api/v1/lorawan`
    const init = srv.reqs[0] as Req
    expect(init).toMatchObject({ method: 'POST', url: `${base}/${CATCH_ALL_EUI}/${GW11}/init`, body: `{"gateways_euis": ["${GWEUI}"]}` })
    expect(init.headers['content-type']).toBe('application/json')
    expect(init.headers.accept).toBe('text/plain')
    expect(s.httpConfig).toEqual({ timeout: 20, queue_size: 10, downlink_query_interval: 30 })

    const sent = await s.uplink(0)
    const upReq = srv.reqs.find(r => r.url === `${base}/${DEV.appEui}/${DEV.devEui}/up`)
    expect(upReq?.method).toBe('POST')
    expect(JSON.parse(upReq?.body ?? '')).toEqual(sent)
    expect(got[0]).toMatchObject({ devEui: DEV.devEui, path: `${base}/${DEV.appEui}/${DEV.devEui}/up` })
    expect(got[0]?.data).toEqual(Buffer.from([1]))

    await until(() => got.length === 2, 'polled downlink')
    const get = srv.reqs.find(r => r.method === 'GET')
    expect(get?.url).toBe(`${base}/${CATCH_ALL_EUI}/down`)
    expect(JSON.parse(get?.body ?? '')).toEqual(devs.map(d => d.devEui))
    expect(get?.body).toBe(`["${DEV.devEui}", "${devs[1]?.devEui}"]`)
    expect(got[1]).toMatchObject({ devEui: devs[1]?.devEui, path: `${base}/${CATCH_ALL_EUI}/down` })
    expect(got[1]?.data).toEqual(Buffer.from([2]))

    await s.join(1)
    const joined = srv.reqs.find(r => r.url === `${base}/${DEV.appEui}/${devs[1]?.devEui}/joined`)
    expect(JSON.parse(joined?.body ?? '')).toMatchObject({ deveui: devs[1]?.devEui, appeui: DEV.appEui })

    const batch = await s.uplinkBatch([0, 1])
    const batchReq = srv.reqs.find(r => r.url === `${base}/${CATCH_ALL_EUI}/up`)
    expect(JSON.parse(batchReq?.body ?? '')).toEqual(batch)
    expect(batch.map(u => u.deveui)).toEqual(devs.map(d => d.devEui))
    await until(() => got.find(g => g.path === `${base}/${CATCH_ALL_EUI}/up`), 'batch response downlink')

    await s.close()
    const close = srv.reqs.at(-1)
    expect(close).toMatchObject({ method: 'POST', url: `${base}/${CATCH_ALL_EUI}/${GW11}/close`, body: '' })
    expect(close?.headers['content-length']).toBe('0')
  })

  it('v1.0 without prefix; a non-JSON init response means no polling', async () => {
    const srv = await startHttp(r => r.url.endsWith('/init') ? 'ok' : '[]')
    const s = sim({ url: srv.url, version: '1.0', gwUuid: GW_RAW, appEui: APP10, gatewayEuis: [GWEUI], devices: [{ ...DEV }], httpPollIntervalMs: 50, encodeHex: true })
    await s.start()
    expect(srv.reqs[0]?.url).toBe(`/api/v1/lorawan/${APP10}/${GW10}/init`)
    expect(s.httpConfig).toBeUndefined()
    await s.uplink(0, { data: Buffer.from([0xab]) })
    expect(srv.reqs[1]?.url).toBe(`/api/v1/lorawan/${DEV.appEui}/${DEV.devEui}/up`)
    expect(srv.reqs[1]?.body).toContain('"data": "ab"')
    await sleep(200)
    expect(srv.reqs.some(r => r.method === 'GET')).toBe(false)
  })
})

describe('simulate conduit (CLI module)', () => {
  it('sends --count uplinks over the devices, prints downlink lines and a summary', async () => {
    const b = await startBroker()
    const live = await observer(b.url)
    // A back-end that answers every uplink with a v1.1 downlink.
    live.client.on('message', (topic, payload) => {
      if (!topic.endsWith('/up') || payload.length === 0) return
      const up = JSON.parse(payload.toString()) as { deveui: string, fcnt: number }
      void live.client.publishAsync(`lorawan/${GW11}/down`, JSON.stringify({ deveui: up.deveui, data: Buffer.from([up.fcnt]).toString('base64'), port: 5 }), { qos: 1 })
    })
    const stdout = new PassThrough()
    let out = ''
    stdout.on('data', (c: Buffer) => { out += c.toString() })
    const summary = await simulateConduit(
      { url: b.url, apiVersion: '1.1', devices: 2, count: 3, rate: 50, gwUuid: GW_RAW, linger: 500, fcnt: 0 },
      { stdout, stderr: new PassThrough(), stdin: new PassThrough(), signals: false },
    )
    expect(summary).toEqual({ uplinks: 3, downlinks: 3 })
    const lines = out.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    expect(lines.at(-1)).toEqual({ event: 'summary', uplinks: 3, downlinks: 3 })
    const dl = lines.filter(l => l.event === 'downlink')
    expect(dl).toHaveLength(3)
    expect(dl[0]).toEqual({ event: 'downlink', devEui: '00-80-00-ff-00-00-00-01', port: 5, data: '00', topic: `lorawan/${GW11}/down` })
    expect(new Set(dl.map(l => l.devEui))).toEqual(new Set(['00-80-00-ff-00-00-00-01', '00-80-00-ff-00-00-00-02']))
    expect(live.msgs.filter(m => m.topic.endsWith('/up'))).toHaveLength(3)
    await until(() => live.msgs.find(m => m.topic === `lorawan/${GW11}/close`), 'close')
  })
})

describe('--payload templates (payload-template.ts)', () => {
  it('hex with {n} (1 byte) and {fcnt} (2 bytes), {name:W} on W bytes big-endian, wrapping', () => {
    const hex = (t: string, n: number, fcnt: number): string => compilePayloadTemplate(t)({ n, fcnt }).toString('hex')
    expect(hex('01{n}', 2, 9)).toBe('0102')
    expect(hex('01{n}', 256, 0)).toBe('0100')
    expect(hex('{fcnt}', 0, 0x1234)).toBe('1234')
    expect(hex('AB{fcnt:4}{n:2}cd', 0x102, 0x10000)).toBe('ab000100000102cd')
    expect(hex('{fcnt:1}', 0, 0x1ff)).toBe('ff')
    expect(hex('0A0b', 5, 5)).toBe('0a0b')
  })

  it('refuses anything else, naming the option and the place', () => {
    expect(() => compilePayloadTemplate('')).toThrow('--payload: empty')
    expect(() => compilePayloadTemplate('01{n:5}')).toThrow('--payload: unexpected "{n:5}" at character 3')
    expect(() => compilePayloadTemplate('01{N}')).toThrow(/unexpected/)
    expect(() => compilePayloadTemplate('1{n}')).toThrow(/odd number of hex digits/)
    expect(() => compilePayloadTemplate('01 02')).toThrow(/unexpected " 02" at character 3/)
  })
})
