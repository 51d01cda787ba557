/**
 * Attack 4 of issue 12: brute force of the console login and user enumeration, on a real daemon.
 *
 * - A correct login of a non-admin user used to reset the per-address login limiter before the
 *   role check: an attacker who knew one consumer's password interleaved it with admin guesses and
 *   never met a 429.
 * - The answers told unknown users from known ones (`unknown user "x"` vs `wrong password for
 *   "admin"`), and told a non-admin that the password was right (403 with the role).
 * - Over MQTT an unknown user was refused in ~2 ms and a known one in ~57 ms (scrypt): the timing
 *   alone enumerated the users file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { connackCode } from '../helpers/mqtt.js'
import { consoleLogin, httpRequest, median, rawConnect, writeUsers } from './console-helpers.js'
import type { EndedSession } from '../../src/console/component.js'

describe('console login: brute force and user enumeration', () => {
  let t: TestDaemon
  let dir: string
  let http: number

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-sec-login-'))
    await writeUsers(join(dir, 'data'), [
      { name: 'root', role: 'admin', password: 'admin-secret' },
      { name: 'viewer', role: 'consumer', password: 'viewer-secret' },
      { name: 'conduit', role: 'gateway', password: 'conduit-secret' },
      // Certificate-only: no password hash at all.
      { name: 'certonly', role: 'gateway' },
    ])
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0 }] },
    }, { dir })
    http = t.port('http')
  })
  afterAll(async () => {
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('a correct non-admin login does not reset the limiter: 45 admin guesses from one address end in 429', async () => {
    const attacker = '127.0.0.21'
    const statuses: number[] = []
    for (let i = 0; i < 45; i++) {
      // The attacker knows a consumer's password and slips it in every fifth try.
      if (i % 5 === 0) statuses.push((await consoleLogin(http, 'viewer', 'viewer-secret', { localAddress: attacker })).status)
      statuses.push((await consoleLogin(http, 'root', `guess-${i}`, { localAddress: attacker })).status)
    }
    // At most 10 failures are answered before the address is shut out, and it stays shut out.
    const firstBlocked = statuses.indexOf(429)
    expect(firstBlocked, `statuses: ${statuses.join(',')}`).toBeGreaterThan(0)
    expect(firstBlocked).toBeLessThanOrEqual(10)
    expect(statuses.slice(firstBlocked).every(s => s === 429)).toBe(true)
    // Even the right admin password waits for the window now.
    expect((await consoleLogin(http, 'root', 'admin-secret', { localAddress: attacker })).status).toBe(429)
    expect(await t.counter('authFailures', { code: 'LB_ERR_CONSOLE_LOGIN_RATE' })).toBeGreaterThan(0)

    // Legitimate traffic: the admin, from another address, logs in.
    const ok = await consoleLogin(http, 'root', 'admin-secret', { localAddress: '127.0.0.22' })
    expect(ok.status).toBe(200)
    expect(String(ok.headers['set-cookie'])).toMatch(/^lorabridge_console=/)
  })

  it('answers every failed login with the same status and body', async () => {
    const from = '127.0.0.23'
    const attempts: Array<[string, string]> = [
      ['nobody', 'whatever'], // unknown user
      ['root', 'wrong'], // wrong admin password
      ['viewer', 'viewer-secret'], // right password, not an admin
      ['viewer', 'wrong'], // wrong password, not an admin
      ['conduit', 'conduit-secret'], // right password, gateway
      ['certonly', 'anything'], // a user without a password
    ]
    const answers = []
    for (const [u, p] of attempts) answers.push(await consoleLogin(http, u, p, { localAddress: from }))
    const first = answers[0]!
    expect(first.status).toBe(401)
    expect(JSON.parse(first.body)).toMatchObject({ error: 'LB_ERR_CONSOLE_LOGIN' })
    for (const [i, a] of answers.entries()) {
      expect({ who: attempts[i]![0], status: a.status, body: a.body }).toEqual({ who: attempts[i]![0], status: first.status, body: first.body })
      expect(a.headers['set-cookie']).toBeUndefined()
    }
    // Nothing in the answer names the user or the role.
    for (const word of ['nobody', 'root', 'viewer', 'consumer', 'admin', 'unknown', 'wrong']) expect(first.body).not.toContain(word)
    // The operator's log still tells them apart (a code of its own for a non-admin, never the password).
    const lines = t.logs.lines.filter(l => l.msg === 'console login refused' && l.address === from)
    expect(lines.map(l => [l.user, l.code])).toEqual([
      ['nobody', 'LB_ERR_CONSOLE_LOGIN'],
      ['root', 'LB_ERR_CONSOLE_LOGIN'],
      ['viewer', 'LB_ERR_CONSOLE_FORBIDDEN'],
      ['viewer', 'LB_ERR_CONSOLE_LOGIN'],
      ['conduit', 'LB_ERR_CONSOLE_FORBIDDEN'],
      ['certonly', 'LB_ERR_CONSOLE_LOGIN'],
    ])
    expect(JSON.stringify(t.logs.lines)).not.toContain('viewer-secret')
  })

  it('over MQTT, unknown and certificate-only users are refused no faster than a known user with a wrong password', async () => {
    const port = t.port('mqtt')
    const timed = async (username: string, password: string, i: number): Promise<number> => {
      const start = performance.now()
      const code = await rawConnect(port, { username, password, clientId: `timing-${username}-${i}` })
      const ms = performance.now() - start
      expect(code, username).toBe(4)
      return ms
    }
    const known: number[] = []
    const unknown: number[] = []
    const certOnly: number[] = []
    // Interleaved, so that load from elsewhere on the machine hits all three alike.
    for (let i = 0; i < 7; i++) {
      known.push(await timed('conduit', `wrong-${i}`, i))
      unknown.push(await timed(`ghost-${i}`, `wrong-${i}`, i))
      certOnly.push(await timed('certonly', `wrong-${i}`, i))
    }
    const k = median(known)
    expect(median(unknown), `known ${known.map(Math.round).join(',')} unknown ${unknown.map(Math.round).join(',')}`).toBeGreaterThanOrEqual(0.5 * k)
    expect(median(certOnly), `known ${known.map(Math.round).join(',')} cert-only ${certOnly.map(Math.round).join(',')}`).toBeGreaterThanOrEqual(0.5 * k)
    // Legitimate traffic: the right password still connects.
    expect(await connackCode(`mqtt://127.0.0.1:${port}`, { username: 'conduit', password: 'conduit-secret', clientId: 'timing-ok' })).toBe(0)
  })

  it('a logout reports the session that ended, with the one-time MQTT secrets minted for it', async () => {
    const ended: EndedSession[] = []
    const off = t.daemon.console.onSessionEnd(e => { ended.push(e) })
    try {
      const ok = await consoleLogin(http, 'root', 'admin-secret', { localAddress: '127.0.0.24' })
      expect(ok.status).toBe(200)
      const cookie = String(ok.headers['set-cookie']).split(';')[0]!
      const post = (path: string): Promise<{ status: number, body: string }> => httpRequest({ port: http, method: 'POST', path, headers: { cookie, 'content-type': 'application/json' }, body: '{}' })
      const minted = JSON.parse((await post('/console/api/mqtt-token')).body) as { password: string }
      expect((await post('/console/api/logout')).status).toBe(204)
      expect(ended).toEqual([{ user: 'root', session: expect.any(String) as unknown, reason: 'logout', secrets: [minted.password] }])
    } finally {
      off()
    }
  })
})
