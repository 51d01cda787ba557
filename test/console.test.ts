/**
 * The admin web console (docs/console.md) against a real daemon: login and sessions over HTTP,
 * bad input, the MQTT-over-WebSocket tail's one-time secrets; then Debian's Chromium driven by
 * playwright-core through the real page — log in, a simulated Conduit comes online, its uplink
 * shows in the live tail, the device with its signal, the rules with an error's position, and
 * "try it". Screenshots go to test-artifacts/console/.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { createConnection } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, connackCode, until, type MqttClient } from './helpers/mqtt.js'
import { writeUsersFile, type User } from '../src/auth/users-file.js'
import { hashPassword } from '../src/auth/password.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { SessionStore, ConsoleTokens, LoginLimiter } from '../src/console/sessions.js'
import { TANK_DECODER } from './fixtures/farm-rules.js'

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/console/', import.meta.url))
const CHROMIUM = '/usr/bin/chromium'
const FARM_APPEUI = '16-ea-76-f6-ab-66-3d-80'
/** The page polls every 5 s and refreshes sooner on what the tail shows. */
const POLL = { timeout: 15_000, interval: 100 }

const DECODER = TANK_DECODER
const VALVE = `rules:
  - name: close-valve
    on: up
    when: { app: farm, fPort: 2 }
    if: decoded.level > 80
    downlink: |
      { "fPort": 3, "hex": $hex([1, decoded.level]) }
  - name: battery-report
    on: up
    when: { app: farm }
    publish:
      topic: '"farm/" & devEui & "/battery"'
      payload: '{ "volts": decoded.battery }'
`
// A JSONata syntax error: the console shows where it is.
const BROKEN = `rules:
  - name: broken
    on: up
    if: decoded.level >> 3
    downlink: '{ "fPort": 1, "hex": "00" }'
`

async function usersFile (dataDir: string, users: Array<{ name: string, role: User['role'], password: string }>): Promise<void> {
  await mkdir(dataDir, { recursive: true })
  const map = new Map<string, User>()
  for (const u of users) map.set(u.name, { name: u.name, role: u.role, passwordHash: await hashPassword(u.password), apps: u.role === 'consumer' ? ['*'] : [], downlink: false })
  await writeUsersFile(join(dataDir, 'users.yaml'), map)
}

async function startConsoleDaemon (): Promise<{ t: TestDaemon, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lorabridge-console-'))
  await mkdir(join(dir, 'rules'))
  await writeFile(join(dir, 'rules', 'decoders.yaml'), DECODER)
  await writeFile(join(dir, 'rules', 'valve.yaml'), VALVE)
  await writeFile(join(dir, 'rules', 'zz-broken.yaml'), BROKEN)
  // A vendor's codec (TS013) for the sensors on fPort 85 (docs/codecs.md).
  await mkdir(join(dir, 'rules', 'codecs'))
  await copyFile(new URL('./fixtures/codecs/tlv-sensor.js', import.meta.url), join(dir, 'rules', 'codecs', 'tlv-sensor.js'))
  await writeFile(join(dir, 'rules', 'sensors.yaml'), 'decoders:\n  - name: tlv\n    when: { fPort: 85 }\n    codec: codecs/tlv-sensor.js\n')
  await usersFile(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }, { name: 'viewer', role: 'consumer', password: 'viewer-secret' }])
  const t = await startTestDaemon({
    applications: [{ name: 'farm', match: { appEui: [FARM_APPEUI] } }],
    mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
    rules: { dir: './rules' },
  }, { dir })
  return { t, dir }
}

describe('web console over HTTP', () => {
  let t: TestDaemon
  let dir: string
  let base: string
  const clients: MqttClient[] = []

  const login = (username: string, password: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${base}/console/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username, password }) })
  const cookieOf = (res: Response): string => (res.headers.get('set-cookie') ?? '').split(';')[0]!
  const get = (path: string, cookie?: string): Promise<Response> => fetch(`${base}${path}`, { headers: cookie !== undefined ? { cookie } : {} })
  const post = (path: string, cookie: string, body: string, type = 'application/json', extra: Record<string, string> = {}): Promise<Response> =>
    fetch(`${base}${path}`, { method: 'POST', headers: { cookie, 'content-type': type, ...extra }, body })
  const adminCookie = async (): Promise<string> => {
    const res = await login('root', 'admin-secret')
    expect(res.status).toBe(200)
    return cookieOf(res)
  }

  beforeAll(async () => {
    ({ t, dir } = await startConsoleDaemon())
    base = `http://127.0.0.1:${t.port('http')}`
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true).catch(() => {})))
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('without a session: / is the login page, the API and the console files answer 401', async () => {
    const page = await get('/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(page.headers.get('x-frame-options')).toBe('DENY')
    const html = await page.text()
    expect(html).toContain('id="login"')
    expect(html).not.toContain('console.js')
    for (const path of ['/console/api/gateways', '/console/api/devices', '/console/api/rules', '/console/api/session', '/console/static/console.js', '/console/static/mqtt.min.js']) {
      const res = await get(path)
      expect(res.status, path).toBe(401)
      expect(await res.json()).toMatchObject({ error: 'LB_ERR_CONSOLE_SESSION' })
    }
    expect((await get('/console/static/login.js')).status).toBe(200)
    expect((await get('/console/static/console.css')).status).toBe(200)
    expect((await get('/console/api/nope')).status).toBe(404)
  })

  it('refuses a wrong password, an unknown user and a non-admin alike (401), with codes logged and counted', async () => {
    const before = await t.counter('authFailures', { code: 'LB_ERR_CONSOLE_LOGIN' })
    const wrong = await login('root', 'not-the-password')
    expect(wrong.status).toBe(401)
    expect(wrong.headers.get('set-cookie')).toBeNull()
    expect(await wrong.json()).toMatchObject({ error: 'LB_ERR_CONSOLE_LOGIN' })
    const unknown = await login('nobody', 'x')
    expect(unknown.status).toBe(401)
    expect(await unknown.json()).toMatchObject({ error: 'LB_ERR_CONSOLE_LOGIN' })
    expect(await t.counter('authFailures', { code: 'LB_ERR_CONSOLE_LOGIN' })).toBe(before + 2)
    expect(t.logs.withCode('LB_ERR_CONSOLE_LOGIN').map(l => l.user)).toEqual(expect.arrayContaining(['root', 'nobody']))
    // Passwords never reach the log.
    expect(JSON.stringify(t.logs.lines)).not.toContain('not-the-password')

    // A non-admin's right password is answered like any failure (test/security/console-login.test.ts),
    // and logged and counted under a code of its own.
    const viewer = await login('viewer', 'viewer-secret')
    expect(viewer.status).toBe(401)
    expect(viewer.headers.get('set-cookie')).toBeNull()
    expect(await viewer.json()).toMatchObject({ error: 'LB_ERR_CONSOLE_LOGIN' })
    expect(await t.counter('authFailures', { code: 'LB_ERR_CONSOLE_FORBIDDEN' })).toBe(1)
  })

  it('logs an admin in with an HttpOnly, SameSite=Strict session cookie; the console and its API answer', async () => {
    const res = await login('root', 'admin-secret')
    expect(res.status).toBe(200)
    const setCookie = res.headers.get('set-cookie') ?? ''
    expect(setCookie).toMatch(/^lorabridge_console=[A-Za-z0-9_-]{43}; /)
    expect(setCookie).toContain('HttpOnly')
    expect(setCookie).toContain('SameSite=Strict')
    expect(setCookie).toContain('Path=/')
    expect(setCookie).not.toContain('Secure') // plain http here; see the https test below
    const cookie = cookieOf(res)

    const page = await get('/', cookie)
    expect(await page.text()).toContain('console.js')
    expect(await (await get('/console/api/session', cookie)).json()).toMatchObject({ user: 'root', topicRoot: 'lorabridge', mqttPath: '/console/mqtt' })
    expect(await (await get('/console/api/gateways', cookie)).json()).toEqual({ gateways: [] })
    expect(await (await get('/console/api/devices', cookie)).json()).toMatchObject({ count: 0, devices: [], rate: expect.any(Array) as unknown })
    const rules = await (await get('/console/api/rules', cookie)).json() as { files: Array<{ file: string, ok: boolean, errors?: Array<{ line: number, column: number, code: string }> }>, rules: Array<{ name: string, counters: Record<string, number> }> }
    expect(rules.rules.map(r => r.name)).toEqual(['close-valve', 'battery-report'])
    expect(rules.rules[0]?.counters).toMatchObject({ matched: 0, passed: 0 })
    const broken = rules.files.find(f => f.file === 'zz-broken.yaml')
    expect(broken?.ok).toBe(false)
    expect(broken?.errors?.[0]).toMatchObject({ code: 'LB_ERR_RULE_COMPILE', line: 4, column: expect.any(Number) as unknown })
    const bundle = await get('/console/static/mqtt.min.js', cookie)
    expect(bundle.status).toBe(200)
    expect((await bundle.text()).length).toBeGreaterThan(100_000)
  })

  it('accepts only application/json POSTs from its own origin', async () => {
    const cookie = await adminCookie()
    const body = JSON.stringify({ event: { app: 'farm', devEui: '0011223344556677' } })
    const asText = await post('/console/api/rules/try', cookie, body, 'text/plain')
    expect(asText.status).toBe(415)
    expect(await asText.json()).toMatchObject({ error: 'LB_ERR_CONSOLE_REQUEST' })
    expect((await post('/console/api/rules/try', cookie, 'event=1', 'application/x-www-form-urlencoded')).status).toBe(415)
    const form = await fetch(`${base}/console/api/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=root&password=admin-secret' })
    expect(form.status).toBe(415)
    const crossSite = await post('/console/api/rules/try', cookie, body, 'application/json', { origin: 'https://evil.example' })
    expect(crossSite.status).toBe(403)
    expect(await crossSite.json()).toMatchObject({ error: 'LB_ERR_CONSOLE_ORIGIN' })
    expect((await login('root', 'admin-secret', { origin: 'https://evil.example' })).status).toBe(403)
    expect((await post('/console/api/rules/try', cookie, body, 'application/json', { origin: base })).status).toBe(200)
  })

  it('try-it runs the rules on a pasted event; bad input gets 400/413 with a code and never hurts the daemon', async () => {
    const cookie = await adminCookie()
    const event = { id: 'e1', app: 'farm', devEui: '008000ff00000042', fPort: 2, hex: '5b0e10', data: 'Ww4Q', receivedAt: '2026-01-01T00:00:00Z', network: { type: 'multitech' } }
    const ok = await post('/console/api/rules/try', cookie, JSON.stringify({ on: 'up', event }))
    expect(ok.status).toBe(200)
    const result = await ok.json() as Record<string, unknown>
    expect(result).toMatchObject({
      on: 'up',
      decoder: 'tank',
      decoded: { level: 91, battery: 3.6 },
      matched: ['close-valve', 'battery-report'],
      downlinks: [{ app: 'farm', devEui: '008000ff00000042', request: { fPort: 3, hex: '015b' } }],
      publications: [{ topic: 'farm/008000ff00000042/battery', payload: { volts: 3.6 } }],
    })
    // A dry run: nothing was sent, and the daemon's own counters did not move.
    const rules = await (await get('/console/api/rules', cookie)).json() as { rules: Array<{ counters: Record<string, number> }> }
    expect(rules.rules[0]?.counters.matched).toBe(0)

    const cases: Array<[string, number, string]> = [
      ['{"event": {', 400, 'LB_ERR_CONSOLE_REQUEST'],
      ['[1, 2]', 400, 'LB_ERR_CONSOLE_REQUEST'],
      ['{"on": "up"}', 400, 'LB_ERR_CONSOLE_REQUEST'],
      ['{"on": "sideways", "event": {}}', 400, 'LB_ERR_CONSOLE_REQUEST'],
      [JSON.stringify({ event: { app: 'farm', pad: 'x'.repeat(70_000) } }), 413, 'LB_ERR_CONSOLE_TOO_LARGE'],
    ]
    for (const [body, status, code] of cases) {
      const res = await post('/console/api/rules/try', cookie, body)
      expect(res.status, body.slice(0, 40)).toBe(status)
      expect(await res.json()).toMatchObject({ error: code })
    }
    expect(await t.daemon.console.refusals.get().then(m => m.values.find(v => v.labels.code === 'LB_ERR_CONSOLE_TOO_LARGE')?.value)).toBe(1)
    // An event the expressions choke on is the rules' failure, reported in the result.
    const odd = await post('/console/api/rules/try', cookie, JSON.stringify({ event: { app: 'farm', devEui: 'zz', fPort: 2, hex: 'zz' } }))
    expect(odd.status).toBe(200)
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
  })

  it('the live tail: MQTT over WebSocket on the console listener with one-time secrets, for live sessions only', async () => {
    const cookie = await adminCookie()
    const url = `ws://127.0.0.1:${t.port('http')}/console/mqtt`
    const mint = async (): Promise<{ username: string, password: string, path: string }> => {
      const res = await post('/console/api/mqtt-token', cookie, '{}')
      expect(res.status).toBe(200)
      return await res.json() as { username: string, password: string, path: string }
    }
    const cred = await mint()
    expect(cred).toMatchObject({ username: 'root', path: '/console/mqtt' })
    expect(cred.password).not.toContain('admin-secret')

    // Without the session cookie the upgrade itself is refused.
    const noCookie = await new Promise<string>(resolve => {
      const ws = new WebSocket(url, 'mqtt')
      ws.on('unexpected-response', (_req, res) => { resolve(String(res.statusCode)) })
      ws.on('error', err => { resolve(err.message) })
      ws.on('open', () => { ws.close(); resolve('open') })
    })
    expect(noCookie).toBe('401')

    const wsOptions = { headers: { cookie } }
    const client = await connect(url, { username: cred.username, password: cred.password, clientId: 'console-test', wsOptions })
    clients.push(client)
    // The admin may read every normalized topic.
    const granted = await client.subscribeAsync('lorabridge/#', { qos: 0 })
    expect(granted[0]?.qos).toBe(0)
    expect(t.logs.find(l => l.msg === 'client authenticated' && l.clientId === 'console-test')).toMatchObject({ user: 'root', role: 'admin', via: 'token', protocol: 'ws' })

    // Spent: the same secret is refused the second time (CONNACK 4), as is one for another user.
    expect(await connackCode(url, { username: cred.username, password: cred.password, clientId: 'console-replay', wsOptions })).toBe(4)
    const other = await mint()
    expect(await connackCode(url, { username: 'viewer', password: other.password, clientId: 'console-other', wsOptions })).toBe(4)
    // Nor is a secret a password anywhere else, nor a way into the console.
    const third = await mint()
    expect((await login('root', third.password)).status).toBe(401)

    // Logging out ends the session: its API answers 401 and its tail connection is closed.
    const closed = new Promise<void>(resolve => { client.once('close', () => { resolve() }) })
    const out = await post('/console/api/logout', cookie, '{}')
    expect(out.status).toBe(204)
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0')
    await closed
    expect((await get('/console/api/gateways', cookie)).status).toBe(401)
    expect(await (await get('/', cookie)).text()).toContain('id="login"')
    expect((await post('/console/api/mqtt-token', cookie, '{}')).status).toBe(401)
  })

  it('survives clients that reset in the middle of the WebSocket upgrade', async () => {
    const cookie = await adminCookie()
    for (let i = 0; i < 20; i++) {
      const socket = createConnection({ host: '127.0.0.1', port: t.port('http') })
      await once(socket, 'connect')
      socket.write(`GET /console/mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16, i).toString('base64')}\r\nSec-WebSocket-Protocol: mqtt\r\nCookie: ${cookie}\r\n\r\n`)
      if (i % 2 === 0) await new Promise(resolve => setImmediate(resolve))
      socket.resetAndDestroy()
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    expect((await get('/console/api/gateways', cookie)).status).toBe(200)
  })

  it('limits failed logins per address (429), counted', async () => {
    t.daemon.console.limiter.succeed('127.0.0.1')
    const codes: number[] = []
    for (let i = 0; i < 11; i++) codes.push((await login('root', `guess-${i}`)).status)
    expect(codes.slice(0, 10)).toEqual(new Array(10).fill(401))
    expect(codes[10]).toBe(429)
    // Even the right password waits for the window to pass.
    const blocked = await login('root', 'admin-secret')
    expect(blocked.status).toBe(429)
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await t.counter('authFailures', { code: 'LB_ERR_CONSOLE_LOGIN_RATE' })).toBe(2)
    t.daemon.console.limiter.succeed('127.0.0.1')
    expect((await login('root', 'admin-secret')).status).toBe(200)
  })

  it('a user removed from the users file loses the console at once', async () => {
    const cookie = await adminCookie()
    expect((await get('/console/api/gateways', cookie)).status).toBe(200)
    await usersFile(join(dir, 'data'), [{ name: 'viewer', role: 'consumer', password: 'viewer-secret' }])
    await until(async () => (await get('/console/api/gateways', cookie)).status === 401, 'the session to end', 10_000)
    await usersFile(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }, { name: 'viewer', role: 'consumer', password: 'viewer-secret' }])
  })
})

describe('console sessions', () => {
  it('end when idle too long or too old; tokens are single-use and expire; failures are windowed', () => {
    let now = 0
    const sessions = new SessionStore({ idleMs: 1000, maxAgeMs: 5000, maxSessions: 2, now: () => now })
    const a = sessions.create('root')
    now = 900
    expect(sessions.touch(a.id)).toBe(a)
    now = 1800
    expect(sessions.touch(a.id)).toBe(a)
    now = 2900
    expect(sessions.touch(a.id)).toBeUndefined() // idle 1100 ms
    const b = sessions.create('root')
    for (now = 3000; now < 8000; now += 900) expect(sessions.touch(b.id)).toBe(b)
    now = 8100
    expect(sessions.touch(b.id)).toBeUndefined() // older than 5 s
    const c = sessions.create('x')
    sessions.create('y')
    sessions.create('z')
    expect(sessions.touch(c.id)).toBeUndefined() // evicted: at most 2
    expect(sessions.size).toBe(2)

    const tokens = new ConsoleTokens(1000, 10, () => now)
    const { secret } = tokens.mint('root', 's1')
    expect(tokens.consume('viewer', Buffer.from(secret))).toBe(false)
    const again = tokens.mint('root', 's1').secret
    expect(tokens.consume('root', Buffer.from(again))).toBe(true)
    expect(tokens.consume('root', Buffer.from(again))).toBe(false)
    const late = tokens.mint('root', 's1').secret
    now += 1001
    expect(tokens.consume('root', Buffer.from(late))).toBe(false)
    const revoked = tokens.mint('root', 's2').secret
    tokens.revokeSession('s2')
    expect(tokens.consume('root', Buffer.from(revoked))).toBe(false)
    expect(tokens.consume('root', Buffer.from('a plain password'))).toBe(false)

    const limiter = new LoginLimiter(2, 1000, 10, () => now)
    limiter.fail('a')
    limiter.fail('a')
    expect(limiter.blockedFor('a')).toBe(1)
    expect(limiter.blockedFor('b')).toBe(0)
    now += 1001
    expect(limiter.blockedFor('a')).toBe(0)
  })
})

describe('web console over https', () => {
  let t: TestDaemon
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lorabridge-console-tls-'))
    await usersFile(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'https', host: '127.0.0.1', port: 0 }, { protocol: 'http', host: '127.0.0.1', port: 0, console: false }] },
    }, { dir })
  })
  afterAll(async () => { await t?.stop() })

  it('marks the cookie Secure, and is absent from a listener with console: false', async () => {
    const setCookie = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: t.port('https'), path: '/console/api/login', method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, res => {
        res.resume()
        resolve(String(res.headers['set-cookie'] ?? ''))
      })
      req.on('error', reject)
      req.end(JSON.stringify({ username: 'root', password: 'admin-secret' }))
    })
    expect(setCookie).toContain('HttpOnly')
    expect(setCookie).toContain('SameSite=Strict')
    expect(setCookie).toContain('Secure')
    expect((await fetch(`http://127.0.0.1:${t.port('http')}/`)).status).toBe(404)
    expect((await fetch(`http://127.0.0.1:${t.port('http')}/healthz`)).status).toBe(200)
  })
})

describe.skipIf(!existsSync(CHROMIUM))('web console in Chromium', () => {
  let t: TestDaemon
  let dir: string
  let browser: Browser
  let page: Page
  const sims: ConduitSimulator[] = []
  const problems: string[] = []
  const shot = async (name: string): Promise<void> => { await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) }) }

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true })
    ;({ t, dir } = await startConsoleDaemon())
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    // Script errors and CSP violations fail the test: the page must run as served.
    page.on('pageerror', err => { problems.push(`pageerror: ${err.message}`) })
    page.on('console', msg => { if (msg.type() === 'error' && !/401/.test(msg.text())) problems.push(`console: ${msg.text()}`) })
  })
  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await browser?.close()
    await t?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('log in, see a Conduit come online and its uplink live, the device and the rules, run "try it"', async () => {
    const base = `http://127.0.0.1:${t.port('http')}`
    await page.goto(`${base}/`)
    await page.locator('#login').waitFor()
    await page.fill('#username', 'root')
    await page.fill('#password', 'wrong')
    await page.click('button[type=submit]')
    await expect.poll(() => page.locator('#login-error').textContent(), POLL).toContain('wrong password')
    await page.fill('#username', 'root')
    await page.fill('#password', 'admin-secret')
    await shot('01-login')
    await page.click('button[type=submit]')
    await page.locator('#user', { hasText: 'root' }).waitFor()
    // The tail is connected before anything happens, so that it sees it live.
    await page.locator('#live.on').waitFor()

    // A simulated Conduit (app-connect 1.1 over MQTT) with three farm devices comes online.
    const sim = new ConduitSimulator({
      url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', gwUuid: '029998e0-6156-cdd4-4523-264b523115c1',
      devices: [0, 1, 2].map(i => generatedDevice(40 + i, FARM_APPEUI)),
    })
    sims.push(sim)
    await sim.start()
    const gwRow = page.locator('tr[data-gateway="029998e0-6156-cdd4-4523-264b523115c1"]')
    await gwRow.locator('.badge.ok', { hasText: 'Online' }).waitFor()
    expect(await gwRow.textContent()).toContain('app-connect 1.1')
    await shot('02-gateways')

    // Its uplinks: the first one's tank level (91) makes close-valve send a downlink.
    const devEui = sim.devices[0]!.devEui.replace(/-/g, '')
    await sim.uplink(0, { port: 2, data: Buffer.from([91, 0x0e, 0x10]) })
    for (const i of [1, 2, 1, 2]) await sim.uplink(i, { port: 2, data: Buffer.from([30 + i * 10, 0x0e, 0x42]) })
    await page.click('a[data-tab=tail]')
    const upLine = page.locator('#tail li', { hasText: `lorabridge/farm/devices/${devEui}/up` })
    await upLine.first().waitFor()
    expect(await upLine.first().textContent()).toContain(`devEui ${devEui}`)
    await page.locator('#tail li', { hasText: `lorabridge/farm/devices/${devEui}/down/queued` }).first().waitFor()
    await page.locator('#stat-devices', { hasText: '3' }).waitFor()
    await upLine.first().click()
    await page.locator('#tail li pre').first().waitFor()
    await shot('03-live-tail')

    await page.click('a[data-tab=devices]')
    const devRow = page.locator(`tr[data-deveui="${devEui}"]`)
    await devRow.waitFor()
    await expect.poll(() => devRow.textContent(), POLL).toMatch(/-\d+ dBm/)
    expect(await devRow.textContent()).toContain('029998e0-6156-cdd4-4523-264b523115c1')
    await expect.poll(() => page.locator('#devices tr').count(), POLL).toBe(3)
    await expect.poll(() => page.locator('#stat-uplinks').textContent(), POLL).toBe('5')
    // Each device's last decoded values: the tank decoder's level and battery.
    expect(await devRow.locator('td.decoded').textContent()).toBe('level 91 · battery 3.6')
    // A confirmed downlink the device has not acknowledged yet shows as pending.
    const app = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    await app.publishAsync(`lorabridge/farm/devices/${devEui}/down`, JSON.stringify({ id: 'console-confirmed', fPort: 5, hex: '01', confirmed: true }), { qos: 1 })
    await app.endAsync()
    await expect.poll(() => devRow.locator('td.pending').textContent(), POLL).toBe('1 pending (1 awaiting ACK)')
    expect(await devRow.locator('td.pending').getAttribute('title')).toBe('console-confirmed: awaiting-ack, confirmed, 1 bytes on fPort 5')
    await shot('04-devices')

    await page.click('a[data-tab=rules]')
    await page.locator('#rule-errors li', { hasText: 'zz-broken.yaml:4:' }).waitFor()
    await expect.poll(async () => page.locator('#rule-counters tr', { hasText: 'close-valve' }).locator('td.num').first().textContent(), POLL).toBe('5')
    await shot('05-rules')

    // Try it: the first device's uplink, pasted from the tail, gives the rule's downlink.
    await page.click('a[data-tab=try]')
    await page.click('#try-last')
    const event = { id: 'try-91', app: 'farm', devEui, fPort: 2, fCnt: 12, data: Buffer.from([91, 0x0e, 0x10]).toString('base64'), hex: '5b0e10', receivedAt: new Date().toISOString(), network: { type: 'multitech', transport: 'mqtt', protocol: '1.1' } }
    await page.fill('#try-event', JSON.stringify(event, null, 2))
    await page.click('#try-run')
    const downlinks = page.locator('#try-downlinks')
    await downlinks.waitFor()
    expect(await downlinks.textContent()).toContain(devEui)
    expect(await downlinks.textContent()).toContain('015b')
    const result = await page.locator('#try-result').textContent()
    expect(result).toContain(`farm/${devEui}/battery`)
    expect(result).toContain('Decoded by tank')
    expect(result).not.toContain('[object')
    await shot('06-try-it')

    // A sensor's uplink goes through its vendor codec: its decode, and the codec's warning.
    const sensorEvent = { ...event, id: 'try-sensor', fPort: 85, hex: '0175640367f6000c01', data: Buffer.from('0175640367f6000c01', 'hex').toString('base64') }
    await page.fill('#try-event', JSON.stringify(sensorEvent, null, 2))
    await page.click('#try-run')
    await page.locator('#try-result h4', { hasText: 'Decoded by tlv (codec codecs/tlv-sensor.js)' }).waitFor()
    const decoded = await page.locator('#try-result').textContent()
    expect(decoded).toContain('"temperature": 24.6')
    expect(await page.locator('#try-decode-warnings').textContent()).toBe('unknown channel 0xc type 0x1')
    await shot('06b-try-it-codec')

    // Two more Conduits: one over app-connect HTTP, one that connects and leaves again.
    const overHttp = new ConduitSimulator({
      url: base, version: '1.1.1', gwUuid: '1a2b3c4d-0000-4523-9abc-264b523115c2', devices: [generatedDevice(50, FARM_APPEUI)], httpPollIntervalMs: 3_600_000, httpRetryDelayMs: 50,
    })
    const leaving = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.0', gwUuid: '7F3E2D1C00004523A1B2264B523115C3', devices: [] })
    sims.push(overHttp, leaving)
    await overHttp.start()
    await overHttp.uplink(0, { port: 2, data: Buffer.from([55, 0x0e, 0x01]) })
    await leaving.start()
    await leaving.stop()
    await page.click('a[data-tab=gateways]')
    await page.locator('tr[data-gateway="7f3e2d1c-0000-4523-a1b2-264b523115c3"] .badge.bad').waitFor()
    await page.locator('tr[data-gateway="1a2b3c4d-0000-4523-9abc-264b523115c2"]', { hasText: 'http' }).waitFor()
    await page.locator('#stat-devices', { hasText: '4' }).waitFor()
    await shot('07-overview')

    await page.click('#logout')
    await page.locator('#login').waitFor()
    expect(problems).toEqual([])
  })
})
