/**
 * The simulators as a new user runs them (issue 17, friction points 1, 2, 4, 7 and 8): the built
 * `lorabridge simulate …` commands against a real daemon, watched by a real MQTT subscriber.
 *
 * 1. A second run within the deduplication window is a fresh session (new DevAddr, random first
 *    frame counter): its uplinks are published like the first run's, and each run says what it sent.
 * 2. --keep-running keeps the Conduit simulator printing downlinks until Ctrl-C; --duration ends a run.
 * 4. Nothing listening (HTTP, MQTT, ThingPark): one line saying so, exit 1, without app-connect's
 *    15 s of retries.
 * 7. --payload templates with counters, --fport on both (--port deprecated), --api-version
 *    (default 1.1.1; --version points to it), and bad values refused with a clear message.
 * 8. A refused connection prints the CONNACK code and what it means, exit 1.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, runCli } from './helpers/cli.js'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { addUsers } from './helpers/users.js'
import { connect, type MqttClient } from './helpers/mqtt.js'

const GW = '029998e0-6156-cdd4-4523-264b523115c1'
const GW2 = '3f0a5c1e-8d2b-4e6f-9a7c-1b2d3e4f5a6b'
const AS_ID = 'TWA_100000001.1.AS'
const AS_KEY = '0123456789abcdef0123456789abcdef'
const PASSWORD = 'conduit-password-for-tests'
/** Longer than any run here; a run that has not ended by then hangs (friction 4's symptom). */
const HANG_MS = 30_000

type Line = Record<string, unknown>

interface Run {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  lines: () => Line[]
  waitFor: (what: string, pred: () => boolean) => Promise<void>
  /** exit code, or 'hung' when the process was still running after HANG_MS (then killed) */
  done: Promise<number | string | null>
}

function simulate (args: string[], opts: { input?: string, env?: NodeJS.ProcessEnv, hangMs?: number } = {}): Run {
  const child = spawn(process.execPath, [BIN, 'simulate', ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(opts.input ?? '')
  let hung = false
  const timer = opts.hangMs === 0 ? undefined : setTimeout(() => { hung = true; child.kill('SIGKILL') }, opts.hangMs ?? HANG_MS)
  const done = once(child, 'close').then(([code, signal]) => {
    if (timer !== undefined) clearTimeout(timer)
    return hung ? 'hung' : (code as number | null) ?? (signal as string)
  })
  const lines = (): Line[] => stdout.split('\n').flatMap(l => { try { return [JSON.parse(l) as Line] } catch { return [] } })
  const waitFor = async (what: string, pred: () => boolean): Promise<void> => {
    const end = Date.now() + 30_000
    while (!pred()) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`simulator ended while waiting for ${what}: ${stdout}${stderr}`)
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${stdout}${stderr}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  return { child, stdout: () => stdout, stderr: () => stderr, lines, waitFor, done }
}

async function until<T> (what: string, get: () => T | undefined | false): Promise<T> {
  const end = Date.now() + 30_000
  for (;;) {
    const v = get()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('the simulators against a real daemon', () => {
  let t: TestDaemon
  let dir: string
  let sub: MqttClient
  const ups: Array<{ topic: string, payload: Line }> = []
  let mqttUrl: string
  let mqttsUrl: string
  let tpUrl: string
  let ca: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-first-hour-'))
    await addUsers(join(dir, 'data', 'users.yaml'), {
      'conduit-1': { role: 'gateway', gateway: GW, password: PASSWORD },
      'conduit-2': { role: 'gateway', gateway: GW2, password: PASSWORD },
    })
    t = await startTestDaemon({
      thingpark: { connections: [{ name: 'tp', path: '/thingpark/tp', asId: AS_ID, asKeyEnv: 'TP_KEY' }] },
    }, { dir, env: { TP_KEY: AS_KEY } })
    mqttUrl = `mqtt://127.0.0.1:${t.port('mqtt')}`
    mqttsUrl = `mqtts://127.0.0.1:${t.port('mqtts')}`
    tpUrl = `http://127.0.0.1:${t.port('http')}/thingpark/tp`
    ca = join(t.dataDir, 'ca.crt')
    sub = await connect(mqttUrl, { clientId: 'first-hour-observer' })
    sub.on('message', (topic, payload) => { if (topic.endsWith('/up')) ups.push({ topic, payload: JSON.parse(payload.toString()) as Line }) })
    await sub.subscribeAsync('lorabridge/+/devices/+/up', { qos: 1 })
  })

  afterAll(async () => {
    await sub?.endAsync(true)
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const upsOf = (devEui: string): Line[] => ups.filter(u => u.payload.devEui === devEui).map(u => u.payload)

  it('friction 1: a Conduit run repeated at once is a new session, and both runs\' uplinks are published', async () => {
    const dev = '008000ff00000001'
    const runs: Run[] = []
    for (let i = 0; i < 2; i++) {
      const run = simulate(['conduit', '--url', mqttUrl, '--count', '4', '--rate', '20', '--linger', '100'])
      expect(await run.done, run.stderr()).toBe(0)
      runs.push(run)
    }
    await until('eight uplinks', () => upsOf(dev).length >= 8)
    await new Promise(resolve => setTimeout(resolve, 300)) // nothing more comes
    expect(upsOf(dev)).toHaveLength(8)
    // Each run said which session it used and what it sent; the published uplinks are exactly those.
    const sent = runs.flatMap(run => {
      const device = run.lines().find(l => l.event === 'device') as Line
      expect(device).toMatchObject({ devEui: '00-80-00-ff-00-00-00-01', fPort: 1 })
      const uplinks = run.lines().filter(l => l.event === 'uplink')
      expect(uplinks.map(u => [u.fCnt, u.hex])).toEqual([0, 1, 2, 3].map(n => [(device.fCnt as number) + n, `010${n}`]))
      return uplinks.map(u => [dev, device.devAddr, u.fCnt, u.fPort, u.hex])
    })
    expect(upsOf(dev).map(u => [u.devEui, u.devAddr, u.fCnt, u.fPort, u.hex])).toEqual(sent)
    // The DevEUI stays (downlinks are addressed by it); the session does not.
    const [a, b] = runs.map(run => run.lines().find(l => l.event === 'device') as Line)
    expect([a?.devAddr, a?.fCnt]).not.toEqual([b?.devAddr, b?.fCnt])
  })

  it('friction 1: a ThingPark run repeated at once is a new session, and both runs\' uplinks are published', async () => {
    const dev = '0018b20000000c01'
    const runs: Run[] = []
    for (let i = 0; i < 2; i++) {
      const run = simulate(['thingpark', '--url', tpUrl, '--as-id', AS_ID, '--as-key-env', 'TP_KEY', '--dev-eui', dev.toUpperCase(), '--count', '2', '--rate', '20'], { env: { TP_KEY: AS_KEY } })
      expect(await run.done, run.stderr()).toBe(0)
      runs.push(run)
    }
    await until('four ThingPark uplinks', () => upsOf(dev).length >= 4)
    const sent = runs.flatMap(run => {
      const device = run.lines().find(l => l.event === 'device') as Line
      expect(device).toMatchObject({ devEui: dev.toUpperCase(), fPort: 1 })
      return run.lines().filter(l => l.event === 'uplink').map(u => [dev, String(device.devAddr).toLowerCase(), u.fCnt, u.hex])
    })
    expect(sent.map(s => s[3])).toEqual(['010000', '010001', '010000', '010001'])
    expect(upsOf(dev).map(u => [u.devEui, u.devAddr, u.fCnt, u.hex])).toEqual(sent)
  })

  it('friction 2: --keep-running prints a downlink sent after the last uplink, until Ctrl-C; exit 0', async () => {
    const run = simulate(['conduit', '--url', mqttUrl, '--devices', '2', '--count', '2', '--rate', '20', '--keep-running'], { hangMs: 0 })
    await run.waitFor('the keep-running notice', () => run.stderr().includes('printing downlinks until'))
    expect(run.lines().filter(l => l.event === 'device').map(l => l.devEui)).toEqual(['00-80-00-ff-00-00-00-01', '00-80-00-ff-00-00-00-02'])
    await sub.publishAsync('lorabridge/default/devices/008000ff00000002/down', JSON.stringify({ id: 'late', fPort: 3, hex: 'cafe' }), { qos: 1 })
    await run.waitFor('the downlink line', () => run.lines().some(l => l.event === 'downlink'))
    expect(run.lines().filter(l => l.event === 'downlink')).toEqual([{ event: 'downlink', devEui: '00-80-00-ff-00-00-00-02', port: 3, data: 'cafe', topic: expect.stringMatching(/^lorawan\/[0-9a-f-]{36}\/down$/) as unknown }])
    run.child.kill('SIGINT')
    expect(await run.done).toBe(0)
    expect(run.lines().at(-1)).toEqual({ event: 'summary', uplinks: 2, downlinks: 1 })
  })

  it('friction 2: --duration ends a run that has no --count, exit 0', async () => {
    const run = simulate(['conduit', '--url', mqttUrl, '--rate', '10', '--duration', '1.5'])
    expect(await run.done, run.stderr()).toBe(0)
    const summary = run.lines().at(-1)
    expect(summary).toMatchObject({ event: 'summary' })
    expect(summary?.uplinks).toBeGreaterThan(0)
    expect(run.lines().filter(l => l.event === 'uplink')).toHaveLength(summary?.uplinks as number)
  })

  it('friction 4: nothing listening: HTTP, MQTT and ThingPark each exit 1 with one line that says so', async () => {
    const http = simulate(['conduit', '--url', 'http://127.0.0.1:1', '--count', '1'])
    const mqtt = simulate(['conduit', '--url', 'mqtt://127.0.0.1:1', '--count', '1'])
    const tp = simulate(['thingpark', '--url', 'http://127.0.0.1:1/thingpark/tp', '--as-id', AS_ID, '--as-key', AS_KEY, '--count', '1'])
    expect(await http.done).toBe(1)
    expect(http.stderr()).toMatch(/^simulate conduit: cannot connect to http:\/\/127\.0\.0\.1:1: connect ECONNREFUSED 127\.0\.0\.1:1 — nothing listens there; is the daemon running/)
    expect(http.stderr().trim().split('\n')).toHaveLength(1)
    expect(await mqtt.done).toBe(1)
    expect(mqtt.stderr()).toMatch(/^simulate conduit: cannot connect to mqtt:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/)
    expect(await tp.done).toBe(1)
    expect(tp.stderr()).toMatch(/^simulate thingpark: cannot post to http:\/\/127\.0\.0\.1:1\/thingpark\/tp: connect ECONNREFUSED 127\.0\.0\.1:1 — nothing listens there/)
  })

  it('friction 7: --payload templates, --dev-addr, --fcnt and --fport reach the normalized uplinks (Conduit)', async () => {
    const dev = '008000ff00000001'
    const before = upsOf(dev).length
    const run = simulate(['conduit', '--url', mqttUrl, '--count', '2', '--rate', '20', '--linger', '100', '--payload', '02{fcnt}{n}', '--fcnt', '65535', '--dev-addr', '26AABB00', '--fport', '7'])
    expect(await run.done, run.stderr()).toBe(0)
    await until('two uplinks', () => upsOf(dev).length >= before + 2)
    // {fcnt} on two bytes wraps with the frame header's counter; the JSON fCnt does not.
    expect(upsOf(dev).slice(before).map(u => [u.devAddr, u.fCnt, u.fPort, u.hex])).toEqual([['26aabb00', 65535, 7, '02ffff00'], ['26aabb00', 65536, 7, '02000001']])
  })

  it('friction 7: the same options on the ThingPark simulator', async () => {
    const dev = '0018b20000000c02'
    const run = simulate(['thingpark', '--url', tpUrl, '--as-id', AS_ID, '--as-key-env', 'TP_KEY', '--dev-eui', dev, '--count', '2', '--rate', '20',
      '--payload', 'ff{n}{fcnt:4}', '--fcnt', '5', '--dev-addr', '26000abc', '--fport', '9'], { env: { TP_KEY: AS_KEY } })
    expect(await run.done, run.stderr()).toBe(0)
    await until('two uplinks', () => upsOf(dev).length >= 2)
    expect(upsOf(dev).map(u => [u.devAddr, u.fCnt, u.fPort, u.hex])).toEqual([['26000abc', 5, 9, 'ff0000000005'], ['26000abc', 6, 9, 'ff0100000006']])
  })

  it('friction 7: --port still works with a notice; --version points to --api-version; the default API version is 1.1.1', async () => {
    const statuses: Line[] = []
    const watcher = await connect(mqttUrl, { clientId: 'first-hour-status' })
    watcher.on('message', (_topic, payload) => { if (payload.length > 0) statuses.push(JSON.parse(payload.toString()) as Line) })
    const gw = 'aa99aa00-0000-4000-8000-000000000001'
    await watcher.subscribeAsync(`lorabridge/gateways/${gw}/status`, { qos: 1 })
    const dev = '008000ff00000001'
    const before = upsOf(dev).length
    const run = simulate(['conduit', '--url', mqttUrl, '--count', '1', '--linger', '100', '--port', '5', '--gw-uuid', gw])
    expect(await run.done, run.stderr()).toBe(0)
    expect(run.stderr()).toContain('--port is deprecated; use --fport')
    await until('the uplink', () => upsOf(dev).length > before)
    expect(upsOf(dev).at(-1)).toMatchObject({ fPort: 5, network: { protocol: '1.1.1' } })
    expect(statuses[0]).toMatchObject({ online: true, protocol: '1.1.1' })
    await watcher.endAsync(true)

    const old = simulate(['conduit', '--url', mqttUrl, '--version', '1.1', '--count', '1'])
    expect(await old.done).toBe(2)
    expect(old.stderr()).toContain('--version is now --api-version')
    expect(old.stdout()).toBe('')
  })

  it('friction 7: malformed values are refused before connecting, each with a message naming the option', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--payload', '01{x}'], /--payload: unexpected "\{x\}" at character 3/],
      [['--payload', '0{n}'], /--payload: an odd number of hex digits/],
      [['--payload', '<script>'], /--payload: unexpected/],
      [['--dev-addr', '26zz0000'], /--dev-addr must be 8 hex digits/],
      [['--fcnt', '-1'], /--fcnt must be an integer from 0 to 4294967295/],
      [['--fport', '300'], /--fport must be 0-255/],
      [['--api-version', '2.0'], /--api-version must be one of 1\.0, 1\.1, 1\.1\.1/],
      [['--duration', '0'], /--duration must be a positive number/],
    ]
    for (const [args, message] of cases) {
      const run = simulate(['conduit', '--url', 'mqtt://127.0.0.1:1', '--count', '1', ...args])
      expect(await run.done, args.join(' ')).toBe(1)
      expect(run.stderr(), args.join(' ')).toMatch(message)
      expect(run.stderr(), args.join(' ')).not.toMatch(/ECONNREFUSED|\n\s+at /) // refused before connecting, no stack
    }
  })

  it('friction 8: a gateway user bound to a GW-UUID, connecting without --gw-uuid, is told CONNACK 5 and to check --gw-uuid', async () => {
    const run = simulate(['conduit', '--url', mqttsUrl, '--ca', ca, '--username', 'conduit-1', '--password-stdin', '--count', '1'], { input: `${PASSWORD}\n` })
    expect(await run.done).toBe(1)
    expect(run.stderr()).toBe('simulate conduit: connection refused: CONNACK 5 not authorized — check --username/--password, and --gw-uuid for a gateway user bound to a GW-UUID (users add … --gateway UUID); the daemon\'s log line "authentication refused" gives the reason\n')
    expect(run.lines()).toEqual([]) // no device or summary lines for a run that never started
    // The daemon refused it for the reason the message points to.
    const refusal = t.logs.lines.find(l => l.msg === 'authentication refused' && l.user === 'conduit-1')
    expect(refusal).toMatchObject({ code: 'LB_ERR_AUTH_CLIENT_ID', reason: 'client id names another gateway' })

    const wrong = simulate(['conduit', '--url', mqttsUrl, '--ca', ca, '--username', 'conduit-1', '--password-stdin', '--gw-uuid', GW, '--count', '1'], { input: 'not-the-password\n' })
    expect(await wrong.done).toBe(1)
    expect(wrong.stderr()).toMatch(/^simulate conduit: connection refused: CONNACK 4 bad user name or password — check --username and --password/)

    const right = simulate(['conduit', '--url', mqttsUrl, '--ca', ca, '--username', 'conduit-1', '--password-stdin', '--gw-uuid', GW, '--count', '1', '--linger', '100'], { input: `${PASSWORD}\n` })
    expect(await right.done, right.stderr()).toBe(0)
    expect(right.lines().find(l => l.event === 'device')).toMatchObject({ gateway: GW })
  })

  it('friction 8: a connection the broker closes and then refuses (a ban) ends the run with the CONNACK code, exit 1', async () => {
    const run = simulate(['conduit', '--url', mqttsUrl, '--ca', ca, '--username', 'conduit-2', '--password-stdin', '--gw-uuid', GW2, '--count', '1', '--keep-running'], { input: `${PASSWORD}\n`, hangMs: 0 })
    await run.waitFor('the keep-running notice', () => run.stderr().includes('printing downlinks until'))
    const ban = await runCli(['-c', t.configFile, 'ban', 'add', '--user', 'conduit-2', '--reason', 'first-hour test'])
    expect(ban.code, ban.stderr).toBe(0)
    const guard = setTimeout(() => run.child.kill('SIGKILL'), 60_000)
    expect(await run.done).toBe(1)
    clearTimeout(guard)
    expect(run.stderr()).toContain(`simulate conduit: connection to ${mqttsUrl} lost; reconnecting`)
    expect(run.stderr()).toMatch(/simulate conduit: connection refused: CONNACK 5 not authorized — check --username\/--password/)
    expect(run.lines().some(l => l.event === 'summary')).toBe(false)
  })
})
