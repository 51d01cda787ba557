/**
 * The example rule files shipped in rules/, each exercised through `lorabridge rules check` and
 * `lorabridge rules test` as an operator would.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli } from './helpers/cli.js'

const RULES = fileURLToPath(new URL('../rules', import.meta.url))

describe('shipped example rules', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lorabridge-examples-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  const test = async (event: Record<string, unknown>, on = 'up'): Promise<Record<string, unknown>> => {
    const file = join(dir, `event-${Math.random().toString(36).slice(2)}.json`)
    await writeFile(file, JSON.stringify(event))
    const r = await runCli(['rules', 'test', RULES, '--event', file, '--on', on], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    return JSON.parse(r.stdout) as Record<string, unknown>
  }
  const uplink = (hex: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id: 'f1f2f3f4-0000-8000-8000-000000000001', app: 'farm', devEui: '0080000000015834', fPort: 2, fCnt: 7,
    data: Buffer.from(hex, 'hex').toString('base64'), hex, receivedAt: '2026-11-21T06:00:00.000Z',
    network: { type: 'multitech', transport: 'mqtt', protocol: '1.1' }, ...extra,
  })

  it('compile: `rules check rules` succeeds', async () => {
    const r = await runCli(['rules', 'check', RULES], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/4 files ok, 4 rules, 1 decoder/)
    // Every shipped expression runs compiled.
    expect(r.stdout).toMatch(/^9 of 9 expressions compiled to synchronous code$/m)
  })

  it('`rules check` names the expressions that run on the reference evaluator, and why', async () => {
    const own = await mkdtemp(join(tmpdir(), 'lorabridge-rules-engine-'))
    try {
      await writeFile(join(own, 'mixed.yaml'), 'rules:\n  - name: doubled\n    on: up\n    downlink: \'{ "fPort": 1, "hex": $join($map(bytes, function($b) { $hex([$b, $b]) })) }\'\n  - name: plain\n    if: fPort = 2\n    publish: { topic: \'"x/" & devEui\', payload: \'{ "n": $count(bytes) }\' }\n')
      const r = await runCli(['rules', 'check', own], { cwd: own })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^3 of 4 expressions compiled to synchronous code; 1 on the reference evaluator:$/m)
      expect(r.stdout).toMatch(/^ {2}mixed\.yaml: rule "doubled" downlink runs on the reference evaluator: lambda expressions$/m)
    } finally {
      await rm(own, { recursive: true, force: true })
    }
  })

  it('tank-level-sensor decodes a known byte layout', async () => {
    // level 82 %, battery 0x0ce4 = 3300 mV, temperature 0xfff6 LE → -1.0 °C, flags 0b10: alarm, pump off
    const out = await test(uplink('520ce4f6ff02'))
    expect(out.decoder).toBe('tank-level-sensor')
    expect(out.decoded).toEqual({ level: 82, battery: 3.3, temperature: -1, pumpRunning: false, alarm: true })
  })

  it('close-valve-when-full sends a downlink above 80 %, not below', async () => {
    const full = await test(uplink('520ce4f6ff00'))
    expect(full.downlinks).toEqual([{ app: 'farm', devEui: '0080000000015834', request: { fPort: 3, hex: '0152', id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown } }])
    const half = await test(uplink('320ce4f6ff00'))
    expect(half.downlinks).toEqual([])
    expect(half.matched).toContain('close-valve-when-full')
  })

  it('low-battery-alert publishes below 3.3 V', async () => {
    const low = await test(uplink('100c80000000'))
    expect(low.publications).toEqual([{ topic: 'alerts/farm/0080000000015834/battery', payload: { devEui: '0080000000015834', battery: 3.2, at: '2026-11-21T06:00:00.000Z' }, qos: 1, retain: false }])
    expect((await test(uplink('100ce4000000'))).publications).toEqual([])
  })

  it('downlink-failed-alert publishes every failed downlink', async () => {
    const out = await test({ id: 'dl-9', app: 'farm', devEui: '0080000000015834', receivedAt: '2026-11-21T06:00:00.000Z', command: 'down', reason: 'no-route', detail: 'no uplink seen' }, 'down/failed')
    expect(out.publications).toEqual([{ topic: 'alerts/farm/0080000000015834/downlink', payload: { id: 'dl-9', reason: 'no-route', detail: 'no uplink seen', at: '2026-11-21T06:00:00.000Z' }, qos: 1, retain: false }])
  })

  it('quickstart-echo answers FPort 10 of the default application with 0xAC and the payload', async () => {
    const out = await test(uplink('0102', { app: 'default', devEui: '008000ff00000001', fPort: 10 }))
    expect(out.matched).toEqual(['quickstart-echo'])
    expect(out.downlinks).toEqual([{ app: 'default', devEui: '008000ff00000001', request: { fPort: 11, hex: 'ac0102', id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown } }])
    expect(out.decoded).toBeUndefined()
    // Other ports of `default`, and FPort 10 of another application, are left alone.
    expect((await test(uplink('0102', { app: 'default', fPort: 2 }))).matched).toEqual([])
    expect((await test(uplink('0102', { fPort: 10 }))).matched).toEqual([])
  })

  it('other applications are untouched', async () => {
    const out = await test(uplink('520ce4f6ff00', { app: 'city' }))
    expect(out).toMatchObject({ matched: [], downlinks: [], publications: [] })
    expect(out.decoded).toBeUndefined()
  })

  it('`rules check` on a broken file prints file:line:column and exits 1', async () => {
    await writeFile(join(dir, 'broken.yaml'), 'rules:\n  - name: x\n    if: decoded.level >\n    downlink: \'{}\'\n')
    const r = await runCli(['rules', 'check', dir], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^broken\.yaml:3:\d+: rules\[0\]\.if: JSONata: /m)
  })
})
