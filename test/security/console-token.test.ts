/**
 * Attack 6, console half: a one-time MQTT secret minted for the console's live tail was accepted
 * on any MQTT listener, and the connection it opened on TCP outlived the console session's
 * logout. Now a secret opens only the console's own channel, and every connection a session's
 * secrets opened ends with the session.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { putUsers } from '../helpers/users.js'
import { connect, connackCode, closedByBroker, sleep, type MqttClient } from '../helpers/mqtt.js'

describe('console one-time secrets', () => {
  let t: TestDaemon
  let base: string
  const clients: MqttClient[] = []

  const login = async (): Promise<string> => {
    const res = await fetch(`${base}/console/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'root', password: 'root-password' }) })
    expect(res.status).toBe(200)
    return (res.headers.get('set-cookie') ?? '').split(';')[0]!
  }
  const mint = async (cookie: string): Promise<{ username: string, password: string }> => {
    const res = await fetch(`${base}/console/api/mqtt-token`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' })
    expect(res.status).toBe(200)
    return await res.json() as { username: string, password: string }
  }

  beforeAll(async () => {
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: false }] } })
    base = `http://127.0.0.1:${t.port('http')}`
    await putUsers(t, { root: { role: 'admin', password: 'root-password' } })
    await sleep(1100)
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    await t?.stop()
  })

  it('a secret does not open the TCP listener (CONNACK 4), and stays good for the console channel', async () => {
    const cookie = await login()
    const cred = await mint(cookie)
    expect(await connackCode(`mqtt://127.0.0.1:${t.port('mqtt')}`, { username: cred.username, password: cred.password, clientId: 'stolen-secret' })).toBe(4)
    // Not spent by the refused attempt: the console's own channel still takes it.
    const tail = await connect(`ws://127.0.0.1:${t.port('http')}/console/mqtt`, { username: cred.username, password: cred.password, clientId: 'tail-1', wsOptions: { headers: { cookie } } })
    clients.push(tail)
    expect(tail.connected).toBe(true)
  })

  it('logging out closes every connection the session\'s secrets opened, through the broker', async () => {
    const cookie = await login()
    const cred = await mint(cookie)
    const tail = await connect(`ws://127.0.0.1:${t.port('http')}/console/mqtt`, { username: cred.username, password: cred.password, clientId: 'tail-2', wsOptions: { headers: { cookie } } })
    clients.push(tail)
    const before = await t.counter('mqttRevoked')
    const out = await fetch(`${base}/console/api/logout`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' })
    expect(out.status).toBe(204)
    expect(await closedByBroker(tail, 5000)).toBe(true)
    expect(await t.counter('mqttRevoked')).toBe(before + 1)
    expect(t.logs.withCode('LB_ERR_AUTH_REVOKED').some(l => l.clientId === 'tail-2')).toBe(true)
  })
})
