/**
 * Issue 12, attack 2 (HTTPS half): a Conduit whose client certificate names a gateway user bound
 * to GW-UUID A must not act as, or rob, the Conduit bound to B. Performed with real TLS client
 * certificates against a real daemon:
 * - A posts uplinks (single and batched) carrying B's gateway EUI: refused (403
 *   LB_ERR_APPCONNECT_OTHER_GATEWAY, counted), nothing published as B; without B's EUI an uplink
 *   from A's certificate is A's, whatever it says.
 * - A polls `GET …/down` (and posts a Class A uplink) listing B's device: it gets none of the
 *   downlinks routed through B; B's own poll gets them and `down/queued` names B.
 * - an anonymous poll on a loopback listener gets nothing routed through a bound Conduit.
 * - A cannot init or close B (403).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { runCli } from '../helpers/cli.js'
import { observe, sleep, until, type MqttClient } from '../helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../../src/simulate/conduit.js'

const GW_A = 'aaaaaaaa-0000-4000-8000-00000000000a'
const GW_B = 'bbbbbbbb-0000-4000-8000-00000000000b'
const EUI_A = '00-80-00-00-aa-aa-aa-aa'
const EUI_B = '00-80-00-00-bb-bb-bb-bb'
const APP = 'ff-ff-ff-ff-ff-ff-ff-ff'
const DEVICE_B = generatedDevice(41)
const DEVICE_B_HEX = DEVICE_B.devEui.replace(/-/g, '')

interface Reply { status: number, json: unknown }

describe('app-connect over HTTPS: a certificate bound to one gateway cannot act as or rob another', () => {
  let t: TestDaemon
  let ca: Buffer
  let creds: (name: string) => Promise<{ cert: Buffer, key: Buffer }>
  let operator: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let conduitB: ConduitSimulator

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'https', host: '127.0.0.1', port: 0 }] },
    })
    const cli = async (...args: string[]): Promise<void> => {
      const r = await runCli(['-c', t.configFile, ...args])
      expect(r.code, r.stderr).toBe(0)
    }
    for (const name of ['conduit-a', 'conduit-b']) await cli('certs', 'client', name)
    await cli('users', 'add', 'conduit-a', '--role', 'gateway', '--gateway', GW_A)
    await cli('users', 'add', 'conduit-b', '--role', 'gateway', '--gateway', GW_B)
    await sleep(1100) // the users file is re-read at most once a second
    ca = await readFile(join(t.dataDir, 'ca.crt'))
    creds = async name => ({ cert: await readFile(join(t.dataDir, `${name}.crt`)), key: await readFile(join(t.dataDir, `${name}.key`)) })
    ;({ client: operator, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    conduitB = new ConduitSimulator({
      url: `https://localhost:${t.port('https')}`, version: '1.1', gwUuid: GW_B, gatewayEuis: [EUI_B], ca, ...await creds('conduit-b'),
      devices: [DEVICE_B], httpPollIntervalMs: 3_600_000, httpRetryDelayMs: 50,
    })
    await conduitB.start()
    // B hears its device: the route of DEVICE_B goes through B.
    await conduitB.uplink(0, { data: Buffer.from([0xb0]) })
    await until(() => seen.some(m => m.topic === `lorabridge/default/devices/${DEVICE_B_HEX}/up`), "B's uplink")
  })
  afterAll(async () => {
    await conduitB?.stop()
    await operator?.endAsync(true)
    await t?.stop()
  })

  /** One request as a Conduit makes it (JSON body, also on GET), with `name`'s certificate or none. */
  const call = async (name: string | undefined, method: 'GET' | 'POST', path: string, body: unknown): Promise<Reply> => {
    const tls = name === undefined ? {} : await creds(name)
    const payload = Buffer.from(body === undefined ? '' : JSON.stringify(body))
    return new Promise((resolve, reject) => {
      const headers = { 'content-type': 'application/json', 'content-length': String(payload.length) }
      const req = request({ host: '127.0.0.1', servername: 'localhost', port: t.port('https'), path, method, ca, ...tls, agent: false, headers }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: unknown
          try { json = JSON.parse(text) } catch { json = text }
          resolve({ status: res.statusCode ?? 0, json })
        })
      })
      req.on('error', reject)
      req.end(payload)
    })
  }

  let fCnt = 100
  const uplinkBody = (gweui: string | undefined, data: number): Record<string, unknown> => ({
    deveui: DEVICE_B.devEui, appeui: DEVICE_B.appEui, devaddr: DEVICE_B.devAddr, fcnt: fCnt++, port: 1,
    data: Buffer.from([data]).toString('base64'), rssi: -30, lsnr: 9.5, datr: 'SF7BW125', freq: 904.1,
    ...(gweui !== undefined ? { gweui } : {}),
  })

  const upsOf = (from: number): Array<Record<string, unknown>> => seen.slice(from)
    .filter(m => m.topic === `lorabridge/default/devices/${DEVICE_B_HEX}/up`)
    .map(m => JSON.parse(m.payload) as Record<string, unknown>)

  it("refuses an uplink from A's certificate that carries B's gateway EUI (single and batched); A's own uplink is A's", async () => {
    const before = await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_APPCONNECT_OTHER_GATEWAY' })
    const from = seen.length

    const single = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${DEVICE_B.devEui}/up`, uplinkBody(EUI_B, 0xa1))
    expect(single.status).toBe(403)
    expect(single.json).toMatchObject({ error: 'LB_ERR_APPCONNECT_OTHER_GATEWAY' })

    const batch = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/up`, [uplinkBody(EUI_B, 0xa2), uplinkBody(EUI_B, 0xa3)])
    expect(batch.status).toBe(403)
    expect(batch.json).toMatchObject({ error: 'LB_ERR_APPCONNECT_OTHER_GATEWAY' })

    // Legitimate traffic still flows, and is attributed to the certificate's gateway: B's own
    // uplink is B's; an uplink from A's certificate that names no gateway EUI is A's.
    await conduitB.uplink(0, { data: Buffer.from([0xb1]) })
    const fromA = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${DEVICE_B.devEui}/up`, uplinkBody(undefined, 0xa4))
    expect(fromA.status).toBe(200)
    await until(() => upsOf(from).some(u => u.hex === 'a4') && upsOf(from).some(u => u.hex === 'b1'), 'the two legitimate uplinks')

    const ups = upsOf(from)
    expect(ups.map(u => u.hex).sort()).toEqual(['a4', 'b1'])
    expect(ups.find(u => u.hex === 'b1')).toMatchObject({ network: { gateway: GW_B, transport: 'http' } })
    expect(ups.find(u => u.hex === 'a4')).toMatchObject({ network: { gateway: GW_A, transport: 'http' } })
    expect(await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_APPCONNECT_OTHER_GATEWAY' })).toBe(before + 3)
    expect(t.logs.withCode('LB_ERR_APPCONNECT_OTHER_GATEWAY').length).toBeGreaterThanOrEqual(3)

    // B's uplink makes B the device's route again for the next test.
    await conduitB.uplink(0, { data: Buffer.from([0xb2]) })
    await until(() => upsOf(from).some(u => u.hex === 'b2'), "B's uplink")
  })

  it("does not hand B's downlinks to A's poll or A's Class A reply; B's own poll gets them and down/queued names B", async () => {
    const from = seen.length
    await operator.publishAsync(`lorabridge/default/devices/${DEVICE_B_HEX}/down`, '{"id":"for-b-1","fPort":5,"hex":"b00b"}', { qos: 1 })
    await until(() => t.daemon.multitech.queue.size(DEVICE_B_HEX) === 1 || undefined, 'the downlink waiting for B')

    // A lists B's device in its poll, with and without dashes.
    const poll = await call('conduit-a', 'GET', `/api/v1/lorawan/${APP}/down`, [DEVICE_B.devEui, DEVICE_B_HEX])
    expect(poll.status, JSON.stringify(poll.json)).toBe(200)
    expect(poll.json).toEqual([])
    // An anonymous poll on this loopback listener does not get a bound Conduit's downlinks either.
    const anonymous = await call(undefined, 'GET', `/api/v1/lorawan/${APP}/down`, [DEVICE_B.devEui])
    expect(anonymous.status).toBe(200)
    expect(anonymous.json).toEqual([])
    expect(t.daemon.multitech.queue.size(DEVICE_B_HEX)).toBe(1)

    const polled = await conduitB.pollDownlinks()
    expect(polled.map(d => d.payload)).toEqual([expect.objectContaining({ deveui: DEVICE_B.devEui, data: Buffer.from('b00b', 'hex').toString('base64'), port: 5 })])
    const queued = await until(() => seen.slice(from).find(m => m.topic === `lorabridge/default/devices/${DEVICE_B_HEX}/down/queued`), 'down/queued')
    expect(JSON.parse(queued.payload)).toMatchObject({ id: 'for-b-1', network: { gateway: GW_B, transport: 'http' } })
    expect(seen.slice(from).filter(m => m.topic.endsWith('/down/queued'))).toHaveLength(1)
  })

  it("does not hand B's waiting downlink to A in the answer to A's uplink for B's device", async () => {
    const from = seen.length
    await operator.publishAsync(`lorabridge/default/devices/${DEVICE_B_HEX}/down`, '{"id":"for-b-2","fPort":6,"hex":"0b"}', { qos: 1 })
    await until(() => t.daemon.multitech.queue.size(DEVICE_B_HEX) === 1 || undefined, 'the downlink waiting for B')
    const up = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${DEVICE_B.devEui}/up`, uplinkBody(EUI_A, 0xa5))
    expect(up.status).toBe(200)
    expect(up.json).toEqual([])
    const polled = await conduitB.pollDownlinks()
    expect(polled.map(d => d.payload.data)).toEqual([Buffer.from([0x0b]).toString('base64')])
    const queued = await until(() => seen.slice(from).find(m => m.topic === `lorabridge/default/devices/${DEVICE_B_HEX}/down/queued`), 'down/queued')
    expect(JSON.parse(queued.payload)).toMatchObject({ id: 'for-b-2', network: { gateway: GW_B } })
  })

  it("does not let A's own init take B's gateway EUI: counted, B's uplinks stay B's, A's uplink naming it is still refused", async () => {
    const before = await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_APPCONNECT_OTHER_GATEWAY' })
    const init = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${GW_A}/init`, { gateways_euis: [EUI_A, EUI_B] })
    // The init still succeeds (JSON answer: the Conduit starts polling), without B's EUI.
    expect(init.status).toBe(200)
    expect(init.json).toMatchObject({ downlink_query_interval: 30 })
    expect(await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_APPCONNECT_OTHER_GATEWAY' })).toBe(before + 1)
    expect(t.logs.withCode('LB_ERR_APPCONNECT_OTHER_GATEWAY').at(-1)).toMatchObject({ gateway: GW_A, owner: GW_B })

    const spoof = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${DEVICE_B.devEui}/up`, uplinkBody(EUI_B, 0xa6))
    expect(spoof.status).toBe(403)
    const from = seen.length
    await conduitB.uplink(0, { data: Buffer.from([0xb3]) })
    const up = await until(() => upsOf(from).find(u => u.hex === 'b3'), "B's uplink")
    expect(up).toMatchObject({ network: { gateway: GW_B }, gateways: [expect.objectContaining({ id: EUI_B })] })
    expect(upsOf(from).some(u => u.hex === 'a6')).toBe(false)
  })

  it("refuses init and close of B from A's certificate (403); B stays online", async () => {
    const init = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${GW_B}/init`, { gateways_euis: [EUI_A] })
    expect(init.status).toBe(403)
    const close = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${GW_B}/close`, undefined)
    expect(close.status).toBe(403)
    // v1.0 spelling of B's GW-UUID (32 upper-case hex digits) is B too.
    const close10 = await call('conduit-a', 'POST', `/api/v1/lorawan/${APP}/${GW_B.replace(/-/g, '').toUpperCase()}/close`, undefined)
    expect(close10.status).toBe(403)
    const statuses = seen.filter(m => m.topic === `lorabridge/gateways/${GW_B}/status`).map(m => JSON.parse(m.payload) as Record<string, unknown>)
    expect(statuses.at(-1)).toMatchObject({ online: true })
  })
})
