/**
 * Issue 12, weakness "a single rule evaluation is not bounded in time": a rule whose one step
 * builds a 50-million-character string, backtracks a regex on an uplink's text, allocates a giant
 * range or doubles a string in a loop must end with a counted, dead-lettered error within its
 * budget plus a small margin (the issue states the bound: rules.timeoutMs; we allow 500 ms), while
 * the daemon's event loop keeps turning and other rules and uplinks flow. A regex that RE2 cannot
 * run in linear time is refused when the file is loaded, with its line and column; a backtracking
 * pattern that RE2 can run simply answers at once.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { observe, until, type MqttClient } from '../helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../../src/simulate/conduit.js'
import type { RuleCounters } from '../../src/rules/engine.js'

const BUDGET_MS = 100
const MARGIN_MS = 500

// Each attack fires on its own FPort; `steady` fires on every uplink and must keep working.
const RULES = `rules:
  - name: steady
    when: { app: farm }
    publish: { topic: '"alerts/steady/" & devEui & "/" & $string(fPort)', payload: '{ "fPort": fPort }' }
  - name: pad-50m
    when: { app: farm, fPort: 11 }
    if: $length($pad("", 5e7, "x")) > 0
    publish: { topic: '"alerts/x"', payload: '{}' }
  - name: backtracking-regex
    when: { app: farm, fPort: 12 }
    # the uplink's first byte says how many a's: the attacker controls the text. On a linear-time
    # engine this is no error: the rule answers (no match) at once and publishes.
    if: $not($exists($match($pad("", $u8(bytes, 0), "a") & "!", /(a+)+$/)))
    publish: { topic: '"alerts/regex/" & devEui', payload: '{}' }
  - name: giant-range
    when: { app: farm, fPort: 13 }
    if: $count($reverse([1..9999999])) > 0
    publish: { topic: '"alerts/x"', payload: '{}' }
  - name: string-doubling
    when: { app: farm, fPort: 14 }
    if: $length($reduce([1..25], function($s, $i) { $s & $s }, "x")) > 0
    publish: { topic: '"alerts/x"', payload: '{}' }
`

const UNSAFE = `rules:
  - name: backreference
    when: { app: farm }
    if: |
      $contains(devEui, /(a)\\1/)
    publish: { topic: '"alerts/x"', payload: '{}' }
`

describe('a rule evaluation is bounded in time whatever the rule and the input', () => {
  let dir: string
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string, at: number }>
  let sim: ConduitSimulator

  const counters = (rule: string): RuleCounters | undefined =>
    (t.daemon.rules.status().rules as Array<{ name: string, counters: RuleCounters }>).find(r => r.name === rule)?.counters

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-rule-budget-'))
    await mkdir(join(dir, 'rules'))
    await writeFile(join(dir, 'rules', 'attacks.yaml'), RULES)
    await writeFile(join(dir, 'rules', 'unsafe.yaml'), UNSAFE)
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: ['16-ea-76-f6-ab-66-3d-80'] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      rules: { dir: './rules', timeoutMs: BUDGET_MS },
    }, { dir })
    const o = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    observer = o.client
    await observer.subscribeAsync('alerts/#', { qos: 1 })
    // Arrival times, taken when each message is received.
    seen = []
    observer.on('message', (topic, payload) => { seen.push({ topic, payload: payload.toString(), at: Date.now() }) })
    sim = new ConduitSimulator({
      url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1',
      gwUuid: '000001aa6156cdd44523264b523115c1', devices: [generatedDevice(1), generatedDevice(2)],
    })
    await sim.start()
  })
  afterAll(async () => {
    await sim?.stop()
    await observer?.endAsync(true)
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses a regex literal RE2 cannot run in linear time, with its line and column', () => {
    const unsafe = (t.daemon.rules.status().files as Array<{ file: string, ok: boolean, errors?: Array<Record<string, unknown>> }>).find(f => f.file === 'unsafe.yaml')
    expect(unsafe?.ok).toBe(false)
    // `/(a)\1/` starts on line 5, column 25 (after `      $contains(devEui, `).
    expect(unsafe?.errors?.[0]).toMatchObject({ path: 'rules[0].if', line: 5, column: 25, code: 'LB_ERR_RULE_COMPILE' })
    expect(String(unsafe?.errors?.[0]?.message)).toMatch(/not supported .*linear-time/)
    expect(t.logs.withCode('LB_ERR_RULE_COMPILE').some(l => l.file === 'unsafe.yaml' && l.line === 5)).toBe(true)
  })

  for (const [rule, fPort, payload, outcome] of [
    ['pad-50m', 11, [1], 'error'],
    ['backtracking-regex', 12, [32], 'answer'],
    ['giant-range', 13, [1], 'error'],
    ['string-doubling', 14, [1], 'error'],
  ] as const) {
    it(`${rule}: ${outcome === 'error' ? 'fails, counted and dead-lettered,' : 'answers'} within budget + ${MARGIN_MS} ms, while the event loop turns and other traffic flows`, async () => {
      const devEui = sim.devices[0]!.devEui.replace(/-/g, '').toLowerCase()
      const other = sim.devices[1]!.devEui.replace(/-/g, '').toLowerCase()
      const before = counters(rule)?.failed ?? 0
      const from = seen.length
      // The longest gap between two turns of the event loop, which the daemon shares with this test.
      let code: unknown
      let gap = 0
      let last = Date.now()
      const ticker = setInterval(() => { const now = Date.now(); gap = Math.max(gap, now - last); last = now }, 5)
      try {
        const sent = Date.now()
        await sim.uplink(0, { port: fPort, data: Buffer.from(payload) })
        await sim.uplink(1, { port: 2, data: Buffer.from([1]) })
        if (outcome === 'error') {
          const letter = await until(() => seen.slice(from).find(m => m.topic === 'lorabridge/_bridge/rules/errors' && (JSON.parse(m.payload) as { rule: string }).rule === rule), `${rule} dead letter`, 30_000)
          const d = JSON.parse(letter.payload) as Record<string, unknown>
          expect(d).toMatchObject({ rule, file: 'attacks.yaml', stage: 'if', app: 'farm', devEui })
          code = d.code
          expect(['LB_ERR_RULE_LIMIT', 'LB_ERR_RULE_TIMEOUT']).toContain(code)
          expect(letter.at - sent).toBeLessThan(BUDGET_MS + MARGIN_MS)
        } else {
          const answer = await until(() => seen.slice(from).find(m => m.topic === `alerts/regex/${devEui}`), `${rule} answer`, 30_000)
          expect(answer.at - sent).toBeLessThan(BUDGET_MS + MARGIN_MS)
        }
        // The same uplink's other rule, and another device's uplink with its rule, went through.
        await until(() => seen.slice(from).some(m => m.topic === `alerts/steady/${devEui}/${fPort}`) || undefined, 'steady rule on the attacking uplink')
        await until(() => seen.slice(from).some(m => m.topic === `lorabridge/farm/devices/${other}/up`) || undefined, 'another device\'s uplink')
        await until(() => seen.slice(from).some(m => m.topic === `alerts/steady/${other}/2`) || undefined, 'steady rule on another uplink')
        // An MQTT round trip through the broker while the attack has just run.
        const ping = Date.now()
        await observer.publishAsync('alerts/ping', 'x', { qos: 1 })
        await until(() => seen.slice(from).some(m => m.topic === 'alerts/ping') || undefined, 'ping round trip')
        expect(Date.now() - ping).toBeLessThan(BUDGET_MS + MARGIN_MS)
      } finally {
        clearInterval(ticker)
      }
      expect(gap).toBeLessThan(BUDGET_MS + MARGIN_MS)
      expect(counters(rule)!.failed).toBe(before + (outcome === 'error' ? 1 : 0))
      if (outcome === 'error') expect(t.logs.withCode(String(code)).some(l => l.rule === rule)).toBe(true)
    })
  }
})
