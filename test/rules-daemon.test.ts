/**
 * The rules engine in a running daemon (issue must-show 1–4): simulators' uplinks → decoder →
 * rule → downlinks the simulators receive; hot reload; pathological expressions contained;
 * cooldowns and duplicates; `rules test` giving the daemon's result; bounded rule chains.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, mkdir, rm, writeFile, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice, type ReceivedDownlink } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'
import { compileRuleFile } from '../src/rules/compile.js'
import { dryRun } from '../src/cli/rules.js'
import type { RuleCounters } from '../src/rules/engine.js'
import { TANK_DECODER } from './fixtures/farm-rules.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'

const DECODER = TANK_DECODER
const VALVE = `rules:
  - name: close-valve
    on: up
    when: { app: farm, fPort: 2 }
    if: decoded.level > 80
    cooldown: 10m
    downlink: |
      { "fPort": 3, "hex": $hex([1, decoded.level]) }
`

describe('rules in a running daemon', () => {
  let dir: string
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let sims: ConduitSimulator[] = []
  let tp: ThingParkSimulator
  let gw = 0

  const rulesDir = (): string => join(dir, 'rules')
  const status = (): Record<string, unknown> | undefined => {
    const m = seen.filter(x => x.topic === 'lorabridge/_bridge/rules').at(-1)
    return m === undefined ? undefined : JSON.parse(m.payload) as Record<string, unknown>
  }
  const counters = (rule: string): RuleCounters | undefined =>
    (t.daemon.rules.status().rules as Array<{ name: string, counters: RuleCounters }>).find(r => r.name === rule)?.counters
  const conduit = async (devices = 1): Promise<ConduitSimulator> => {
    gw++
    const sim = new ConduitSimulator({
      url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1',
      gwUuid: `${String(gw).padStart(6, '0')}aa6156cdd44523264b523115c1`, devices: Array.from({ length: devices }, (_, i) => generatedDevice(gw * 100 + i)),
    })
    sims.push(sim)
    await sim.start()
    return sim
  }
  const level = (l: number, battery = 3600): Buffer => Buffer.from([l, battery >> 8, battery & 0xff])

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-rules-'))
    await mkdir(rulesDir())
    await writeFile(join(rulesDir(), 'decoders.yaml'), DECODER)
    await writeFile(join(rulesDir(), 'valve.yaml'), VALVE)
    // The LRC listens first, on a port the system picks, so no other test file can take it between
    // choosing the port and binding it; the simulator is pointed at the daemon once it runs.
    tp = new ThingParkSimulator({ asUrl: 'http://127.0.0.1:1/tp', asId: AS_ID, asKey: KEY })
    const lrcUrl = await tp.startLrc({ sentReportDelayMs: -1 })
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: ['16-ea-76-f6-ab-66-3d-80'], thingpark: ['tp'] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      rules: { dir: './rules', timeoutMs: 100 },
      thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKey: KEY, downlinkUrl: lrcUrl }] },
    }, { dir })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    await observer.subscribeAsync('alerts/#', { qos: 1 })
    tp.retarget(`http://127.0.0.1:${t.port('http')}/tp`)
  })
  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await tp?.stop()
    await observer?.endAsync(true)
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('publishes the loaded rules retained, with their counters', async () => {
    const s = await until(() => status(), 'rules status')
    expect(s.files).toEqual([
      { file: 'decoders.yaml', ok: true, loadedAt: expect.any(String) as unknown, rules: [], decoders: ['tank'] },
      { file: 'valve.yaml', ok: true, loadedAt: expect.any(String) as unknown, rules: ['close-valve'], decoders: [] },
    ])
  })

  it('Conduit uplink → decoder → rule → the simulated Conduit receives the downlink', async () => {
    const sim = await conduit()
    const got = new Promise<ReceivedDownlink>(resolve => sim.once('downlink', resolve))
    const from = seen.length
    await sim.uplink(0, { port: 2, data: level(91) })
    const up = await until(() => seen.slice(from).find(m => m.topic.endsWith('/up')), 'uplink')
    expect(JSON.parse(up.payload)).toMatchObject({ app: 'farm', decoded: { level: 91, battery: 3.6 } })
    expect((await got).data).toEqual(Buffer.from([1, 91]))
    expect((await got).payload).toMatchObject({ port: 3 })
  })

  it('ThingPark uplink → rule → the simulated LRC receives a correctly signed downlink', async () => {
    const before = tp.lrcRequests.length
    expect((await tp.uplink({ devEui: '0018B20000000B20', fPort: 2, fCntUp: 1, payloadHex: level(95).toString('hex') })).status).toBe(204)
    const req = await until(() => tp.lrcRequests[before], 'LRC request')
    expect(req).toMatchObject({ tokenValid: true, timeOk: true, status: 200, params: { DevEUI: '0018B20000000B20', FPort: '3', Payload: '015f' } })
  })

  it('holds the cooldown per device, and fires once for an uplink heard twice', async () => {
    const sim = await conduit(2)
    const twin = await conduit(0)
    twin.devices.push({ ...sim.devices[0]! })
    const downs = (dev: string): number => seen.filter(m => m.topic === `lorabridge/farm/devices/${dev.replace(/-/g, '')}/down`).length
    const [a, b] = sim.devices.map(d => d.devEui) as [string, string]
    const before = { ...counters('close-valve')! }
    const frame = await sim.uplink(0, { port: 2, data: level(90) })
    // The same frame from a second Conduit: a duplicate, not published, so not evaluated again.
    const raw = await import('./helpers/mqtt.js').then(m => m.connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: twin.clientId }))
    await raw.publishAsync(`lorawan/${twin.gwUuid}/${sim.devices[0]!.appEui}/${a}/up`, JSON.stringify(frame), { qos: 1 })
    await raw.endAsync()
    await sim.uplink(0, { port: 2, data: level(93) }) // within the cooldown
    await sim.uplink(1, { port: 2, data: level(99) }) // another device: its own cooldown
    await until(() => counters('close-valve')!.matched >= before.matched + 3 || undefined, 'three evaluations').catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify({ before, now: counters('close-valve'), ups: seen.filter(m => m.topic.endsWith('/up')).slice(-4).map(m => m.topic) })}`)
    })
    await sleep(100)
    expect(downs(a)).toBe(1)
    expect(downs(b)).toBe(1)
    const after = counters('close-valve')!
    expect(after.matched - before.matched).toBe(3)
    expect(after.passed - before.passed).toBe(2)
    expect(after.suppressed - before.suppressed).toBe(1)
  })

  it('gives in `rules test` the result the daemon gives', async () => {
    const sim = await conduit()
    const from = seen.length
    await sim.uplink(0, { port: 2, data: level(88, 3100) })
    const up = JSON.parse((await until(() => seen.slice(from).find(m => m.topic.endsWith('/up')), 'uplink')).payload) as Record<string, unknown>
    const down = await until(() => seen.slice(from).find(m => m.topic.endsWith('/down')), 'rule downlink')
    const compiled = await Promise.all(['decoders.yaml', 'valve.yaml'].map(async f => (await compileRuleFile(join(rulesDir(), f)) as { compiled: Parameters<typeof dryRun>[1][number] }).compiled))
    const { decoded, ...undecoded } = up
    const dry = await dryRun(t.daemon.opts.config, compiled, 'up', undecoded)
    expect(dry.decoded).toEqual(decoded)
    expect(dry.downlinks.map(d => d.request)).toEqual([JSON.parse(down.payload)])
  })

  it('contains a pathological expression: a counted failure and a dead letter, while other uplinks flow', async () => {
    await writeFile(join(rulesDir(), 'evil.yaml'), `rules:
  - name: huge-range
    when: { app: farm, fPort: 2 }
    if: |
      $count([1..9999999].($ * 2)) > 0
    publish: { topic: '"alerts/x"', payload: '{}' }
  - name: runaway-recursion
    when: { app: farm, fPort: 2 }
    if: |
      ($f := function($n) { $n < 0 ? 0 : 1 + $f($n + 1) }; $f(0) > 0)
    publish: { topic: '"alerts/x"', payload: '{}' }
`)
    await until(() => (status()?.rules as Array<{ name: string }> | undefined)?.some(r => r.name === 'runaway-recursion') || undefined, 'evil rules loaded')
    const sim = await conduit(3)
    const from = seen.length
    for (const i of [0, 1, 2]) await sim.uplink(i, { port: 2, data: level(10) })
    // Every uplink is published, decoded, while the two rules fail on each.
    await until(() => seen.slice(from).filter(m => m.topic.endsWith('/up')).length === 3 || undefined, 'three uplinks')
    const letters = await until(() => { const l = seen.slice(from).filter(m => m.topic === 'lorabridge/_bridge/rules/errors'); return l.length >= 6 ? l : undefined }, 'six dead letters', 10_000)
    const parsed = letters.map(l => JSON.parse(l.payload) as Record<string, unknown>)
    // A range is capped at 100,000 entries before it is allocated.
    expect(new Set(parsed.filter(p => p.rule === 'huge-range').map(p => p.code))).toEqual(new Set(['LB_ERR_RULE_LIMIT']))
    expect(new Set(parsed.filter(p => p.rule === 'runaway-recursion').map(p => p.code))).toEqual(new Set(['LB_ERR_RULE_DEPTH']))
    for (const p of parsed) expect(p).toMatchObject({ stage: 'if', app: 'farm', eventId: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown })
    expect(counters('huge-range')!.failed).toBeGreaterThanOrEqual(3)
    expect(counters('runaway-recursion')!.failed).toBeGreaterThanOrEqual(3)
    await unlink(join(rulesDir(), 'evil.yaml'))
    // Gone before the next test: rules of one event run side by side on wall-clock budgets, so
    // these two, still loaded when the next test's fPort-2 uplink came, made its rule time out
    // (the hot-reload test's "timed out waiting for alert at threshold 50", 1 run in 3).
    await until(() => (status()?.files as Array<{ file: string }> | undefined)?.every(f => f.file !== 'evil.yaml') || undefined, 'evil.yaml removed', 5000)
  })

  it('hot-reloads: an edit takes effect within a second; a broken edit keeps the old rule and says where; deleting removes it', async () => {
    const file = join(rulesDir(), 'hot.yaml')
    const rule = (threshold: number): string => `rules:\n  - name: hot\n    when: { app: farm, fPort: 2 }\n    if: decoded.level > ${threshold}\n    publish:\n      topic: '"alerts/hot/" & devEui'\n      payload: '{ "level": decoded.level, "threshold": ${threshold} }'\n`
    await writeFile(file, rule(50))
    const loaded = Date.now()
    await until(() => (status()?.rules as Array<{ name: string }> | undefined)?.some(r => r.name === 'hot') || undefined, 'hot rule loaded', 1000)
    expect(Date.now() - loaded).toBeLessThan(1000)

    const sim = await conduit()
    const alerts = (): Array<Record<string, unknown>> => seen.filter(m => m.topic.startsWith('alerts/hot/')).map(m => JSON.parse(m.payload) as Record<string, unknown>)
    await sim.uplink(0, { port: 2, data: level(60) })
    await until(() => alerts().length === 1 || undefined, 'alert at threshold 50')

    // A broken edit: the last good version keeps running; the error is reported with its place.
    await writeFile(file, rule(50).replace('decoded.level > 50', 'decoded.level > > 50'))
    const broken = await until(() => (status()?.files as Array<{ file: string, ok: boolean, errors?: Array<Record<string, unknown>> }> | undefined)?.find(f => f.file === 'hot.yaml' && !f.ok), 'error reported', 1000)
    expect(broken.errors?.[0]).toMatchObject({ path: 'rules[0].if', line: 4, code: 'LB_ERR_RULE_COMPILE' })
    expect(t.logs.withCode('LB_ERR_RULE_COMPILE').some(l => l.file === 'hot.yaml' && l.line === 4)).toBe(true)
    await sim.uplink(0, { port: 2, data: level(61) })
    await until(() => alerts().length === 2 || undefined, 'old rule still firing')

    await writeFile(file, rule(70))
    await until(() => (status()?.files as Array<{ file: string, ok: boolean }> | undefined)?.find(f => f.file === 'hot.yaml')?.ok || undefined, 'fixed', 1000)
    await sim.uplink(0, { port: 2, data: level(62) }) // below the new threshold
    await sim.uplink(0, { port: 2, data: level(75) })
    await until(() => alerts().length === 3 || undefined, 'new threshold')
    expect(alerts()[2]).toEqual({ level: 75, threshold: 70 })

    await unlink(file)
    await until(() => (status()?.files as Array<{ file: string }> | undefined)?.every(f => f.file !== 'hot.yaml') || undefined, 'hot.yaml removed', 1000)
    await sim.uplink(0, { port: 2, data: level(99) })
    await sleep(200)
    expect(alerts().length).toBe(3)
  })

  it('lets a rule\'s own outcomes trigger rules only up to maxChainDepth', async () => {
    await writeFile(join(rulesDir(), 'chain.yaml'), `rules:
  - name: ping
    on: up
    when: { app: farm, fPort: 9 }
    downlink: '{ "fPort": 9, "hex": "00" }'
  - name: ping-again
    on: down/queued
    when: { app: farm }
    downlink: '{ "fPort": 9, "hex": "01" }'
`)
    await until(() => (status()?.rules as Array<{ name: string }> | undefined)?.some(r => r.name === 'ping-again') || undefined, 'chain rules')
    const sim = await conduit()
    const dev = sim.devices[0]!.devEui.replace(/-/g, '')
    await sim.uplink(0, { port: 9, data: Buffer.from([0]) })
    await sleep(800)
    // up → ping (1) → queued (depth 1) → ping-again (2) → queued (depth 2) → ping-again (3) → queued (depth 3): stop.
    expect(seen.filter(m => m.topic === `lorabridge/farm/devices/${dev}/down`).length).toBe(3)
    await unlink(join(rulesDir(), 'chain.yaml'))
  })
})
