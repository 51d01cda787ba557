/**
 * Misusing the console's device pages and its downlink sending, over HTTP against a real daemon
 * with a device heard through a simulated Conduit: no session, a user who lost the admin role,
 * another origin, another content type, oversized and malformed bodies, bad path parameters and
 * path traversal, and a device asked for under an application it is not in.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { connect, until, type MqttClient } from '../helpers/mqtt.js'
import { putUsers } from '../helpers/users.js'
import { ConduitSimulator, generatedDevice } from '../../src/simulate/conduit.js'
import { consoleLogin, httpRequest, writeUsers, type RawResponse } from './console-helpers.js'

const FARM_APPEUI = '16-ea-76-f6-ab-66-3d-80'

describe('console device pages and downlinks under attack', () => {
  let t: TestDaemon
  let dir: string
  let port: number
  let sim: ConduitSimulator
  let devEui: string
  let observer: MqttClient
  const seen: Array<{ topic: string, payload: string }> = []

  const cookieOf = (res: RawResponse): string => String(res.headers['set-cookie'] ?? '').split(';')[0]!
  const adminCookie = async (): Promise<string> => {
    const res = await consoleLogin(port, 'root', 'admin-secret')
    expect(res.status).toBe(200)
    return cookieOf(res)
  }
  const get = (path: string, cookie?: string): Promise<RawResponse> => httpRequest({ port, path, headers: cookie !== undefined ? { cookie } : {} })
  const post = (path: string, body: string, headers: Record<string, string>): Promise<RawResponse> => httpRequest({ port, method: 'POST', path, headers: { 'content-type': 'application/json', ...headers }, body })
  const json = (res: RawResponse): Record<string, unknown> => JSON.parse(res.body) as Record<string, unknown>

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-console-device-sec-'))
    await writeUsers(join(dir, 'data'), [
      { name: 'root', role: 'admin', password: 'admin-secret' },
      { name: 'ops', role: 'admin', password: 'ops-secret' },
      { name: 'viewer', role: 'consumer', password: 'viewer-secret' },
    ])
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: [FARM_APPEUI] } }, { name: 'city', match: { appEui: ['70-b3-d5-7e-d0-00-00-01'] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
    }, { dir })
    port = t.port('http')
    observer = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'observer' })
    observer.on('message', (topic, payload) => { seen.push({ topic, payload: payload.toString() }) })
    await observer.subscribeAsync('lorabridge/#', { qos: 1 })
    sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', devices: [generatedDevice(70, FARM_APPEUI)] })
    await sim.start()
    await sim.uplink(0, { port: 2, data: Buffer.from('secret-reading') })
    devEui = sim.devices[0]!.devEui.replace(/-/g, '')
    await until(() => seen.some(m => m.topic === `lorabridge/farm/devices/${devEui}/up`), 'the uplink', 10_000)
  })
  afterAll(async () => {
    await sim?.stop().catch(() => {})
    await observer?.endAsync(true).catch(() => {})
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('without a session: 401 on the device page and on sending, and nothing is sent', async () => {
    const page = await get(`/console/api/devices/farm/${devEui}`)
    expect(page.status).toBe(401)
    expect(json(page)).toMatchObject({ error: 'LB_ERR_CONSOLE_SESSION' })
    expect(page.body).not.toContain('7365637265742d72656164696e67') // the uplink's hex
    const send = await post(`/console/api/devices/farm/${devEui}/down`, JSON.stringify({ fPort: 1, hex: '01' }), {})
    expect(send.status).toBe(401)
    // A forged cookie is no session either.
    expect((await get(`/console/api/devices/farm/${devEui}`, 'lorabridge_console=' + 'A'.repeat(43))).status).toBe(401)
    expect(seen.filter(m => m.topic.endsWith('/down'))).toEqual([])
  })

  it('a non-admin cannot get a session; an admin who loses the role loses the page and the sending at once', async () => {
    const viewer = await consoleLogin(port, 'viewer', 'viewer-secret')
    expect(viewer.status).toBe(401)
    expect(viewer.headers['set-cookie']).toBeUndefined()
    const ops = await consoleLogin(port, 'ops', 'ops-secret')
    expect(ops.status).toBe(200)
    const cookie = cookieOf(ops)
    expect((await get(`/console/api/devices/farm/${devEui}`, cookie)).status).toBe(200)
    await putUsers(t, { ops: { role: 'consumer', password: 'ops-secret', apps: ['*'] } })
    await until(async () => (await get(`/console/api/devices/farm/${devEui}`, cookie)).status === 401, 'the demoted session to end', 10_000)
    expect((await post(`/console/api/devices/farm/${devEui}/down`, JSON.stringify({ fPort: 1, hex: '01' }), { cookie })).status).toBe(401)
    expect(seen.filter(m => m.topic.endsWith('/down'))).toEqual([])
  })

  it('refuses another origin (403), another content type (415) and an oversized body (413) before sending anything', async () => {
    const cookie = await adminCookie()
    const path = `/console/api/devices/farm/${devEui}/down`
    const body = JSON.stringify({ fPort: 1, hex: '01' })
    const cross = await post(path, body, { cookie, origin: 'https://evil.example' })
    expect(cross.status).toBe(403)
    expect(json(cross)).toMatchObject({ error: 'LB_ERR_CONSOLE_ORIGIN' })
    // A cross-site form can send only these types (and no JSON without a preflight the console never answers).
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await post(path, body, { cookie, 'content-type': type })
      expect(res.status, type).toBe(415)
      expect(json(res)).toMatchObject({ error: 'LB_ERR_CONSOLE_REQUEST' })
    }
    const big = await post(path, JSON.stringify({ fPort: 1, object: { pad: 'x'.repeat(70_000) } }), { cookie })
    expect(big.status).toBe(413)
    expect(json(big)).toMatchObject({ error: 'LB_ERR_CONSOLE_TOO_LARGE' })
    // Another Host (DNS rebinding) gets nothing of these routes either.
    expect((await httpRequest({ port, path: `/console/api/devices/farm/${devEui}`, headers: { cookie, host: 'evil.example' } })).status).toBe(421)
    expect(seen.filter(m => m.topic.endsWith('/down'))).toEqual([])
    // The same request from the console's own origin goes through.
    const ok = await post(path, body, { cookie, origin: `http://127.0.0.1:${port}` })
    expect(ok.status).toBe(202)
    const { id } = json(ok) as { id: string }
    expect(id).toMatch(/^console-[0-9a-f]{12}$/)
    await until(() => seen.some(m => m.topic === `lorabridge/farm/devices/${devEui}/down/queued` && m.payload.includes(id)), 'the outcome', 10_000)
    expect(t.logs.find(l => l.msg === 'downlink sent from the console' && l.id === id)).toMatchObject({ user: 'root', app: 'farm', devEui })
  })

  it('answers bad parameters and bodies with 400, LB_ERR_CONSOLE_REQUEST and the field at fault', async () => {
    const cookie = await adminCookie()
    const down = `/console/api/devices/farm/${devEui}/down`
    const cases: Array<[string, unknown, string]> = [
      ['/console/api/devices/farm/0011/down', { fPort: 1, hex: '01' }, 'devEui'],
      ['/console/api/devices/farm/zz11223344556677/down', { fPort: 1, hex: '01' }, 'devEui'],
      [`/console/api/devices/${encodeURIComponent('<script>')}/${devEui}/down`, { fPort: 1, hex: '01' }, 'app'],
      [`/console/api/devices/${'a'.repeat(65)}/${devEui}/down`, { fPort: 1, hex: '01' }, 'app'],
      [down, { fPort: 0, hex: '01' }, 'fPort'],
      [down, { fPort: 224, hex: '01' }, 'fPort'],
      [down, { fPort: 1.5, hex: '01' }, 'fPort'],
      [down, { fPort: '1', hex: '01' }, 'fPort'],
      [down, { hex: '01' }, 'fPort'],
      [down, { fPort: 1, hex: '0' }, 'hex'],
      [down, { fPort: 1, hex: 'zz' }, 'hex'],
      [down, { fPort: 1, hex: '' }, 'hex'],
      [down, { fPort: 1, hex: 7 }, 'hex'],
      [down, { fPort: 1, hex: 'ab'.repeat(243) }, 'hex'],
      [down, { fPort: 1, object: [1, 2] }, 'object'],
      [down, { fPort: 1, object: 'interval=60' }, 'object'],
      [down, { fPort: 1, object: null }, 'object'],
      [down, { fPort: 1, object: { pad: 'x'.repeat(5000) } }, 'object'],
      [down, { fPort: 1 }, 'payload'],
      [down, { fPort: 1, hex: '01', object: {} }, 'payload'],
      [down, { fPort: 1, hex: '01', confirmed: 'yes' }, 'confirmed'],
      [down, { fPort: 1, hex: '01', id: 'mine' }, 'id'],
      [down, { fPort: 1, hex: '01', devEui: '0000000000000000' }, 'devEui'],
    ]
    for (const [path, body, field] of cases) {
      const res = await post(path, JSON.stringify(body), { cookie })
      expect(res.status, `${path} ${JSON.stringify(body).slice(0, 60)}`).toBe(400)
      expect(json(res), `${path} ${JSON.stringify(body).slice(0, 60)}`).toMatchObject({ error: 'LB_ERR_CONSOLE_REQUEST', field })
    }
    for (const bad of ['not json', '[1]', '"x"']) {
      const res = await post(down, bad, { cookie })
      expect(res.status, bad).toBe(400)
      expect(json(res)).toMatchObject({ error: 'LB_ERR_CONSOLE_REQUEST' })
    }
    for (const path of ['/console/api/devices/farm/0011', `/console/api/devices/${encodeURIComponent('a b')}/${devEui}`]) {
      const res = await get(path, cookie)
      expect(res.status, path).toBe(400)
      expect(json(res)).toMatchObject({ error: 'LB_ERR_CONSOLE_REQUEST' })
    }
    // Path traversal reaches no file and no other route.
    for (const path of ['/console/api/devices/..%2F..%2Fetc/passwd', '/console/api/devices/farm/..%2F..%2F..%2Fetc%2Fpasswd', '/console/api/devices/../../etc/passwd']) {
      const res = await get(path, cookie)
      expect([400, 404], path).toContain(res.status)
      expect(res.body).not.toContain('root:')
    }
    // Nothing was sent, and the daemon is fine.
    expect(seen.filter(m => m.topic.endsWith('/down') && !m.payload.includes('console-'))).toEqual([])
    expect((await get('/healthz')).status).toBe(200)
  })

  it('does not show or reach a device under an application it is not in', async () => {
    const cookie = await adminCookie()
    const own = await get(`/console/api/devices/farm/${devEui}`, cookie)
    expect(own.status).toBe(200)
    expect(json(own)).toMatchObject({ app: 'farm', devEui, uplinks: [{ fPort: 2, hex: Buffer.from('secret-reading').toString('hex') }] })
    // Mixed-case and dashed spellings name the same device.
    const dashed = await get(`/console/api/devices/farm/${sim.devices[0]!.devEui.toUpperCase()}`, cookie)
    expect(json(dashed)).toMatchObject({ devEui })

    for (const app of ['city', 'nosuchapp']) {
      const res = await get(`/console/api/devices/${app}/${devEui}`, cookie)
      expect(res.status, app).toBe(404)
      expect(json(res)).toMatchObject({ error: 'LB_ERR_CONSOLE_NOT_FOUND' })
      expect(res.body).not.toContain('secret')
      expect(res.body).not.toContain('7365637265742d72656164696e67')
      expect(res.body).not.toContain('029998e0')
    }
    // An unknown device is answered the same.
    const unknown = await get('/console/api/devices/farm/0123456789abcdef', cookie)
    expect(unknown.status).toBe(404)
    expect(json(unknown)).toMatchObject({ error: 'LB_ERR_CONSOLE_NOT_FOUND' })

    // A downlink named under another application goes nowhere: no-route, as over MQTT.
    const sent = await post(`/console/api/devices/city/${devEui}/down`, JSON.stringify({ fPort: 1, hex: '01' }), { cookie })
    expect(sent.status).toBe(202)
    const { id } = json(sent) as { id: string }
    const failed = await until(() => seen.find(m => m.topic === `lorabridge/city/devices/${devEui}/down/failed` && m.payload.includes(id)), 'the refusal', 10_000)
    expect(JSON.parse(failed.payload)).toMatchObject({ id, reason: 'no-route' })
    expect(seen.some(m => m.topic === `lorabridge/farm/devices/${devEui}/down/queued` && m.payload.includes(id))).toBe(false)
  })
})
