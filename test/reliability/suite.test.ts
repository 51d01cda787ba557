/**
 * The reliability suite (issue 6 must-show 4). One daemon process on a redis-server, under steady
 * Conduit and ThingPark traffic for a soak, with a Redis crash in the middle and seeded fuzzing of
 * every input; then a table: load held, faults survived, bad inputs tried, messages acknowledged
 * vs delivered (lost must be 0), and resident memory growth.
 *
 * `npm test` runs a bounded version (about 20 s); `npm run test:reliability` the full one
 * (RELIABILITY_SOAK_SECONDS=300 and larger fuzz counts). Results: test-artifacts/reliability.json.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { execFileSync } from 'node:child_process'
import { connect as netConnect } from 'node:net'
import { request as httpRequest } from 'node:http'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import { startDaemonProcess, type DaemonProcess } from '../helpers/cli.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { connect, sleep, until } from '../helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../../src/simulate/conduit.js'
import { ThingParkSimulator } from '../../src/simulate/thingpark.js'
import { compileRuleText } from '../../src/rules/compile.js'
import { rng } from '../helpers/rng.js'

const SOAK_S = Number(process.env.RELIABILITY_SOAK_SECONDS ?? 20)
const FUZZ = Number(process.env.RELIABILITY_FUZZ ?? 60)
/**
 * Conduit uplinks per second: a number, or `half-saturation` (npm run test:reliability): half of
 * what this daemon, on this Redis, acknowledges at saturation, measured at the start of the run.
 */
const RATE_SETTING = process.env.RELIABILITY_RATE ?? '40'
const HALF_SATURATION = RATE_SETTING === 'half-saturation'
/** How long the saturation is measured, and how many uplinks are kept in flight meanwhile. */
const SATURATION_S = 5
const SATURATION_WINDOW = 64
const TP_RATE = 10 // ThingPark reports per second
const SEED = 20261121
const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'

/**
 * A POST from another loopback address than the simulated ThingPark's: refused requests spend
 * their sender's failure budget (thingpark.failedTokenLimit), and the fuzzer is not ThingPark.
 */
function postFrom (localAddress: string, url: string, body: string, contentType: string): Promise<number> {
  return new Promise(resolve => {
    const req = httpRequest(url, { method: 'POST', localAddress, agent: false, headers: { 'content-type': contentType } }, res => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
    req.on('error', () => resolve(0))
    req.end(body)
  })
}


function rssKb (pid: number): number {
  return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)]).toString().trim())
}

/** Flips, drops, duplicates and retypes parts of a valid input. */
function mutate (text: string, r: () => number): string {
  const ops = [
    () => { const i = Math.floor(r() * text.length); return text.slice(0, i) }, // truncated
    () => { const i = Math.floor(r() * text.length); return text.slice(0, i) + String.fromCharCode(Math.floor(r() * 128)) + text.slice(i + 1) },
    () => text.replace(/"(\w+)":(\d+)/, '"$1":"x$2"'), // a number becomes a string
    () => text.replace(/"(\w+)":"([^"]*)"/, '"$1":{"v":"$2"}'), // a string becomes an object
    () => text.replace(/,"[^"]+":[^,}]+/, ''), // a field dropped
    () => text + text, // doubled
    () => Buffer.from(Array.from({ length: 1 + Math.floor(r() * 200) }, () => Math.floor(r() * 256))).toString('latin1'),
  ]
  return ops[Math.floor(r() * ops.length)]!()
}

interface Row { what: string, value: string, ok: boolean }

describe('reliability suite', () => {
  const rows: Row[] = []
  let redis: RedisServer | undefined
  let daemon: DaemonProcess | undefined
  let dir: string | undefined

  afterAll(async () => {
    await daemon?.kill('SIGKILL')
    await redis?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    const width = Math.max(...rows.map(r => r.what.length))
    const table = ['', `reliability suite (soak ${SOAK_S} s, fuzz ${FUZZ} per input, seed ${SEED})`, ...rows.map(r => `  ${r.ok ? 'ok  ' : 'FAIL'}  ${r.what.padEnd(width)}  ${r.value}`)].join('\n')
    process.stdout.write(table + '\n')
    await mkdir('test-artifacts', { recursive: true })
    await writeFile('test-artifacts/reliability.json', JSON.stringify({ soakSeconds: SOAK_S, fuzz: FUZZ, seed: SEED, rows }, null, 2))
  })

  it(`holds ${HALF_SATURATION ? 'half of its saturation' : RATE_SETTING} + ${TP_RATE} uplinks/s for ${SOAK_S} s through a Redis crash and fuzzing, losing nothing it acknowledged`, async () => {
    redis = await startRedis({ persist: true })
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-reliability-'))
    await mkdir(join(dir, 'rules'))
    await writeFile(join(dir, 'rules', 'soak.yaml'), 'decoders:\n  - name: d\n    decode: \'{ "b0": $u8(bytes, 0) }\'\nrules:\n  - name: echo\n    when: { fPort: 9 }\n    downlink: \'{ "fPort": 9, "hex": "00" }\'\n')
    await writeFile(join(dir, 'lorabridge.yaml'), stringify({
      redis: { url: redis.url },
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }], limits: { connectRate: { perAddress: 0 } } },
      http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }] },
      // The fuzzer must reach the parser on every try: no failure budget here (it is tested in
      // test/security/thingpark-cheap-checks.test.ts).
      thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKey: KEY, downlinkUrl: 'http://127.0.0.1:9/unused' }], failedTokenLimit: { perAddress: 0 } },
      log: { level: 'info' },
    }))
    daemon = await startDaemonProcess([], { cwd: dir })
    const d = daemon
    const pid = d.child.pid!
    const mqttUrl = `mqtt://127.0.0.1:${d.port('mqtt')}`
    const http = `http://127.0.0.1:${d.port('http')}`

    // A durable consumer counts what is delivered.
    const received = new Set<string>()
    const onMessage = (_t: string, p: Buffer): void => {
      try { const e = JSON.parse(p.toString()) as { devEui: string, fCnt: number }; received.add(`${e.devEui}:${e.fCnt}`) } catch { /* not an event */ }
    }
    const consumer = await connect(mqttUrl, { clientId: 'soak-consumer', clean: false })
    consumer.on('message', onMessage)
    await consumer.subscribeAsync('lorabridge/+/devices/+/up', { qos: 1 })

    const sim = new ConduitSimulator({ url: mqttUrl, version: '1.1', deviceCount: 20 })
    await sim.start()
    const tp = new ThingParkSimulator({ asUrl: `${http}/tp`, asId: AS_ID, asKey: KEY })
    const acked = new Set<string>()
    let tpRefused = 0
    let running = true
    let conduitSent = 0
    let tpSent = 0
    // A message refused while Redis is down closes the Conduit's connection (no PUBACK): the
    // Conduit reconnects, as app-connect does, and sends nothing while it is disconnected.
    let conduitRefused = 0
    let reconnecting: Promise<void> | undefined
    const reconnect = (): Promise<void> => reconnecting ??= (async () => {
      while (running && !sim.isConnected) {
        await sim.reconnect().catch(() => {})
        if (!sim.isConnected) await sleep(200)
      }
    })().finally(() => { reconnecting = undefined })
    const conduitUplink = async (i: number): Promise<void> => {
      if (!sim.isConnected) { await reconnect(); return }
      let up: Awaited<ReturnType<typeof sim.uplink>>
      try {
        up = await sim.uplink(i % 20, { port: 1, data: Buffer.from([i & 0xff]) })
      } catch {
        conduitRefused++ // not acknowledged: not counted, and nothing is owed
        await reconnect()
        return
      }
      conduitSent++
      acked.add(`${String(up.deveui).replace(/-/g, '')}:${String(up.fcnt)}`)
    }
    /** Steps at `rate` per second, at most `window` of them in flight (one: each waits for the last). */
    const paced = async (rate: number, window: number, step: (i: number) => Promise<void>): Promise<void> => {
      const t0 = Date.now()
      const inFlight = new Set<Promise<void>>()
      let failed: unknown
      for (let i = 0; running && failed === undefined; i++) {
        const p: Promise<void> = step(i).catch((err: unknown) => { failed = err }).finally(() => inFlight.delete(p))
        inFlight.add(p)
        if (inFlight.size >= window) await Promise.race(inFlight)
        const wait = t0 + ((i + 1) * 1000) / rate - Date.now()
        if (wait >= 1) await sleep(wait)
      }
      await Promise.all(inFlight)
      if (failed !== undefined) throw failed
    }

    // The rate: half of the saturation this daemon reaches on this Redis, measured first (its
    // uplinks are acknowledged, so they must be delivered like the others).
    let saturation: number | undefined
    if (HALF_SATURATION) {
      const end = Date.now() + SATURATION_S * 1000
      const sent0 = conduitSent
      let next = 0
      await Promise.all(Array.from({ length: SATURATION_WINDOW }, async () => { while (Date.now() < end) await conduitUplink(next++) }))
      saturation = (conduitSent - sent0) / SATURATION_S
    }
    const uplinkRate = saturation !== undefined ? Math.max(1, Math.floor(saturation / 2)) : Number(RATE_SETTING)
    conduitSent = 0
    const loadStart = Date.now()
    const loops = [
      paced(uplinkRate, Math.max(1, Math.ceil(uplinkRate / 50)), conduitUplink),
      paced(TP_RATE, 1, async i => {
        const r = await tp.uplink({ devEui: '0018B20000000B20', fPort: 2, fCntUp: i, payloadHex: 'ab' }).catch(() => undefined)
        tpSent++
        if (r?.status === 204) acked.add(`0018b20000000b20:${i}`)
        else tpRefused++
      }),
    ].map(p => p.catch(() => { running = false }))

    // Memory: sampled every second. The soak window starts after a warm-up (V8's heap and the
    // JIT settle in the first minute) and lasts SOAK_S seconds; growth compares the medians of the
    // samples of its first and last five seconds.
    const samples: Array<{ at: number, kb: number }> = []
    const sampler = setInterval(() => { try { samples.push({ at: Date.now(), kb: rssKb(pid) }) } catch { /* exited */ } }, 1000)
    const median = (from: number, to: number): number => {
      const v = samples.filter(x => x.at >= from && x.at <= to).map(x => x.kb).sort((a, b) => a - b)
      return v[Math.floor(v.length / 2)] ?? rssKb(pid)
    }
    const warmUpMs = SOAK_S >= 300 ? 60_000 : 5000
    await sleep(warmUpMs)
    const soakStart = Date.now()

    // Fuzzing while the traffic flows.
    const r = rng(SEED)
    let mqttCut = 0
    for (let i = 0; i < FUZZ; i++) {
      const closed = await new Promise<boolean>(resolve => {
        const s = netConnect(d.port('mqtt'), '127.0.0.1', () => { s.write(Buffer.from(Array.from({ length: 1 + Math.floor(r() * 400) }, () => Math.floor(r() * 256)))) })
        const timer = setTimeout(() => { s.destroy(); resolve(false) }, 3000)
        s.on('close', () => { clearTimeout(timer); resolve(true) })
        s.on('error', () => {})
      })
      if (closed) mqttCut++
    }
    const appConnectErrors = async (): Promise<number> => (await (await fetch(`${http}/metrics`)).text()).split('\n')
      .filter(l => l.startsWith('lorabridge_ingest_errors_total{') && l.includes('network="multitech"')).reduce((n, l) => n + Number(l.split(' ').pop()), 0)
    const errorsBefore = await appConnectErrors()
    const fuzzConduit = await connect(mqttUrl, { clientId: 'fuzz-conduit' })
    const sample = '{"tmst":1,"freq":868.1,"datr":"SF7BW125","codr":"4/5","lsnr":9.5,"rssi":-47,"fcnt":3,"port":1,"data":"AQ==","deveui":"00-11-22-33-44-55-66-77","devaddr":"0146cd49","gweui":"00-80-00-00-00-01-b5-fc"}'
    for (let i = 0; i < FUZZ; i++) {
      await fuzzConduit.publishAsync('lorawan/5a1f00d2-7c4e-4b39-9f0a-22c3e1d4b6a8/6c-4e-ef-66-f4-79-86-a6/00-11-22-33-44-55-66-77/up', mutate(sample, r), { qos: 1 }).catch(() => {})
      if (!fuzzConduit.connected) break
    }
    await fuzzConduit.endAsync(true)
    const appConnectRefused = await appConnectErrors() - errorsBefore
    const tpStatuses = new Map<number, number>()
    for (let i = 0; i < FUZZ; i++) {
      const body = mutate(JSON.stringify({ DevEUI_uplink: { DevEUI: '0018B20000000B21', FPort: 2, FCntUp: i, payload_hex: '01', CustomerID: '1' } }), r)
      // A current Time: the checks that need no body come first, and the body should reach the parser.
      const query = mutate(`LrnDevEui=0018B20000000B21&LrnFPort=2&LrnInfos=x&AS_ID=TWA_100000001.1.AS&Time=${encodeURIComponent(new Date().toISOString())}&Token=` + 'ab'.repeat(32), r)
      const status = await postFrom('127.0.0.2', `${http}/tp?${encodeURI(query)}`, body, r() < 0.8 ? 'application/json' : 'text/xml')
      tpStatuses.set(status, (tpStatuses.get(status) ?? 0) + 1)
    }
    let ruleFilesOk = 0
    const ruleSample = 'rules:\n  - name: r\n    on: up\n    when: { app: farm, fPort: 2 }\n    if: decoded.level > 80\n    cooldown: 10m\n    downlink: |\n      { "fPort": 3, "hex": "01" }\n'
    for (let i = 0; i < FUZZ; i++) {
      const res = compileRuleText('/fuzz/r.yaml', mutate(ruleSample, r))
      if (res.ok || res.errors.every(e => Number.isInteger(e.line) && e.line >= 1 && e.message !== '')) ruleFilesOk++
    }

    // A Redis crash in the middle of the soak.
    await sleep(Math.max(0, soakStart + SOAK_S * 500 - Date.now()))
    await redis.kill()
    await until(async () => (await fetch(`${http}/readyz`)).status === 503 || undefined, 'not ready')
    await sleep(1500)
    await redis.restart()
    await until(async () => (await fetch(`${http}/readyz`)).status === 200 || undefined, 'ready again', 15_000)
    await sleep(Math.max(2000, soakStart + SOAK_S * 1000 - Date.now()))
    const soakEnd = Date.now()
    const baseline = median(soakStart - 5000, soakStart)
    const final = median(soakEnd - 5000, soakEnd)
    running = false
    await Promise.all(loops)
    clearInterval(sampler)
    const soakSeconds = (Date.now() - loadStart) / 1000

    // Delivery: everything acknowledged reaches the consumer (after one reconnect, for what live
    // pub/sub dropped around the Redis restart; docs/reliability.md).
    await consumer.endAsync()
    const again = mqtt.connect(mqttUrl, { clientId: 'soak-consumer', clean: false, reconnectPeriod: 0 })
    again.on('message', onMessage)
    await until(() => [...acked].every(k => received.has(k)) || undefined, 'delivery', 30_000).catch(() => {})
    await again.endAsync(true)
    await sim.stop()
    await tp.stop()
    const lost = [...acked].filter(k => !received.has(k))
    const growth = (final - baseline) / baseline
    const alive = d.child.exitCode === null && (await fetch(`${http}/healthz`)).status === 200

    rows.push(
      ...(saturation !== undefined ? [{ what: 'saturation at the start (acknowledged Conduit uplinks)', value: `${saturation.toFixed(0)}/s over ${SATURATION_S} s, ${SATURATION_WINDOW} in flight; soak rate ${uplinkRate}/s (half)`, ok: saturation > 0 }] : []),
      { what: 'load held', value: `${(conduitSent / soakSeconds).toFixed(1)} Conduit (asked ${uplinkRate}/s) + ${(tpSent / soakSeconds).toFixed(1)} ThingPark uplinks/s for ${soakSeconds.toFixed(0)} s`, ok: conduitSent > 0 && tpSent > 0 && conduitSent / soakSeconds >= uplinkRate * 0.9 },
      { what: 'fault: Redis crashed and restarted', value: `survived; ThingPark answered 503 to ${tpRefused} reports and ${conduitRefused} Conduit uplinks went unacknowledged during the outage`, ok: alive },
      { what: 'bad input: fuzzed MQTT packets', value: `${FUZZ} tried, ${mqttCut} connections cut`, ok: alive },
      { what: 'bad input: fuzzed app-connect payloads', value: `${FUZZ} tried, ${appConnectRefused} refused with an error code`, ok: alive && appConnectRefused > 0 },
      { what: 'bad input: fuzzed ThingPark bodies and queries', value: `${FUZZ} tried; statuses ${[...tpStatuses].sort().map(([s, n]) => `${s}×${n}`).join(' ')}`, ok: alive && !tpStatuses.has(500) },
      { what: 'bad input: fuzzed rule files', value: `${FUZZ} tried, every error located`, ok: ruleFilesOk === FUZZ },
      { what: 'messages acknowledged / delivered', value: `${acked.size} / ${acked.size - lost.length}`, ok: acked.size > 0 },
      { what: 'lost', value: String(lost.length), ok: lost.length === 0 },
      { what: `resident memory over the ${Math.round((soakEnd - soakStart) / 1000)} s soak`, value: `${(baseline / 1024).toFixed(1)} MiB → ${(final / 1024).toFixed(1)} MiB (${(growth * 100).toFixed(1)} %), peak ${(Math.max(...samples.map(x => x.kb)) / 1024).toFixed(1)} MiB, after ${warmUpMs / 1000} s warm-up`, ok: SOAK_S < 300 || growth < 0.1 },
    )
    expect(alive).toBe(true)
    // The load went on through the outage (a loop that died would leave the soak idle).
    expect(conduitSent / soakSeconds).toBeGreaterThan(uplinkRate * 0.8)
    expect(tpSent / soakSeconds).toBeGreaterThan(TP_RATE * 0.8)
    expect(lost).toEqual([])
    expect(tpStatuses.has(500)).toBe(false)
    expect(ruleFilesOk).toBe(FUZZ)
    // Memory growth is judged over the full 5-minute soak (npm run test:reliability).
    if (SOAK_S >= 300) expect(growth).toBeLessThan(0.1)
  })
})
