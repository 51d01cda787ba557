/**
 * Downlinks a user can trust (issue 16): confirmed downlinks acknowledged or not, replace, expiry,
 * and the retained pending list, end to end with both simulators. Every outcome carries the
 * request's id.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, observe, until, type MqttClient } from './helpers/mqtt.js'
import { validateMessage } from './helpers/event-schemas.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const eui = (dashed: string): string => dashed.replace(/-/g, '').toLowerCase()

const RULES = `rules:
  - name: tell-acked
    on: down/acked
    when: { app: farm }
    publish:
      topic: '"acks/" & devEui'
      payload: '{ "id": id, "by": ackedBy.id }'
`

describe('downlinks a user can trust', () => {
  let dir: string
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let mqttSim: ConduitSimulator
  let httpSim: ConduitSimulator
  let tp: ThingParkSimulator
  const MQTT_DEV = generatedDevice(800)
  const MQTT_DEV2 = generatedDevice(801)
  const HTTP_DEV = generatedDevice(810)
  const TP_DEV = '0018B2000000AC00'
  let tpFCnt = 0

  const outcome = async (devEui: string, id: string, kinds = /\/down\/(queued|sent|acked|failed)$/): Promise<{ kind: string, body: Record<string, unknown> }> => {
    const m = await until(() => seen.find(x => kinds.test(x.topic) && x.topic.includes(`/devices/${devEui}/`) && (JSON.parse(x.payload) as { id?: string }).id === id), `outcome of ${id} (${kinds.source})`, 15_000)
    const body = JSON.parse(m.payload) as Record<string, unknown>
    expect(validateMessage(m.topic, body).ok).toBe(true)
    return { kind: m.topic.split('/').slice(-2).join('/'), body }
  }
  const outcomesOf = (devEui: string, id: string): string[] => seen
    .filter(x => /\/down\/(queued|sent|acked|failed)$/.test(x.topic) && x.topic.includes(`/devices/${devEui}/`) && (JSON.parse(x.payload) as { id?: string }).id === id)
    .map(x => x.topic.split('/').slice(-2).join('/'))
  const pending = (devEui: string): Array<Record<string, unknown>> | undefined => {
    const m = seen.filter(x => x.topic === `lorabridge/farm/devices/${devEui}/down/pending`).at(-1)
    return m === undefined ? undefined : (JSON.parse(m.payload) as { pending: Array<Record<string, unknown>> }).pending
  }
  const down = async (devEui: string, body: unknown): Promise<void> => {
    const app = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    await app.publishAsync(`lorabridge/farm/devices/${devEui}/down`, JSON.stringify(body), { qos: 1 })
    await app.endAsync()
  }
  const tpUplink = async (): Promise<void> => {
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 3, fCntUp: ++tpFCnt, payloadHex: '01' })).status).toBe(204)
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-downlinks-'))
    await mkdir(join(dir, 'rules'))
    await writeFile(join(dir, 'rules', 'acks.yaml'), RULES)
    // The LRC endpoint first, on a port the system picks (a port picked for later can be taken by then).
    tp = new ThingParkSimulator({ asUrl: 'http://127.0.0.1:1/tp', asId: AS_ID, asKey: KEY })
    const lrcUrl = await tp.startLrc({ port: 0, sentReportDelayMs: 20, acknowledge: true })
    t = await startTestDaemon({
      applications: [{ name: 'farm', region: 'EU868', match: { appEui: [MQTT_DEV.appEui], thingpark: ['tp'] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      rules: { dir: './rules' },
      // 8 s: long enough that no other test's confirmed downlink times out on a loaded machine.
      downlinks: { conduitAckRetries: 1, thingparkUplinksWithoutAck: 2, ackTimeoutSeconds: 8 },
      thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKey: KEY, downlinkUrl: lrcUrl }] },
    }, { dir })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    await observer.subscribeAsync('acks/#', { qos: 1 })
    mqttSim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1.1', gwUuid: '00acac00-6156-cdd4-4523-264b523115c1', devices: [{ ...MQTT_DEV }, { ...MQTT_DEV2 }], acknowledge: true })
    await mqttSim.start()
    httpSim = new ConduitSimulator({ url: `http://127.0.0.1:${t.port('http')}`, version: '1.1.1', gwUuid: '00acac01-6156-cdd4-4523-264b523115c1', devices: [{ ...HTTP_DEV }], httpPollIntervalMs: 3_600_000, httpRetryDelayMs: 50, acknowledge: true })
    await httpSim.start()
    tp.retarget(`http://127.0.0.1:${t.port('http')}/tp`)
    // Every device is heard once, so that its downlinks have a route.
    await mqttSim.uplink(0, { port: 1 })
    await mqttSim.uplink(1, { port: 1 })
    await httpSim.uplink(0, { port: 1 })
    await tpUplink()
    for (const d of [eui(MQTT_DEV.devEui), eui(MQTT_DEV2.devEui), eui(HTTP_DEV.devEui), TP_DEV.toLowerCase()]) {
      await until(() => seen.some(x => x.topic === `lorabridge/farm/devices/${d}/up`), `first uplink of ${d}`)
    }
  })
  afterAll(async () => {
    await mqttSim?.stop()
    await httpSim?.stop()
    await tp?.stop()
    await observer?.endAsync(true)
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('Conduit: a confirmed downlink ends in down/acked when a later uplink carries the ACK bit; rules hear it', async () => {
    const dev = eui(MQTT_DEV.devEui)
    await down(dev, { id: 'c-acked', fPort: 2, hex: '0a', confirmed: true })
    expect((await outcome(dev, 'c-acked')).kind).toBe('down/queued')
    // The Conduit was asked for retransmissions (what not-acknowledged is concluded from).
    const got = await until(() => mqttSim.downlinks.find(d => d.devEui === MQTT_DEV.devEui && d.data.equals(Buffer.from('0a', 'hex'))), 'the downlink at the Conduit')
    expect(got.payload).toMatchObject({ ack: true, ack_retries: 1, port: 2 })
    await until(() => pending(dev)?.some(p => p.id === 'c-acked' && p.state === 'awaiting-ack'), 'listed as awaiting its ACK')
    await mqttSim.uplink(0, { port: 1 }) // its receive window: the downlink goes out
    const carrying = await mqttSim.uplink(0, { port: 1 }) // the ACK
    expect(carrying.ack).toBe(true)
    const acked = await outcome(dev, 'c-acked', /\/down\/acked$/)
    expect(acked.body).toMatchObject({ id: 'c-acked', app: 'farm', devEui: dev, command: 'down', ackedBy: { fCnt: carrying.fcnt } })
    const ackUp = seen.find(x => x.topic === `lorabridge/farm/devices/${dev}/up` && (JSON.parse(x.payload) as { fCnt?: number }).fCnt === carrying.fcnt)
    expect(JSON.parse(ackUp!.payload)).toMatchObject({ ack: true })
    expect((acked.body.ackedBy as { id: string }).id).toBe((JSON.parse(ackUp!.payload) as { id: string }).id)
    const told = await until(() => seen.find(x => x.topic === `acks/${dev}`), 'the rule on down/acked')
    expect(JSON.parse(told.payload)).toEqual({ id: 'c-acked', by: (acked.body.ackedBy as { id: string }).id })
    await until(() => pending(dev)?.length === 0 || undefined, 'the pending list empty again')
    expect(outcomesOf(dev, 'c-acked')).toEqual(['down/queued', 'down/acked'])
  })

  it('Conduit: a confirmed downlink the device missed ends in not-acknowledged after ack_retries + 2 uplinks without ACK', async () => {
    const dev = eui(MQTT_DEV2.devEui)
    mqttSim.lose(MQTT_DEV2.devEui)
    await down(dev, { id: 'c-lost', fPort: 2, hex: '0b', confirmed: true })
    expect((await outcome(dev, 'c-lost')).kind).toBe('down/queued')
    for (let i = 0; i < 2; i++) await mqttSim.uplink(1, { port: 1 })
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(outcomesOf(dev, 'c-lost')).toEqual(['down/queued'])
    await mqttSim.uplink(1, { port: 1 }) // the third (retries 1 + 2)
    const failed = await outcome(dev, 'c-lost', /\/down\/failed$/)
    expect(failed.body).toMatchObject({ reason: 'not-acknowledged' })
    expect(failed.body.detail).toContain('3 uplinks')
  })

  it('Conduit: nothing concluded within ackTimeoutSeconds ends in unknown', async () => {
    const dev = eui(MQTT_DEV2.devEui)
    await down(dev, { id: 'c-silent', fPort: 2, hex: '0c', confirmed: true })
    expect((await outcome(dev, 'c-silent')).kind).toBe('down/queued')
    const failed = await outcome(dev, 'c-silent', /\/down\/failed$/)
    expect(failed.body).toMatchObject({ reason: 'unknown' })
  })

  it('Conduit over MQTT: an expiry is passed on with a caveat; one already past ends in expired at once', async () => {
    const dev = eui(MQTT_DEV.devEui)
    await down(dev, { id: 'ttl-mqtt', fPort: 2, hex: '01', ttlSeconds: 60 })
    const q = await outcome(dev, 'ttl-mqtt')
    expect(q.kind).toBe('down/queued')
    expect((q.body.caveats as string[])[0]).toMatch(/app-connect over MQTT has no expiry/)
    await down(dev, { id: 'too-late', fPort: 2, hex: '01', expiresAt: '2020-01-01T00:00:00Z' })
    expect((await outcome(dev, 'too-late')).body).toMatchObject({ reason: 'expired' })
    await down(dev, [{ id: 'no-zone', fPort: 2, hex: '01', expiresAt: '2030-01-01T00:00:00' }, { id: 'both', fPort: 2, hex: '01', expiresAt: '2030-01-01T00:00:00Z', ttlSeconds: 5 }])
    expect((await outcome(dev, 'no-zone')).body).toMatchObject({ reason: 'invalid' })
    expect((await outcome(dev, 'both')).body).toMatchObject({ reason: 'invalid' })
  })

  it('Conduit over MQTT 1.1.1: replace clears the Conduit\'s queue before the downlink', async () => {
    const dev = eui(MQTT_DEV.devEui)
    const clears: unknown[] = []
    mqttSim.on('clear', c => clears.push(c))
    await down(dev, { id: 'replacing-mqtt', fPort: 2, hex: '02', replace: true })
    expect((await outcome(dev, 'replacing-mqtt')).kind).toBe('down/queued')
    await until(() => clears.length > 0 || undefined, 'the clear at the Conduit')
  })

  it('HTTP Conduit: held requests are listed as pending; replace ends them in replaced; an expiry drops one on time', async () => {
    const dev = eui(HTTP_DEV.devEui)
    await down(dev, { id: 'h1', fPort: 2, hex: '01' })
    await down(dev, { id: 'h2', fPort: 2, hex: '0102', confirmed: true })
    await until(() => pending(dev)?.length === 2 || undefined, 'two held')
    expect(pending(dev)).toEqual([
      { id: 'h1', fPort: 2, size: 1, confirmed: false, state: 'held', since: expect.any(String) as unknown },
      { id: 'h2', fPort: 2, size: 2, confirmed: true, state: 'held', since: expect.any(String) as unknown },
    ])
    await down(dev, { id: 'h3', fPort: 2, hex: '03', replace: true, ttlSeconds: 30 })
    expect((await outcome(dev, 'h1')).body).toMatchObject({ reason: 'replaced' })
    expect((await outcome(dev, 'h2')).body).toMatchObject({ reason: 'replaced' })
    await until(() => pending(dev)?.length === 1 && pending(dev)![0]!.id === 'h3' || undefined, 'only the replacement held')
    expect(pending(dev)![0]!.expiresAt).toEqual(expect.stringMatching(/^\d{4}-/))
    // A late subscriber gets the list, retained.
    const late = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    const retained = new Promise<string>(resolve => late.on('message', (_t, p) => resolve(p.toString())))
    await late.subscribeAsync(`lorabridge/farm/devices/${dev}/down/pending`, { qos: 1 })
    expect(JSON.parse(await retained)).toMatchObject({ app: 'farm', devEui: dev, pending: [{ id: 'h3' }] })
    await late.endAsync()
    // h3 goes to the Conduit with the next uplink's reply.
    await httpSim.uplink(0, { port: 1 })
    expect((await outcome(dev, 'h3')).kind).toBe('down/queued')
    await until(() => pending(dev)?.length === 0 || undefined, 'nothing pending')
    // Not fetched within its ttl: expired, by lorabridge's own queue.
    await down(dev, { id: 'h-ttl', fPort: 2, hex: '04', ttlSeconds: 1 })
    const expired = await outcome(dev, 'h-ttl')
    expect(expired.body).toMatchObject({ reason: 'expired' })
    expect(expired.body.detail).toMatch(/before its expiry/)
  })

  it('refuses at once a payload larger than the region allows at the device\'s latest data rate, with the limit', async () => {
    const dev = eui(MQTT_DEV.devEui)
    // SF12 in EU868: DR0, whose RX1 carries at most 51 bytes.
    await mqttSim.uplink(0, { port: 1, datr: 'SF12BW125' })
    await down(dev, [{ id: 'fits', fPort: 2, hex: '00'.repeat(51) }, { id: 'too-big', fPort: 2, hex: '00'.repeat(52) }])
    expect((await outcome(dev, 'fits')).kind).toBe('down/queued')
    const refused = await outcome(dev, 'too-big')
    expect(refused.body).toMatchObject({ reason: 'too-large' })
    expect(refused.body.detail).toMatch(/^52 bytes; at most 51 in EU868 at DR0/)
    expect(mqttSim.downlinks.some(d => d.data.length === 52)).toBe(false)
    // Back at SF7 (DR5: 242 bytes), the same request fits.
    await mqttSim.uplink(0, { port: 1 })
    await down(dev, { id: 'fits-now', fPort: 2, hex: '00'.repeat(52) })
    expect((await outcome(dev, 'fits-now')).kind).toBe('down/queued')
    // ThingPark reports the spreading factor alone.
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 3, fCntUp: ++tpFCnt, payloadHex: '01', extra: { SpFact: 12 } })).status).toBe(204)
    await until(() => seen.some(x => x.topic.endsWith(`${TP_DEV.toLowerCase()}/up`) && (JSON.parse(x.payload) as { fCnt?: number }).fCnt === tpFCnt), 'the SF12 uplink')
    await down(TP_DEV.toLowerCase(), { id: 'tp-too-big', fPort: 2, hex: '00'.repeat(60) })
    expect((await outcome(TP_DEV.toLowerCase(), 'tp-too-big')).body).toMatchObject({ reason: 'too-large' })
    await tpUplink()
  })

  it('ThingPark: confirmed → queued, sent, then acked by the next uplink\'s ACKbit; ValidityTime from the expiry', async () => {
    const dev = TP_DEV.toLowerCase()
    const before = tp.lrcRequests.length
    await down(dev, { id: 'tp-acked', fPort: 2, hex: '0a', confirmed: true, expiresAt: '2099-01-01T00:00:00Z' })
    const req = await until(() => tp.lrcRequests[before], 'LRC request')
    expect(req.params).toMatchObject({ Confirmed: '1', ValidityTime: '2099-01-01T00:00:00.000+00:00' })
    await outcome(dev, 'tp-acked', /\/down\/sent$/)
    await tpUplink()
    const acked = await outcome(dev, 'tp-acked', /\/down\/acked$/)
    expect(acked.body).toMatchObject({ ackedBy: { fCnt: tpFCnt } })
    expect(outcomesOf(dev, 'tp-acked')).toEqual(['down/queued', 'down/sent', 'down/acked'])
  })

  it('ThingPark: replace sends FlushDownlinkQueue and ends a request still in lorabridge\'s retries in replaced', async () => {
    const dev = TP_DEV.toLowerCase()
    const before = tp.lrcRequests.length
    tp.lrcScript.push({ status: 503 })
    await down(dev, { id: 'tp-retrying', fPort: 2, hex: '0d' })
    await until(() => tp.lrcRequests.length > before || undefined, 'the refused attempt')
    await until(() => pending(dev)?.some(p => p.id === 'tp-retrying' && p.state === 'held'), 'held for a retry')
    await down(dev, { id: 'tp-replacing', fPort: 2, hex: '0e', replace: true })
    const replaced = await outcome(dev, 'tp-retrying')
    expect(replaced.body).toMatchObject({ reason: 'replaced' })
    expect(replaced.body.detail).toContain('tp-replacing')
    expect((await outcome(dev, 'tp-replacing')).kind).toBe('down/queued')
    const sent = tp.lrcRequests.slice(before).map(r => [r.params.Payload, r.params.FlushDownlinkQueue])
    expect(sent).toEqual([['0d', undefined], ['0e', '1']])
    // No retry of the replaced one afterwards.
    await new Promise(resolve => setTimeout(resolve, 1600))
    expect(tp.lrcRequests.slice(before).length).toBe(2)
  })

  it('ThingPark: a missed confirmed downlink is not-acknowledged; one the LRC could not transmit is not-transmitted with its causes', async () => {
    const dev = TP_DEV.toLowerCase()
    tp.lose(TP_DEV)
    await down(dev, { id: 'tp-lost', fPort: 2, hex: '0b', confirmed: true })
    await outcome(dev, 'tp-lost', /\/down\/sent$/)
    await tpUplink()
    await tpUplink()
    expect((await outcome(dev, 'tp-lost', /\/down\/failed$/)).body).toMatchObject({ reason: 'not-acknowledged' })
    tp.failNext(TP_DEV, ['A3', 'D0', '00'])
    await down(dev, { id: 'tp-failed', fPort: 2, hex: '0c', confirmed: true })
    const failed = await outcome(dev, 'tp-failed', /\/down\/failed$/)
    expect(failed.body).toMatchObject({ reason: 'not-transmitted' })
    expect(failed.body.detail).toMatch(/A3/)
    expect(outcomesOf(dev, 'tp-failed')).toEqual(['down/queued', 'down/failed'])
  })
})
