/**
 * `/metrics` scraped over HTTP while a Conduit, a ThingPark LRC and MQTT clients use a real daemon
 * (issue 8 must-show 1): every family an operator graphs — broker, per network and gateway,
 * downlinks, ThingPark, rules, process — with values that match what this test did.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { freePort } from './helpers/redis-server.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { LRC_DOWNLINK_PATH, ThingParkSimulator } from '../src/simulate/thingpark.js'
import { parseExposition, type Sample } from './helpers/metrics.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'
const TP_DEV = '0018B20000000B20'

const RULES = `rules:
  - name: answer-port-2
    on: up
    when: { fPort: 2 }
    downlink: '{ "fPort": 3, "hex": "01" }'
  - name: broken-on-port-9
    on: up
    when: { fPort: 9 }
    downlink: '$number("not a number")'
`


describe('/metrics during a run', () => {
  let dir: string
  let t: TestDaemon
  let conduit: ConduitSimulator
  let tp: ThingParkSimulator
  let watcher: { client: MqttClient, seen: Array<{ topic: string, payload: string }> }
  const clients: MqttClient[] = []

  const scrape = async (): Promise<Sample[]> => {
    const res = await fetch(`http://127.0.0.1:${t.port('http')}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    return parseExposition(await res.text())
  }
  /** The sum of a family's samples whose labels include `labels`. */
  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
    samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0)
  const families = (samples: Sample[]): Set<string> => new Set(samples.map(s => s.name))

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-metrics-'))
    await mkdir(join(dir, 'rules'))
    await writeFile(join(dir, 'rules', 'metrics.yaml'), RULES)
    const lrcPort = await freePort()
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      thingpark: {
        connections: [{ name: 'tp-eu', path: '/thingpark/tp-eu', asId: AS_ID, asKey: KEY, downlinkUrl: `http://127.0.0.1:${lrcPort}${LRC_DOWNLINK_PATH}` }],
        downlink: { maxAttempts: 4, initialBackoffMs: 20, maxBackoffMs: 50, timeoutMs: 2000 },
      },
    }, { dir })
    tp = new ThingParkSimulator({ asUrl: `http://127.0.0.1:${t.port('http')}/thingpark/tp-eu`, asId: AS_ID, asKey: KEY })
    await tp.startLrc({ port: lrcPort, sentReportDelayMs: -1 })
    watcher = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`, 'lorabridge', 'metrics-watcher')
    conduit = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', devices: [generatedDevice(1), generatedDevice(2)] })
    await conduit.start()
  })

  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    await watcher?.client.endAsync(true)
    await conduit?.stop()
    await tp?.stop()
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('shows the broker: clients, subscriptions, messages and bytes in and out', async () => {
    const before = await scrape()
    const sub = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'metrics-sub' })
    const pub = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'metrics-pub' })
    clients.push(sub, pub)
    await sub.subscribeAsync(['metrics/a', 'metrics/b'], { qos: 1 })
    let got = 0
    sub.on('message', () => { got++ })
    const payload = Buffer.alloc(1000, 7)
    for (let i = 0; i < 5; i++) await pub.publishAsync(i % 2 === 0 ? 'metrics/a' : 'metrics/b', payload, { qos: 1 })
    await until(() => got === 5 || undefined, 'five deliveries')
    const after = await scrape()

    expect(value(after, 'lorabridge_mqtt_clients') - value(before, 'lorabridge_mqtt_clients')).toBe(2)
    expect(value(after, 'lorabridge_mqtt_subscriptions') - value(before, 'lorabridge_mqtt_subscriptions')).toBe(2)
    expect(value(after, 'lorabridge_mqtt_messages_received_total') - value(before, 'lorabridge_mqtt_messages_received_total')).toBe(5)
    expect(value(after, 'lorabridge_mqtt_messages_sent_total') - value(before, 'lorabridge_mqtt_messages_sent_total')).toBe(5)
    // Five 1,000-byte payloads each way, plus MQTT framing (CONNECT, SUBSCRIBE, acks: well under 1 kB).
    const inBytes = value(after, 'lorabridge_mqtt_bytes_received_total', { protocol: 'mqtt' }) - value(before, 'lorabridge_mqtt_bytes_received_total', { protocol: 'mqtt' })
    const outBytes = value(after, 'lorabridge_mqtt_bytes_sent_total', { protocol: 'mqtt' }) - value(before, 'lorabridge_mqtt_bytes_sent_total', { protocol: 'mqtt' })
    expect(inBytes).toBeGreaterThanOrEqual(5000)
    expect(inBytes).toBeLessThan(6000)
    expect(outBytes).toBeGreaterThanOrEqual(5000)
    expect(outBytes).toBeLessThan(6000)
    expect(value(after, 'lorabridge_mqtt_connections_total', { protocol: 'mqtt' }) - value(before, 'lorabridge_mqtt_connections_total', { protocol: 'mqtt' })).toBe(2)
  })

  it('shows uplinks, duplicates and errors per network and gateway, downlinks by outcome, and the rules', async () => {
    const before = await scrape()
    const gateway = conduit.gwUuid.toLowerCase()
    // Three uplinks on port 2 (each answered by a rule downlink), one replayed by the Conduit as a
    // retained copy (a duplicate), one on port 9 whose rule fails, one malformed message.
    const frames = []
    for (let i = 0; i < 3; i++) frames.push(await conduit.uplink(i % 2, { port: 2, data: Buffer.from([i]) }))
    const dev = conduit.devices[0]!
    const replay = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: `${conduit.clientId}-replay` })
    clients.push(replay)
    await replay.publishAsync(`lorawan/${conduit.gwUuid}/${dev.appEui}/${dev.devEui}/up`, JSON.stringify(frames[0]), { qos: 1, retain: true })
    await conduit.uplink(1, { port: 9, data: Buffer.from([9]) })
    await replay.publishAsync(`lorawan/${conduit.gwUuid}/${dev.appEui}/${dev.devEui}/up`, '{"not json', { qos: 1 })
    // A downlink for a device nobody has heard from: failed, no-route.
    await watcher.client.publishAsync('lorabridge/default/devices/00000000000000aa/down', '{"id":"nowhere","fPort":1,"hex":"00"}', { qos: 1 })
    await until(() => watcher.seen.filter(m => m.topic.endsWith('/down/queued')).length >= 3 || undefined, 'three queued downlinks')
    await until(() => watcher.seen.find(m => m.topic.endsWith('/down/failed')), 'the failed downlink')
    await sleep(200)
    const after = await scrape()
    const delta = (name: string, labels: Record<string, string> = {}): number => value(after, name, labels) - value(before, name, labels)

    expect(delta('lorabridge_gateway_uplinks_total', { network: 'multitech', gateway, result: 'published' })).toBe(4)
    expect(delta('lorabridge_gateway_uplinks_total', { network: 'multitech', gateway, result: 'duplicate' })).toBe(1)
    expect(delta('lorabridge_gateway_errors_total', { network: 'multitech', gateway, code: 'LB_ERR_APPCONNECT_JSON' })).toBe(1)
    expect(delta('lorabridge_events_published_total', { network: 'multitech', kind: 'up' })).toBe(4)
    expect(delta('lorabridge_duplicates_total', { network: 'multitech', kind: 'up' })).toBe(1)
    expect(delta('lorabridge_ingest_errors_total', { network: 'multitech', code: 'LB_ERR_APPCONNECT_JSON' })).toBe(1)
    expect(delta('lorabridge_downlinks_total', { network: 'multitech', result: 'queued' })).toBe(3)
    expect(delta('lorabridge_downlinks_total', { result: 'failed', reason: 'no-route' })).toBe(1)
    expect(delta('lorabridge_rule_events_total', { rule: 'metrics.yaml#answer-port-2', counter: 'matched' })).toBe(3)
    expect(delta('lorabridge_rule_events_total', { rule: 'metrics.yaml#answer-port-2', counter: 'actionsOk' })).toBe(3)
    expect(delta('lorabridge_rule_events_total', { rule: 'metrics.yaml#broken-on-port-9', counter: 'failed' })).toBe(1)
    expect(delta('lorabridge_rule_dead_letters_total', { stage: 'downlink' })).toBe(1)
  })

  it('shows ThingPark token failures and downlink retries', async () => {
    const before = await scrape()
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 2, fCntUp: 1, payloadHex: '0102' })).status).toBe(204)
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 2, fCntUp: 2, payloadHex: '0102' }, { token: 'ab'.repeat(32) })).status).toBe(401)
    expect((await tp.uplink({ devEui: TP_DEV, fPort: 2, fCntUp: 3, payloadHex: '0102' }, { time: new Date(Date.now() - 3_600_000) })).status).toBe(401)
    const up = await until(() => watcher.seen.find(m => m.topic === `lorabridge/default/devices/${TP_DEV.toLowerCase()}/up`), 'the ThingPark uplink')
    const lrr = (JSON.parse(up.payload) as { gateways: Array<{ id: string }> }).gateways[0]!.id
    // The rule answers port 2 on ThingPark too; the LRC refuses twice with 503 first.
    await until(() => watcher.seen.find(m => m.topic === `lorabridge/default/devices/${TP_DEV.toLowerCase()}/down/queued`), 'the ThingPark downlink')
    const after = await scrape()
    const delta = (name: string, labels: Record<string, string> = {}): number => value(after, name, labels) - value(before, name, labels)
    expect(delta('lorabridge_gateway_uplinks_total', { network: 'thingpark', gateway: lrr, result: 'published' })).toBe(1)
    expect(delta('lorabridge_thingpark_token_failures_total', { connection: 'tp-eu', code: 'LB_ERR_THINGPARK_TOKEN' })).toBe(1)
    expect(delta('lorabridge_thingpark_token_failures_total', { connection: 'tp-eu', code: 'LB_ERR_THINGPARK_TIME' })).toBe(1)
    expect(delta('lorabridge_downlinks_total', { network: 'thingpark', result: 'queued' })).toBe(1)
  })

  it('retries a ThingPark downlink the LRC refuses with 503, and counts each retry', async () => {
    const before = await scrape()
    tp.lrcScript.push({ status: 503 }, { status: 503 })
    await watcher.client.publishAsync(`lorabridge/default/devices/${TP_DEV.toLowerCase()}/down`, '{"id":"retried","fPort":1,"hex":"00"}', { qos: 1 })
    await until(() => watcher.seen.find(m => m.topic.endsWith('/down/queued') && m.payload.includes('"retried"')), 'the retried downlink')
    const after = await scrape()
    expect(value(after, 'lorabridge_thingpark_downlink_retries_total', { connection: 'tp-eu' }) - value(before, 'lorabridge_thingpark_downlink_retries_total', { connection: 'tp-eu' })).toBe(2)
  })

  it('shows process metrics and every family an operator graphs', async () => {
    const samples = await scrape()
    expect(value(samples, 'lorabridge_process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20)
    expect(value(samples, 'lorabridge_process_cpu_seconds_total')).toBeGreaterThan(0)
    expect(value(samples, 'lorabridge_nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0)
    const names = families(samples)
    for (const family of [
      'lorabridge_mqtt_clients', 'lorabridge_mqtt_subscriptions', 'lorabridge_mqtt_messages_received_total', 'lorabridge_mqtt_messages_sent_total',
      'lorabridge_mqtt_bytes_received_total', 'lorabridge_mqtt_bytes_sent_total', 'lorabridge_gateway_uplinks_total', 'lorabridge_gateway_errors_total',
      'lorabridge_events_published_total', 'lorabridge_duplicates_total', 'lorabridge_ingest_errors_total', 'lorabridge_downlinks_total',
      'lorabridge_thingpark_token_failures_total', 'lorabridge_thingpark_downlink_retries_total', 'lorabridge_rule_events_total', 'lorabridge_rule_dead_letters_total',
    ]) expect(names, family).toContain(family)
  })
})
