/**
 * The ThingPark uplink endpoint against real HTTP requests (issue must-show 2, 3, 6 and the report
 * mapping): token-verified reports in typed JSON, untyped JSON and XML, refusals with their
 * status and counter, and bad input that leaves the daemon unaffected.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { canonicalQuery, bodyElementCandidates, sha256Hex } from '../src/thingpark/token.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const PATH = '/thingpark/tp-eu'
const CONFIG = {
  applications: [{ name: 'farm', match: { thingpark: ['tp-eu'] } }],
  mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
  thingpark: { connections: [{ name: 'tp-eu', path: PATH, asId: AS_ID, asKeyEnv: 'TP_EU_KEY', downlinkUrl: 'http://127.0.0.1:9/unused', maxTimeDeviation: 60 }] },
}
const ENV = { TP_EU_KEY: KEY }

/** The frame of the document's computed uplink vector (§2.5), as ThingPark sends it in each content type. */
const FRAME = {
  Time: '2024-05-01T12:00:00.1+02:00', DevEUI: '0018B20000000B20', FPort: 2, FCntUp: 42, ADRbit: 1, MType: 4, FCntDn: 7,
  payload_hex: '0102abcd', mic_hex: 'edf64cd8', Lrcid: '000000CC', LrrRSSI: -67, LrrSNR: 9.25, SpFact: 8, SubBand: 'G1', Channel: 'LC2',
  DevLrrCnt: 2, Lrrid: '10000036', Late: 0, LrrLAT: 47.438381, LrrLON: 18.926418,
  Lrrs: { Lrr: [{ Lrrid: '10000036', Chain: 0, LrrRSSI: -67, LrrSNR: 9.25, LrrESP: -67.514969 }, { Lrrid: '080E00C8', Chain: 0, LrrRSSI: -118, LrrSNR: -4, LrrESP: -123.455406 }] },
  CustomerID: '100000001', CustomerData: { alr: { pro: 'ADRF/DEMO', ver: '2' } }, ModelCfg: '0', DevAddr: '05AE3D2F', Frequency: 868.1, DynamicClass: 'A',
}

function untyped (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(untyped)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'CustomerData' ? x : untyped(x)]))
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(6)) : v
}

function toXml (root: string, report: Record<string, unknown>): string {
  const el = (k: string, v: unknown): string => {
    if (k === 'CustomerData') return `<${k}>${JSON.stringify(v)}</${k}>`
    if (k === 'Lrrs') return `<Lrrs>${((v as { Lrr: Array<Record<string, unknown>> }).Lrr).map(l => `<Lrr>${Object.entries(l).map(([a, b]) => el(a, b)).join('')}</Lrr>`).join('')}</Lrrs>`
    return `<${k}>${String(v)}</${k}>`
  }
  return `<?xml version="1.0" encoding="utf-8"?>\n<${root} xmlns="http://uri.actility.com/lora">${Object.entries(untyped(report) as Record<string, unknown>).map(([k, v]) => el(k, v)).join('')}</${root}>`
}

interface Sent { status: number, json: Record<string, unknown> | undefined }

async function send (base: string, root: string, report: Record<string, unknown>, o: { type?: 'json' | 'untyped' | 'xml', time?: Date, token?: string | null, drop?: string[], body?: string | Buffer, contentType?: string } = {}): Promise<Sent> {
  const devEui = root === 'DevEUI_location' ? String(report.DevEUI).toLowerCase() : String(report.DevEUI)
  const q: Record<string, string> = {
    LrnDevEui: devEui,
    LrnFPort: String(report.FPort ?? 0),
    LrnInfos: `${AS_ID}-1-123456`,
    AS_ID,
    Time: (o.time ?? new Date()).toISOString().replace('Z', '+00:00'),
  }
  const token = sha256Hex(bodyElementCandidates(root, report)[0]! + canonicalQuery(q)! + KEY)
  for (const d of o.drop ?? []) delete q[d]
  const qs = Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&') + (o.token === null ? '' : `&Token=${o.token ?? token}`)
  const type = o.type ?? 'json'
  const body = o.body ?? (type === 'xml' ? toXml(root, report) : JSON.stringify({ [root]: type === 'untyped' ? untyped(report) : report }))
  const res = await fetch(`${base}${PATH}?${qs}`, { method: 'POST', body, headers: { 'content-type': o.contentType ?? (type === 'xml' ? 'text/xml' : 'application/json') } })
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) as Record<string, unknown> }
}

describe('the same frame as typed JSON, untyped JSON and XML', () => {
  it('gives byte-identical normalized output', async () => {
    const fixed = new Date('2024-05-01T10:00:01.000Z')
    const outputs: string[] = []
    for (const type of ['json', 'untyped', 'xml'] as const) {
      const t = await startTestDaemon(CONFIG, { now: () => fixed, env: ENV })
      try {
        const { client, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`)
        const r = await send(`http://127.0.0.1:${t.port('http')}`, 'DevEUI_uplink', FRAME, { type, time: fixed })
        expect(r.status, JSON.stringify(r.json)).toBe(204)
        const m = await until(() => seen.find(x => x.topic === 'lorabridge/farm/devices/0018b20000000b20/up'), `${type} uplink`)
        outputs.push(m.payload)
        await client.endAsync()
      } finally {
        await t.stop()
      }
    }
    expect(outputs[1]).toBe(outputs[0])
    expect(outputs[2]).toBe(outputs[0])
    expect(JSON.parse(outputs[0]!)).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      app: 'farm',
      devEui: '0018b20000000b20',
      devAddr: '05ae3d2f',
      fPort: 2,
      fCnt: 42,
      confirmed: true,
      adr: true,
      data: 'AQKrzQ==',
      hex: '0102abcd',
      time: '2024-05-01T10:00:00.100Z',
      receivedAt: '2024-05-01T10:00:01.000Z',
      radio: { frequency: 868.1, spreadingFactor: 8, dataRate: 'SF8' },
      gateways: [{ id: '10000036', rssi: -67, snr: 9.25 }, { id: '080E00C8', rssi: -118, snr: -4 }],
      network: { type: 'thingpark', connection: 'tp-eu', asId: AS_ID, customerId: '100000001', lrcId: '000000CC' },
    })
  })
})

describe('ThingPark endpoint', () => {
  let t: TestDaemon
  let base: string
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let fCnt = 100

  const frame = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...FRAME, FCntUp: fCnt++, ...extra })
  const published = (): string[] => seen.filter(m => m.topic.includes('/devices/')).map(m => m.topic)
  const errors = (code: string): Promise<number> => t.counter('ingestErrors', { network: 'thingpark', code })

  beforeAll(async () => {
    t = await startTestDaemon(CONFIG, { env: ENV })
    base = `http://127.0.0.1:${t.port('http')}`
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await observer?.endAsync(true)
    await t?.stop()
  })

  it('answers 204 only after the uplink is published', async () => {
    const from = seen.length
    const r = await send(base, 'DevEUI_uplink', frame())
    expect(r.status).toBe(204)
    // Published before the answer: it is already on its way to subscribers.
    await until(() => seen.slice(from).some(m => m.topic.endsWith('/up')), 'uplink')
  })

  it.each([
    ['a wrong token', { token: 'ab'.repeat(32) }, 'LB_ERR_THINGPARK_TOKEN'],
    ['no token', { token: null }, 'LB_ERR_THINGPARK_TOKEN'],
    ['a token computed with another key', { token: sha256Hex('x') }, 'LB_ERR_THINGPARK_TOKEN'],
    ['a stale Time (5 minutes old)', { time: new Date(Date.now() - 300_000) }, 'LB_ERR_THINGPARK_TIME'],
    ['a Time from the future', { time: new Date(Date.now() + 300_000) }, 'LB_ERR_THINGPARK_TIME'],
  ] as Array<[string, Parameters<typeof send>[3], string]>)('refuses %s with 401, counted, nothing published', async (_name, o, code) => {
    const before = await errors(code)
    const from = published().length
    const r = await send(base, 'DevEUI_uplink', frame(), o)
    expect(r.status).toBe(401)
    expect(r.json?.error).toBe(code)
    expect(await errors(code)).toBe(before + 1)
    await sleep(50)
    expect(published().slice(from)).toEqual([])
  })

  it('refuses a replayed token with 401, counted, published once', async () => {
    const report = frame()
    const time = new Date()
    const before = await errors('LB_ERR_THINGPARK_REPLAY')
    const from = published().length
    expect((await send(base, 'DevEUI_uplink', report, { time })).status).toBe(204)
    const again = await send(base, 'DevEUI_uplink', report, { time })
    expect(again.status).toBe(401)
    expect(again.json?.error).toBe('LB_ERR_THINGPARK_REPLAY')
    expect(await errors('LB_ERR_THINGPARK_REPLAY')).toBe(before + 1)
    await sleep(50)
    expect(published().slice(from).length).toBe(1)
  })

  it('maps notification → status, location → location, a join request → join', async () => {
    let from = seen.length
    expect((await send(base, 'DevEUI_notification', { Time: '2019-01-15T11:31:19.588+02:00', DevEUI: '0018B20000000B20', Lrcid: '00000602', DevAddr: '007E074F', Type: 'devstatusans', Var1: '200', Var2: '-5', CustomerID: '100000001', FCntDn: '0' })).status).toBe(204)
    const status = await until(() => seen.slice(from).find(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/status'), 'status')
    expect(JSON.parse(status.payload)).toMatchObject({ type: 'devstatusans', battery: 200, margin: -5, devAddr: '007e074f', fCntDn: 0, network: { type: 'thingpark', connection: 'tp-eu' } })

    from = seen.length
    expect((await send(base, 'DevEUI_location', { DevEUI: '0018b20000000b20', DevAddr: '0405F519', Lrcid: '00000065', NwGeolocAlgo: 2, NwGeolocAlgoUsed: 0, Time: '2020-07-09T16:06:38.49+02:00', DevLocTime: '2020-01-27T10:00:43.336+01:00', DevLAT: 10.11212, DevLON: 7.44464, DevAlt: 50, DevLocRadius: 100, DevAltRadius: 50, DevUlFCntUpUsed: 7010, CustomerID: '100000001' })).status).toBe(204)
    const loc = await until(() => seen.slice(from).find(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/location'), 'location')
    expect(JSON.parse(loc.payload)).toMatchObject({ latitude: 10.11212, longitude: 7.44464, altitude: 50, radius: 100, altitudeRadius: 50, algorithm: 0, fCnt: 7010, time: '2020-01-27T09:00:43.336Z' })

    from = seen.length
    expect((await send(base, 'DevEUI_uplink', { Time: '2020-06-05T14:22:56.396+02:00', DevEUI: '0018B20000000B20', rawJoinRequest: '003246524144b21800200b000000b2180052ff36f5e390', Lrrid: '3C200E92', Chain: 1, Channel: 'LC3', Spfact: 12, SubBand: 'G0', MType: 0, mic_hex: '36f5e390', CustomerID: '100000001', Lrrs: { Lrr: [{ Lrrid: '3C200E92', LrrRSSI: -56.0, LrrSNR: 8.75, LrrESP: -56.543648 }] } })).status).toBe(204)
    const join = await until(() => seen.slice(from).find(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/join'), 'join')
    expect(JSON.parse(join.payload)).toMatchObject({ joinEui: '00-18-b2-44-41-52-46-32', gateways: [{ id: '3C200E92', rssi: -56, snr: 8.75 }] })
  })

  it('accepts an unknown report type with 204, counts it and publishes nothing', async () => {
    const before = await t.counter('ingestIgnored', { network: 'thingpark', reason: 'unknown-report' })
    const from = published().length
    expect((await send(base, 'DevEUI_something_new', { DevEUI: '0018B20000000B20', CustomerID: '100000001', Time: '2024-05-01T12:00:00+02:00' })).status).toBe(204)
    expect(await t.counter('ingestIgnored', { network: 'thingpark', reason: 'unknown-report' })).toBe(before + 1)
    await sleep(50)
    expect(published().slice(from)).toEqual([])
  })

  const laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><DevEUI_uplink xmlns="http://uri.actility.com/lora"><DevEUI>0018B20000000B20</DevEUI><payload_hex>&lol9;</payload_hex></DevEUI_uplink>'
  it.each([
    ['a billion-laughs XML', { body: laughs, type: 'xml' }, 400, 'LB_ERR_THINGPARK_BODY'],
    ['a 10 MB body', { body: Buffer.alloc(10 * 1024 * 1024, 0x20) }, 413, 'LB_ERR_THINGPARK_TOO_LARGE'],
    // Signed over what it carries, so the token holds and the types are what is wrong.
    ['JSON with wrong types', { override: { FCntUp: { n: 1 }, FPort: 'two' } }, 400, 'LB_ERR_THINGPARK_PAYLOAD'],
    ['a body without a known root', { body: JSON.stringify({ uplink: FRAME }) }, 400, 'LB_ERR_THINGPARK_BODY'],
    ['a body with two roots', { body: JSON.stringify({ DevEUI_uplink: FRAME, DevEUI_location: {} }) }, 400, 'LB_ERR_THINGPARK_BODY'],
    ['malformed JSON', { body: '{"DevEUI_uplink": {' }, 400, 'LB_ERR_THINGPARK_BODY'],
    ['malformed XML', { body: '<DevEUI_uplink><DevEUI>', type: 'xml' }, 400, 'LB_ERR_THINGPARK_BODY'],
    ['a query without LrnDevEui', { drop: ['LrnDevEui'] }, 400, 'LB_ERR_THINGPARK_QUERY'],
    ['a Content-Type that is neither JSON nor XML', { contentType: 'text/plain' }, 415, 'LB_ERR_THINGPARK_CONTENT_TYPE'],
  ] as Array<[string, Parameters<typeof send>[3] & { override?: Record<string, unknown> }, number, string]>)('answers %s with its status and code, counted, and keeps working', async (_name, o, status, code) => {
    const before = await errors(code)
    const from = published().length
    const r = await send(base, 'DevEUI_uplink', frame(o?.override), o)
    expect(r.status).toBe(status)
    expect(r.json?.error).toBe(code)
    expect(await errors(code)).toBe(before + 1)
    await sleep(30)
    expect(published().slice(from)).toEqual([])
    expect((await send(base, 'DevEUI_uplink', frame())).status).toBe(204)
  })

  it('a DevEUI_downlink_Sent for a downlink lorabridge did not send is still reported, under its CorrelationID', async () => {
    const from = seen.length
    expect((await send(base, 'DevEUI_downlink_Sent', { Time: '2019-08-22T16:48:02.000+02:00', DevEUI: '0018B20000000B20', FPort: 1, FCntDn: 47, FCntUp: 39, Lrcid: '0000000F', DeliveryStatus: 0, DeliveryFailedCause1: 'B0', DeliveryFailedCause2: '00', DeliveryFailedCause3: '00', CustomerID: '100000001', TransmissionSlot: 1, CorrelationID: '4434704901C7450B' })).status).toBe(204)
    const failed = await until(() => seen.slice(from).find(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/down/failed'), 'down/failed')
    expect(JSON.parse(failed.payload)).toMatchObject({ id: '4434704901C7450B', reason: 'not-transmitted', detail: 'RX1: B0 too late', fCntDn: 47 })
  })
})
