/**
 * Weakness of issue 12: the console was served on every HTTP(S) listener, public ones included, and
 * the `Host` header was not checked. A DNS-rebinding page (evil.example resolving to 127.0.0.1)
 * is same-origin with the console for the browser: its requests carry `Host: evil.example:PORT`
 * and a matching `Origin`, which passed the old same-origin check, so it could brute-force the
 * login from the victim's own loopback address and drive the console with a session of its own.
 *
 * Now: the console is served on loopback listeners by default (`console: true` turns it on
 * elsewhere), every console request must name this host (`Host`: an IP literal, localhost, the
 * machine's name, the listener's host, or `http.console.allowedHosts`), and state-changing requests
 * must come from the console's own origin.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { consoleLogin, httpRequest, writeUsers } from './console-helpers.js'

describe('where the console is served, and for which Host', () => {
  let t: TestDaemon
  let dir: string
  /** Ports of: the loopback listener, a 0.0.0.0 one with defaults, a 0.0.0.0 one with console: true. */
  let loopback: number
  let publicDefault: number
  let publicOn: number

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-sec-host-'))
    await writeUsers(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: {
        listeners: [
          { protocol: 'http', host: '127.0.0.1', port: 0 },
          { protocol: 'http', host: '0.0.0.0', port: 0 },
          { protocol: 'http', host: '0.0.0.0', port: 0, console: true },
        ],
        console: { allowedHosts: ['console.example.net'] },
      },
    }, { dir })
    ;[loopback, publicDefault, publicOn] = t.daemon.http.bound.map(b => b.port) as [number, number, number]
  })
  afterAll(async () => {
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('is not served on a non-loopback listener by default, and is where `console: true` says so', async () => {
    const page = await httpRequest({ port: publicDefault, path: '/' })
    expect(page.status).toBe(404)
    expect((await consoleLogin(publicDefault, 'root', 'admin-secret', { localAddress: '127.0.0.31' })).status).toBe(404)
    // The rest of that listener works.
    expect((await httpRequest({ port: publicDefault, path: '/healthz' })).status).toBe(200)
    // Loopback by default, and an explicit `console: true` elsewhere.
    expect((await httpRequest({ port: loopback, path: '/' })).status).toBe(200)
    expect((await httpRequest({ port: publicOn, path: '/' })).status).toBe(200)
  })

  it('refuses a foreign Host (DNS rebinding) with 421 and a code; its own names and the allow-list pass', async () => {
    const before = await counterOf(t, 'LB_ERR_CONSOLE_HOST')
    for (const port of [loopback, publicOn]) {
      const page = await httpRequest({ port, path: '/', headers: { host: `evil.example:${port}` } })
      expect(page.status).toBe(421)
      expect(JSON.parse(page.body)).toMatchObject({ error: 'LB_ERR_CONSOLE_HOST' })
      // The rebinding page logs in "same-origin": Host and Origin both say evil.example.
      const rebound = await consoleLogin(port, 'root', 'admin-secret', { host: `evil.example:${port}`, origin: `http://evil.example:${port}`, localAddress: '127.0.0.32' })
      expect(rebound.status).toBe(421)
      expect(rebound.headers['set-cookie']).toBeUndefined()
      const api = await httpRequest({ port, path: '/console/api/session', headers: { host: 'evil.example' } })
      expect(api.status).toBe(421)
    }
    expect(await counterOf(t, 'LB_ERR_CONSOLE_HOST')).toBe(before + 6)
    expect(t.logs.withCode('LB_ERR_CONSOLE_HOST').some(l => l.host === `evil.example:${loopback}`)).toBe(true)

    // The names a browser on this machine uses, and the configured one.
    for (const host of [`127.0.0.1:${loopback}`, `localhost:${loopback}`, 'localhost', `[::1]:${loopback}`, `console.example.net:${loopback}`, 'CONSOLE.example.net']) {
      expect((await httpRequest({ port: loopback, path: '/', headers: { host } })).status, host).toBe(200)
    }
    // ThingPark, app-connect and health do not care about Host.
    expect((await httpRequest({ port: loopback, path: '/healthz', headers: { host: 'evil.example' } })).status).toBe(200)
  })

  it('refuses a login, a logout and an API POST from a foreign Origin; its own origin logs in', async () => {
    const from = '127.0.0.33'
    const foreign = await consoleLogin(loopback, 'root', 'admin-secret', { origin: 'http://evil.example', localAddress: from })
    expect(foreign.status).toBe(403)
    expect(JSON.parse(foreign.body)).toMatchObject({ error: 'LB_ERR_CONSOLE_ORIGIN' })
    expect(foreign.headers['set-cookie']).toBeUndefined()

    const own = await consoleLogin(loopback, 'root', 'admin-secret', { origin: `http://127.0.0.1:${loopback}`, localAddress: from })
    expect(own.status).toBe(200)
    const cookie = String(own.headers['set-cookie']).split(';')[0]!
    const post = (path: string, origin: string): Promise<{ status: number }> =>
      httpRequest({ port: loopback, method: 'POST', path, headers: { cookie, origin, 'content-type': 'application/json' }, body: '{}' })
    expect((await post('/console/api/mqtt-token', 'http://evil.example')).status).toBe(403)
    expect((await post('/console/api/logout', 'http://evil.example')).status).toBe(403)
    // The session survived the foreign logout.
    expect((await httpRequest({ port: loopback, path: '/console/api/session', headers: { cookie } })).status).toBe(200)
    expect((await post('/console/api/mqtt-token', `http://127.0.0.1:${loopback}`)).status).toBe(200)

    // The live tail's WebSocket upgrade checks Host too.
    const upgrade = await new Promise<string>(resolve => {
      const ws = new WebSocket(`ws://127.0.0.1:${loopback}/console/mqtt`, 'mqtt', { headers: { cookie, host: `evil.example:${loopback}` } })
      ws.on('unexpected-response', (_req, res) => { resolve(String(res.statusCode)) })
      ws.on('error', err => { resolve(err.message) })
      ws.on('open', () => { ws.close(); resolve('open') })
    })
    expect(upgrade).toBe('421')
  })
})

async function counterOf (t: TestDaemon, code: string): Promise<number> {
  const m = await t.daemon.console.refusals.get()
  return m.values.find(v => v.labels.code === code)?.value ?? 0
}
