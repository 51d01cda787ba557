/**
 * Vendors' codecs in a running daemon (issue 15, must-show 1): decoders assigned by rule files,
 * uplinks from the Conduit and ThingPark simulators decoded by the codec in each of its three forms,
 * downlinks given as `object` encoded by the device's codec (from an application and from a rule),
 * encoder failures ending in `down/failed` `encode-failed`, and a codec file's hot reload.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { copyFile, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, observe, until, type MqttClient } from './helpers/mqtt.js'
import { validateMessage } from './helpers/event-schemas.js'
import { ConduitSimulator, generatedDevice, type ReceivedDownlink } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const FIXTURES = new URL('./fixtures/codecs/', import.meta.url)

/** Device 0 of the simulated Conduit speaks the TLV codec (TS013), device 1 TTN v2; the ThingPark device ChirpStack v3. */
const TLV = generatedDevice(700)
const TTN = generatedDevice(701)
const TP_DEVICE = '0018B2000000C0DE'
const eui = (dashed: string): string => dashed.replace(/-/g, '')

const RULES = `decoders:
  - name: tlv
    when: { app: farm, devEui: "${eui(TLV.devEui)}" }
    codec: codecs/tlv-sensor.js
  - name: ttn
    when: { app: farm, devEui: "${eui(TTN.devEui)}", network: multitech }
    codec: codecs/ttn-v2.js
  - name: tank
    when: { app: farm, network: thingpark }
    codec: codecs/chirpstack-v3.js
rules:
  - name: slow-down-on-low-battery
    when: { app: farm, fPort: 85 }
    if: decoded.battery < 20
    downlink: '{ "id": "battery-" & $string(fCnt), "object": { "interval": 3600 } }'
`

describe('codecs in a running daemon', () => {
  let dir: string
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let sim: ConduitSimulator
  let tp: ThingParkSimulator
  const downlinks: ReceivedDownlink[] = []

  const after = (from: number, topic: string): Record<string, unknown> | undefined => {
    const m = seen.slice(from).find(x => x.topic === topic)
    return m === undefined ? undefined : JSON.parse(m.payload) as Record<string, unknown>
  }
  const outcome = async (from: number, devEui: string, id: string): Promise<{ kind: string, body: Record<string, unknown> }> => {
    const m = await until(() => seen.slice(from).find(x => /\/down\/(queued|failed|sent)$/.test(x.topic) && x.topic.includes(devEui) && (JSON.parse(x.payload) as { id: string }).id === id), `outcome of ${id}`)
    return { kind: m.topic.split('/').slice(-2).join('/'), body: JSON.parse(m.payload) as Record<string, unknown> }
  }
  const publish = async (topic: string, body: unknown): Promise<void> => {
    const app = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    await app.publishAsync(topic, JSON.stringify(body), { qos: 1 })
    await app.endAsync()
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-codecs-'))
    await mkdir(join(dir, 'rules', 'codecs'), { recursive: true })
    for (const f of ['tlv-sensor.js', 'ttn-v2.js', 'chirpstack-v3.js']) await copyFile(new URL(f, FIXTURES), join(dir, 'rules', 'codecs', f))
    await writeFile(join(dir, 'rules', 'devices.yaml'), RULES)
    // The LRC endpoint first, on a port the system picks (a port picked for later can be taken by then).
    tp = new ThingParkSimulator({ asUrl: 'http://127.0.0.1:1/tp', asId: AS_ID, asKey: KEY })
    const lrcUrl = await tp.startLrc({ port: 0, sentReportDelayMs: -1 })
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: [TLV.appEui], thingpark: ['tp'] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      rules: { dir: './rules' },
      thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKey: KEY, downlinkUrl: lrcUrl }] },
    }, { dir })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1.1', gwUuid: '00c0dec0-6156-cdd4-4523-264b523115c1', devices: [{ ...TLV }, { ...TTN }] })
    sim.on('downlink', (d: ReceivedDownlink) => downlinks.push(d))
    await sim.start()
    tp.retarget(`http://127.0.0.1:${t.port('http')}/tp`)
  })
  afterAll(async () => {
    await sim?.stop()
    await tp?.stop()
    await observer?.endAsync(true)
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('decodes a Conduit uplink with a TS013 codec: decoded is the codec\'s data, its warnings carried, recvTime the uplink\'s time', async () => {
    const from = seen.length
    const time = new Date('2026-12-01T07:30:00.000Z')
    // battery 100 %, 24.6 °C, 65 %RH, then a channel the codec does not know (a warning).
    await sim.uplink(0, { port: 85, data: Buffer.from('0175640367f6000468820c01', 'hex'), time })
    const up = await until(() => after(from, `lorabridge/farm/devices/${eui(TLV.devEui)}/up`), 'uplink')
    expect(up.decoded).toEqual({ battery: 100, temperature: 24.6, humidity: 65, receivedHour: 7 })
    expect(up.decodeWarnings).toEqual(['unknown channel 0xc type 0x1'])
    expect(up.decodeErrors).toBeUndefined()
    expect(validateMessage(`lorabridge/farm/devices/${eui(TLV.devEui)}/up`, up).ok).toBe(true)
  })

  it('publishes the codec\'s own errors as decodeErrors, and dead-letters them with their code', async () => {
    const from = seen.length
    await sim.uplink(0, { port: 86, data: Buffer.from('01', 'hex') })
    const up = await until(() => after(from, `lorabridge/farm/devices/${eui(TLV.devEui)}/up`), 'uplink')
    expect(up.decoded).toBeUndefined()
    expect(up.decodeErrors).toEqual(['unknown FPort 86'])
    const letter = await until(() => after(from, 'lorabridge/_bridge/rules/errors'), 'dead letter')
    expect(letter).toMatchObject({ rule: 'tlv', file: 'devices.yaml', stage: 'decode', code: 'LB_ERR_CODEC_ERRORS', devEui: eui(TLV.devEui) })
    expect(validateMessage('lorabridge/_bridge/rules/errors', letter).ok).toBe(true)
  })

  it('decodes with a TTN v2 Decoder(bytes, port) on another device of the same Conduit', async () => {
    const from = seen.length
    await sim.uplink(1, { port: 1, data: Buffer.from('012c01', 'hex') })
    const up = await until(() => after(from, `lorabridge/farm/devices/${eui(TTN.devEui)}/up`), 'uplink')
    expect(up.decoded).toEqual({ counter: 300, led: true })
  })

  it('decodes a ThingPark uplink with a ChirpStack v3 Decode(fPort, bytes, variables)', async () => {
    const from = seen.length
    expect((await tp.uplink({ devEui: TP_DEVICE, fPort: 4, fCntUp: 1, payloadHex: '0110' })).status).toBe(204)
    const up = await until(() => after(from, `lorabridge/farm/devices/${TP_DEVICE.toLowerCase()}/up`), 'uplink')
    expect(up.decoded).toEqual({ tankLevelCm: 272, fPort: 4, alarm: true })
  })

  it('encodes an application\'s object downlink with the device\'s TS013 codec: the Conduit receives the codec\'s bytes on its fPort', async () => {
    const from = seen.length
    const before = downlinks.length
    await publish(`lorabridge/farm/devices/${eui(TLV.devEui)}/down`, { id: 'every-20-min', object: { interval: 1200 } })
    expect((await outcome(from, eui(TLV.devEui), 'every-20-min')).kind).toBe('down/queued')
    const d = await until(() => downlinks.slice(before).find(x => x.devEui === TLV.devEui), 'downlink at the Conduit')
    expect(d.data).toEqual(Buffer.from([0xff, 0x03, 0xb0, 0x04]))
    expect(d.payload).toMatchObject({ port: 85 })
  })

  it('lets the request\'s fPort override the codec\'s, and encodes with TTN v2 Encoder(object, port)', async () => {
    const from = seen.length
    const before = downlinks.length
    await publish(`lorabridge/farm/devices/${eui(TTN.devEui)}/down`, { id: 'led-on', fPort: 9, object: { led: true } })
    expect((await outcome(from, eui(TTN.devEui), 'led-on')).kind).toBe('down/queued')
    const d = await until(() => downlinks.slice(before).find(x => x.devEui === TTN.devEui), 'downlink at the Conduit')
    expect(d.data).toEqual(Buffer.from([1, 9]))
    expect(d.payload).toMatchObject({ port: 9 })
  })

  it('signs and posts to the LRC what a ChirpStack v3 Encode gives for a ThingPark device', async () => {
    const from = seen.length
    const before = tp.lrcRequests.length
    await publish(`lorabridge/farm/devices/${TP_DEVICE.toLowerCase()}/down`, { id: 'threshold', fPort: 5, object: { threshold: 300 } })
    const req = await until(() => tp.lrcRequests[before], 'LRC request')
    expect(req).toMatchObject({ tokenValid: true, params: { DevEUI: TP_DEVICE, FPort: '5', Payload: '02012c' } })
    expect(['down/queued', 'down/sent']).toContain((await outcome(from, TP_DEVICE.toLowerCase(), 'threshold')).kind)
  })

  it('ends an object the codec refuses in down/failed encode-failed with the codec\'s messages; nothing reaches the Conduit', async () => {
    const from = seen.length
    const before = downlinks.length
    await publish(`lorabridge/farm/devices/${eui(TLV.devEui)}/down`, { id: 'too-often', object: { interval: 5 } })
    const o = await outcome(from, eui(TLV.devEui), 'too-often')
    expect(o.kind).toBe('down/failed')
    expect(o.body).toMatchObject({ reason: 'encode-failed', codecErrors: ['interval must be 60..64800 seconds'] })
    expect(o.body.detail).toContain('LB_ERR_CODEC_ERRORS')
    expect(validateMessage(`lorabridge/farm/devices/${eui(TLV.devEui)}/down/failed`, o.body).ok).toBe(true)
    // Without fPort in the request, a codec that names none fails too (TTN's Encoder takes the request's).
    await publish(`lorabridge/farm/devices/${eui(TTN.devEui)}/down`, { id: 'no-port', object: { led: false } })
    expect((await outcome(from, eui(TTN.devEui), 'no-port')).body).toMatchObject({ reason: 'encode-failed' })
    // A device without a codec: encode-failed, saying so.
    await publish('lorabridge/farm/devices/0018b2000000ffff/down', { id: 'nobody', object: { x: 1 } })
    expect((await outcome(from, '0018b2000000ffff', 'nobody')).body).toMatchObject({ reason: 'no-route' })
    // object together with hex, or an object that is not one, is invalid.
    await publish(`lorabridge/farm/devices/${eui(TLV.devEui)}/down`, [{ id: 'both', object: { interval: 1200 }, hex: '01', fPort: 1 }, { id: 'array', object: [1, 2] }])
    expect((await outcome(from, eui(TLV.devEui), 'both')).body).toMatchObject({ reason: 'invalid' })
    expect((await outcome(from, eui(TLV.devEui), 'array')).body).toMatchObject({ reason: 'invalid' })
    expect(downlinks.length).toBe(before)
  })

  it('encodes a rule\'s object downlink: low battery → interval 3600 at the Conduit', async () => {
    const from = seen.length
    const before = downlinks.length
    await sim.uplink(0, { port: 85, data: Buffer.from('01750a', 'hex') })
    const d = await until(() => downlinks.slice(before).find(x => x.devEui === TLV.devEui), 'downlink from the rule')
    expect(d.data).toEqual(Buffer.from([0xff, 0x03, 0x10, 0x0e]))
    const down = await until(() => after(from, `lorabridge/farm/devices/${eui(TLV.devEui)}/down`), 'the rule\'s request, echoed')
    expect(down).toMatchObject({ object: { interval: 3600 } })
  })

  it('reloads a codec file when it changes, and keeps the last good version when the new one does not load', async () => {
    const file = join(dir, 'rules', 'codecs', 'ttn-v2.js')
    const original = await readFile(file, 'utf8')
    await writeFile(file, original.replace('led: bytes[2] === 1', 'led: bytes[2] === 1, version: 2'))
    await until(async () => {
      const from = seen.length
      await sim.uplink(1, { port: 1, data: Buffer.from('000101', 'hex') })
      const up = await until(() => after(from, `lorabridge/farm/devices/${eui(TTN.devEui)}/up`), 'uplink')
      return (up.decoded as { version?: number }).version === 2 || undefined
    }, 'the new codec version', 5000)
    await writeFile(file, 'function Decoder (bytes, port) { return {')
    const status = await until(() => {
      const files = (t.daemon.rules.status().files as Array<{ ok: boolean, errors?: Array<{ code: string, message: string, line: number }> }>)
      return files.find(f => !f.ok)
    }, 'the failed reload reported')
    expect(status.errors?.[0]).toMatchObject({ code: 'LB_ERR_CODEC_LOAD', line: 7 })
    expect(status.errors?.[0]?.message).toMatch(/SyntaxError.*ttn-v2\.js:1:\d+/)
    const from = seen.length
    await sim.uplink(1, { port: 1, data: Buffer.from('000201', 'hex') })
    const up = await until(() => after(from, `lorabridge/farm/devices/${eui(TTN.devEui)}/up`), 'uplink')
    expect(up.decoded).toEqual({ counter: 2, led: true, version: 2 })
    await writeFile(file, original)
  })

  it('counts every codec call per codec, operation and result, in the metrics and the rules status', async () => {
    const text = await (await fetch(`http://127.0.0.1:${t.port('http')}/metrics`)).text()
    expect(text).toMatch(/lorabridge_codec_calls_total\{codec="codecs\/tlv-sensor\.js",operation="decodeUplink",result="ok"\} [1-9]/)
    expect(text).toMatch(/lorabridge_codec_calls_total\{codec="codecs\/tlv-sensor\.js",operation="decodeUplink",result="LB_ERR_CODEC_ERRORS"\} 1/)
    expect(text).toMatch(/lorabridge_codec_calls_total\{codec="codecs\/tlv-sensor\.js",operation="encodeDownlink",result="ok"\} [1-9]/)
    const decoders = t.daemon.rules.status().decoders as Array<{ name: string, codec?: Record<string, unknown> }>
    expect(decoders.find(d => d.name === 'tank')?.codec).toMatchObject({ path: 'codecs/chirpstack-v3.js', forms: ['chirpstack-v3'], encodes: true, calls: 2, ok: 2, failed: 0 })
  })
})
