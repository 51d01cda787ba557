/**
 * The published JSON Schemas (docs/schemas/, from src/model/event-schemas.ts) against a real
 * daemon (issue #8): simulated Conduits (app-connect v1.0, v1.1, 1.1.1; base64 and hex; MQTT and
 * HTTP) and a simulated ThingPark (reports and the LRC's downlink endpoint) drive every kind of
 * event, downlinks end in every kind of outcome, a rule file produces dead letters; whatever
 * appears under `lorabridge/#` must match the schema of its topic, and every schema must be met.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { freePort } from './helpers/redis-server.js'
import { observe, until, type MqttClient } from './helpers/mqtt.js'
import { schemaForTopic, schemaViolations, validateMessage } from './helpers/event-schemas.js'
import { ConduitSimulator, generatedDevice, type AppConnectVersion } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'
import { correlationIdFor } from '../src/thingpark/downlink.js'
import { parseDownlinkRequests } from '../src/core/downlink-request.js'
import { EVENT_SCHEMAS, type EventSchemaName } from '../src/model/event-schemas.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const FARM_APPEUI = '16-ea-76-f6-ab-66-3d-80'
const OTHER_APPEUI = '70-b3-d5-7e-d0-00-00-01'
const TP_DEV = '0018B20000000B21'
const TP_TOPIC = 'lorabridge/farm/devices/0018b20000000b21'
/** Requests published malformed on purpose: the daemon answers them with down/failed `invalid`, and the schema must refuse them too. */
const NOT_VALID = 'not-valid'

const RULES = `decoders:
  - name: level
    when: { app: farm, fPort: 2 }
    decode: |
      { "level": $u8(bytes, 0) }
  - name: failing-decoder
    when: { app: farm, fPort: 8 }
    decode: $error("this decoder always fails")
rules:
  - name: answer-conduit-uplinks
    on: up
    when: { app: farm, fPort: 2, network: multitech }
    downlink: |
      { "fPort": 3, "hex": $hex([1, decoded.level]) }
  - name: failing-condition
    on: up
    when: { fPort: 9 }
    if: $error("this condition always fails")
    downlink: '{ "fPort": 1, "hex": "00" }'
  - name: invalid-downlink
    on: join
    when: { app: farm }
    downlink: '{ "fPort": 999, "hex": "00" }'
`
const BROKEN = `rules:
  - name: does-not-compile
    on: up
    if: decoded.level >
    downlink: '{ "fPort": 1, "hex": "00" }'
`

describe('every normalized topic against its JSON Schema', () => {
  let dir: string
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let tp: ThingParkSimulator
  const sims: ConduitSimulator[] = []
  let gw = 0

  const payloads = (topic: string | RegExp): Array<Record<string, unknown>> =>
    seen.filter(m => typeof topic === 'string' ? m.topic === topic : topic.test(m.topic)).map(m => JSON.parse(m.payload) as Record<string, unknown>)
  const waitFor = (topic: string | RegExp, pred: (e: Record<string, unknown>) => boolean = () => true, what = String(topic)): Promise<Record<string, unknown>> =>
    until(() => payloads(topic).find(pred), what, 10_000)
  const conduit = async (version: AppConnectVersion, transport: 'mqtt' | 'http', hex: boolean, appEui = FARM_APPEUI): Promise<ConduitSimulator> => {
    gw++
    const sim = new ConduitSimulator({
      url: transport === 'http' ? `http://127.0.0.1:${t.port('http')}` : `mqtt://127.0.0.1:${t.port('mqtt')}`,
      version,
      encodeHex: hex,
      gwUuid: `${String(gw).padStart(6, '0')}5c6156cdd44523264b523115c1`,
      gatewayEuis: [`00-80-00-00-a0-00-${String(gw).padStart(2, '0')}-4d`],
      devices: [generatedDevice(700 + gw, appEui)],
      httpPollIntervalMs: 3_600_000, // polled explicitly
      httpRetryDelayMs: 50,
    })
    sims.push(sim)
    await sim.start()
    return sim
  }
  const topicOf = (sim: ConduitSimulator, app = 'farm'): string => `lorabridge/${app}/devices/${sim.devices[0]!.devEui.replace(/-/g, '')}`

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-schemas-'))
    await mkdir(join(dir, 'rules'))
    await writeFile(join(dir, 'rules', 'schemas.yaml'), RULES)
    await writeFile(join(dir, 'rules', 'broken.yaml'), BROKEN)
    const lrcPort = await freePort()
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: [FARM_APPEUI], thingpark: ['tp-eu'] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      events: { includeRaw: true },
      rules: { dir: './rules', watch: false },
      thingpark: {
        connections: [{ name: 'tp-eu', path: '/thingpark/tp-eu', asId: AS_ID, asKey: KEY, downlinkUrl: `http://127.0.0.1:${lrcPort}/thingpark/lrc/rest/downlink` }],
        downlink: { maxAttempts: 2, initialBackoffMs: 20, maxBackoffMs: 50, timeoutMs: 2000 },
      },
    }, { dir })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    tp = new ThingParkSimulator({ asUrl: `http://127.0.0.1:${t.port('http')}/thingpark/tp-eu`, asId: AS_ID, asKey: KEY })
    await tp.startLrc({ port: lrcPort, sentReportDelayMs: 20, acknowledge: true })
  })
  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await observer?.endAsync(true)
    await tp?.stop()
    await t?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('Conduits of every version, encoding and transport: uplinks, joins, downlinks, clears, presence', async () => {
    const matrix = [
      { version: '1.0', transport: 'mqtt', hex: false },
      { version: '1.1', transport: 'mqtt', hex: true },
      { version: '1.1.1', transport: 'mqtt', hex: false },
      { version: '1.1', transport: 'http', hex: true },
      { version: '1.0', transport: 'http', hex: false },
    ] as const
    for (const [i, m] of matrix.entries()) {
      const sim = await conduit(m.version, m.transport, m.hex)
      await sim.uplink(0, { port: 2, data: Buffer.from([0x52, 0x0c, 0xe4]) })
      await waitFor(`${topicOf(sim)}/up`)
      await sim.join(0)
      await waitFor(`${topicOf(sim)}/join`)
      await sim.uplink(0, { port: 5 })
      await operatorDown(`${topicOf(sim)}/down`, { id: `conduit-${i}`, fPort: 4, hex: 'a1b2', confirmed: true })
      const queued = (): Record<string, unknown> | undefined => payloads(`${topicOf(sim)}/down/queued`).find(e => e.id === `conduit-${i}`)
      // An HTTP Conduit fetches its downlinks (here also the rule's answer to its uplink) when it polls.
      if (m.transport === 'http') await until(async () => { await sim.pollDownlinks(); return queued() }, `conduit-${i} fetched`, 10_000)
      else await until(queued, `conduit-${i} queued`, 10_000)
    }
    // A device outside any application mapping: `default`.
    const other = await conduit('1.1', 'mqtt', false, OTHER_APPEUI)
    await other.uplink(0, { port: 1 })
    await waitFor(`${topicOf(other, 'default')}/up`)

    // clear: queued where app-connect has one (1.1.1), unsupported on 1.1 over MQTT; over HTTP it
    // drops what waits for the Conduit: down/failed `flushed`.
    const [, v11, v111, http11] = sims as [ConduitSimulator, ConduitSimulator, ConduitSimulator, ConduitSimulator]
    await operatorDown(`${topicOf(v111)}/clear`, {})
    await waitFor(`${topicOf(v111)}/down/queued`, e => e.command === 'clear')
    await operatorDown(`${topicOf(v11)}/clear`, { id: 'clear-v11' })
    await waitFor(`${topicOf(v11)}/down/failed`, e => e.id === 'clear-v11' && e.reason === 'unsupported')
    await operatorDown(`${topicOf(http11)}/down`, { id: 'to-flush', fPort: 1, hex: 'ff' })
    await until(() => t.daemon.multitech.queue.size(http11.devices[0]!.devEui.replace(/-/g, '')) >= 1 || undefined, 'a pending downlink')
    await operatorDown(`${topicOf(http11)}/clear`, { id: 'clear-http' })
    await waitFor(`${topicOf(http11)}/down/failed`, e => e.id === 'to-flush' && e.reason === 'flushed')

    // Presence: offline by app-connect's close, and by a socket that died.
    const status = (sim: ConduitSimulator): RegExp => new RegExp(`^lorabridge/gateways/${sim.gwUuid.replace(/-/g, '').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-').toLowerCase()}/status$`)
    await v111.close()
    await waitFor(status(v111), e => e.reason === 'close')
    v11.drop()
    await waitFor(status(v11), e => e.reason === 'connection-lost')
  })

  it('ThingPark: uplinks in JSON, untyped JSON and XML, a join request, notifications, a location', async () => {
    let fCnt = 1
    for (const contentType of ['json', 'json-untyped', 'xml'] as const) {
      const r = await tp.uplink({ devEui: TP_DEV, fPort: 2, fCntUp: fCnt++, payloadHex: '520ce4', lrrs: [{ Lrrid: '10000036', LrrRSSI: -67, LrrSNR: 9 }, { Lrrid: '1000004A', LrrRSSI: -98, LrrSNR: -3.5 }] }, { contentType })
      // The answer's body names the refusal (a 401 was seen once under parallel load, not since).
      expect(r.status, `${contentType}: ${r.body} ${r.url}`).toBe(204)
    }
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 9, fCntUp: fCnt++, payloadHex: '00', confirmed: true })).status).toBe(204)
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 8, fCntUp: fCnt++, payloadHex: '01' })).status).toBe(204)
    expect((await tp.joinRequest({ devEui: TP_DEV, joinEui: '70B3D57ED0000001' })).status).toBe(204)
    // A notification's token covers only CustomerID, DevEUI and the query, whose Time has
    // millisecond precision: two posted within one millisecond share a token, and the second is
    // refused as a replay (docs/thingpark.md#replays). ThingPark's own are events apart; these get
    // distinct Times (a 401 here, 1 run in 5 under load, was that).
    const base = Date.now()
    for (const [i, type] of (['reset', 'devstatusans', 'join'] as const).entries()) {
      const r = await tp.notification({ devEui: TP_DEV, type }, { time: new Date(base + i * 5) })
      expect(r.status, `${type}: ${r.body}`).toBe(204)
    }
    expect((await tp.location({ devEui: TP_DEV, lat: 48.874931, lon: 2.333673, alt: 35, radius: 120 })).status).toBe(204)
    await until(() => payloads(`${TP_TOPIC}/up`).length >= 5 || undefined, 'five uplinks')
    await waitFor(`${TP_TOPIC}/join`)
    await until(() => payloads(`${TP_TOPIC}/status`).length >= 3 || undefined, 'three notifications')
    await waitFor(`${TP_TOPIC}/location`)
  })

  it('ThingPark downlinks: queued then sent, refused by the LRC, rejected or not transmitted later, clear unsupported', async () => {
    await operatorDown(`${TP_TOPIC}/down`, { id: 'tp-1', fPort: 5, data: 'obLD', flush: true })
    await waitFor(`${TP_TOPIC}/down/queued`, e => e.id === 'tp-1')
    await waitFor(`${TP_TOPIC}/down/sent`, e => e.id === 'tp-1')
    tp.lrcScript.push({ status: 400, body: '<html><body>Invalid FPort</body></html>' })
    await operatorDown(`${TP_TOPIC}/down`, [{ id: 'tp-2', fPort: 1, hex: '00' }])
    await waitFor(`${TP_TOPIC}/down/failed`, e => e.id === 'tp-2' && e.reason === 'lrc-refused')
    expect((await tp.downlinkRejected({ devEui: TP_DEV, fPort: 5, cause: 'FCntDn overflow', correlationId: correlationIdFor('tp-1') })).status).toBe(204)
    await waitFor(`${TP_TOPIC}/down/failed`, e => e.id === 'tp-1' && e.reason === 'rejected')
    expect((await tp.downlinkSent({ devEui: TP_DEV, fPort: 5, fCntDn: 41, deliveryStatus: 0, correlationId: correlationIdFor('tp-1') })).status).toBe(204)
    await waitFor(`${TP_TOPIC}/down/failed`, e => e.id === 'tp-1' && e.reason === 'not-transmitted')
    await operatorDown(`${TP_TOPIC}/clear`, { id: 'tp-clear' })
    await waitFor(`${TP_TOPIC}/down/failed`, e => e.id === 'tp-clear' && e.reason === 'unsupported')
    // A confirmed downlink, acknowledged by the device's next uplink; the pending list meanwhile.
    await operatorDown(`${TP_TOPIC}/down`, { id: 'tp-ack', fPort: 5, hex: '01', confirmed: true, ttlSeconds: 600 })
    await waitFor(`${TP_TOPIC}/down/sent`, e => e.id === 'tp-ack')
    await waitFor(`${TP_TOPIC}/down/pending`, e => (e.pending as Array<{ id: string }>).some(p => p.id === 'tp-ack'))
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 8, fCntUp: 900, payloadHex: '02' })).status).toBe(204)
    await waitFor(`${TP_TOPIC}/down/acked`, e => e.id === 'tp-ack')
    await waitFor(`${TP_TOPIC}/down/pending`, e => (e.pending as unknown[]).length === 0)
  })

  it('requests without a route or malformed, and the rules\' dead letters', async () => {
    await operatorDown('lorabridge/farm/devices/0123456789abcdef/down', { id: 'nowhere', fPort: 1, hex: '00' })
    await waitFor('lorabridge/farm/devices/0123456789abcdef/down/failed', e => e.reason === 'no-route')
    await operatorDown(`${TP_TOPIC}/down`, [{ id: `${NOT_VALID}-port`, fPort: 300, hex: '00' }, { id: `${NOT_VALID}-both`, fPort: 1, hex: '00', data: 'AA==' }])
    await until(() => payloads(`${TP_TOPIC}/down/failed`).filter(e => e.reason === 'invalid').length >= 2 || undefined, 'two invalid')
    // The ThingPark uplinks on FPort 8 and 9 and the joins made the rules fail.
    for (const stage of ['decode', 'if', 'downlink']) await waitFor('lorabridge/_bridge/rules/errors', e => e.stage === stage, `a ${stage} dead letter`)
    // The rules status is republished with the counters (at most every 5 s).
    await waitFor('lorabridge/_bridge/rules', e => (e.rules as Array<{ counters: { failed: number } }>).some(r => r.counters.failed > 0), 'counters in the rules status')
  })

  it('every message observed matches the schema of its topic', () => {
    const deliberate = (m: { topic: string, payload: string }): boolean => m.topic.endsWith('/down') && m.payload.includes(NOT_VALID)
    expect(schemaViolations(seen.filter(m => !deliberate(m)))).toEqual([])
    // What the daemon refused as invalid, the schema refuses too.
    const refused = seen.filter(deliberate)
    expect(refused.length).toBe(1)
    expect(validateMessage(refused[0]!.topic, refused[0]!.payload).errors).toEqual(expect.arrayContaining(['/0/fPort must be <= 255', '/1/hex must be absent here']))
  })

  it('met every schema, and the variants within them', () => {
    const met = new Set(seen.map(m => schemaForTopic(m.topic)))
    expect([...met].filter(s => s !== undefined).sort()).toEqual(Object.keys(EVENT_SCHEMAS).sort())
    expect(seen.filter(m => schemaForTopic(m.topic) === undefined).map(m => m.topic)).toEqual([])

    const ups = payloads(/\/up$/)
    expect(new Set(ups.map(u => (u.network as { type: string }).type))).toEqual(new Set(['multitech', 'thingpark']))
    expect(new Set(ups.filter(u => (u.network as { type: string }).type === 'multitech').map(u => `${String((u.network as { protocol: string }).protocol)}/${String((u.network as { transport: string }).transport)}`)))
      .toEqual(new Set(['1.0/mqtt', '1.1/mqtt', '1.1.1/mqtt', '1.1/http', '1.0/http']))
    expect(ups.some(u => u.decoded !== undefined && u.raw !== undefined && u.app === 'farm')).toBe(true)
    expect(ups.some(u => u.app === 'default')).toBe(true)
    expect(new Set(payloads(/\/status$/).filter(s => s.type !== undefined).map(s => s.type))).toEqual(new Set(['reset', 'devstatusans', 'join']))
    expect([...new Set(payloads(/\/down\/failed$/).map(f => f.reason))]).toEqual(expect.arrayContaining(['unsupported', 'flushed', 'lrc-refused', 'rejected', 'not-transmitted', 'no-route', 'invalid']))
    expect(new Set(payloads(/^lorabridge\/gateways\//).map(g => g.online))).toEqual(new Set([true, false]))
    expect(payloads('lorabridge/_bridge/rules').some(s => (s.files as Array<{ ok: boolean }>).some(f => !f.ok))).toBe(true)
    // Rules publish their downlinks on the device's `down` topic too.
    expect(payloads(/\/down$/).some(d => /^[0-9a-f]{8}-[0-9a-f]{4}-8/.test(String(d.id)))).toBe(true)
  })

  it('refuses what the contract does not allow, saying where', () => {
    const up = payloads(`${TP_TOPIC}/up`)[0]!
    const topic = `${TP_TOPIC}/up`
    expect(validateMessage(topic, up).ok).toBe(true)
    expect(validateMessage(topic, { ...up, devEui: '0018B20000000B21' }).errors).toEqual(['/devEui must match ^[0-9a-f]{16}$'])
    const { id, ...withoutId } = up
    expect(id).toBeDefined()
    expect(validateMessage(topic, withoutId).errors).toEqual(['(root) lacks "id"'])
    expect(validateMessage(topic, { ...up, rssi: -67 }).errors).toEqual(['(root) has an unexpected field "rssi"'])
    expect(validateMessage(topic, { ...up, receivedAt: '2026-01-01 10:00:00' }).ok).toBe(false)
    expect(validateMessage(topic, { ...up, decoded: null, raw: undefined }).ok).toBe(true) // decoded: any JSON value
    expect(validateMessage(topic, { ...up, gateways: [] }).errors).toEqual(['/gateways must NOT have fewer than 1 items'])

    const failed = payloads(`${TP_TOPIC}/down/failed`)[0]!
    expect(validateMessage(`${TP_TOPIC}/down/failed`, { ...failed, reason: 'lost' }).ok).toBe(false)
    const { detail, ...withoutDetail } = failed
    expect(detail).toBeDefined()
    expect(validateMessage(`${TP_TOPIC}/down/failed`, withoutDetail).errors).toEqual(['(root) lacks "detail"'])
    expect(validateMessage(`${TP_TOPIC}/down/queued`, failed).ok).toBe(false) // reason and detail only on failures

    const gateway = seen.find(m => m.topic.startsWith('lorabridge/gateways/'))!
    expect(validateMessage(gateway.topic, { ...JSON.parse(gateway.payload) as object, online: true, reason: 'close' }).ok).toBe(false)
    expect(validateMessage(`${TP_TOPIC}/clear`, '{"flush":true}').errors).toEqual(['(root) has an unexpected field "flush"'])
    expect(validateMessage(`${TP_TOPIC}/down`, 'not json').errors[0]).toMatch(/^not JSON/)
    expect(validateMessage('lorabridge/farm/alerts/x', '{}').errors).toEqual(['no schema for this topic'])
    expect(validateMessage('lorabridge/farm/devices/0123456789abcdef/up', up, { root: 'other' }).schema).toBeUndefined()
  })

  it('accepts exactly the DownlinkRequests the daemon accepts', () => {
    const dev = '0123456789abcdef'
    const samples: unknown[] = [
      { fPort: 1, hex: '00' }, { fPort: 0, data: '' }, { fPort: 255, hex: 'ABcd', confirmed: true, flush: false, id: 'x' },
      { fPort: 1, hex: '00', devEui: '01-23-45-67-89-AB-CD-EF' }, { fPort: 1, hex: '00', devEui: '0123456789abcdef', extra: 1 },
      { fPort: 1, hex: '00', data: 'AA==' }, { fPort: 1 }, { hex: '00' }, { fPort: 256, hex: '00' }, { fPort: 1.5, hex: '00' },
      { fPort: 1, hex: '0' }, { fPort: 1, data: 'A' }, { fPort: 1, hex: '00', id: '' }, { fPort: 1, hex: '00', id: 'x'.repeat(129) },
      { fPort: 1, hex: '00'.repeat(513) }, { fPort: 1, hex: '00', confirmed: 'yes' }, { fPort: 1, hex: '00', devEui: '0123' },
      [{ fPort: 1, hex: '00' }, { fPort: 2, data: 'AQ==' }], [], 'nope', null, 42,
      // Codec objects, replace and expiry (issues 15 and 16).
      { object: { a: 1 } }, { fPort: 3, object: {} }, { object: [1] }, { object: { a: 1 }, hex: '00' }, { fPort: 1, hex: '00', replace: true },
      { fPort: 1, hex: '00', expiresAt: '2030-01-01T00:00:00Z' }, { fPort: 1, hex: '00', expiresAt: '2030-01-01T00:00:00.123+02:00' },
      { fPort: 1, hex: '00', expiresAt: '2030-01-01T00:00Z' }, { fPort: 1, hex: '00', expiresAt: '2030-01-01T00:00:00' }, { fPort: 1, hex: '00', expiresAt: '2030-01-01T00:00:00+0200' },
      { fPort: 1, hex: '00', expiresAt: 'tomorrow' }, { fPort: 1, hex: '00', ttlSeconds: 60 }, { fPort: 1, hex: '00', ttlSeconds: 0 }, { fPort: 1, hex: '00', ttlSeconds: 1.5 },
    ]
    for (const sample of samples) {
      const daemon = parseDownlinkRequests(Buffer.from(JSON.stringify(sample)), dev).every(p => p.ok)
      expect({ sample, valid: validateMessage(`lorabridge/farm/devices/${dev}/down`, JSON.stringify(sample)).ok }).toEqual({ sample, valid: daemon })
    }
  })

  async function operatorDown (topic: string, body: unknown): Promise<void> {
    await observer.publishAsync(topic, JSON.stringify(body), { qos: 1 })
  }
})
