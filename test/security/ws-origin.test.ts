/**
 * Issue 12 (with attack 7): WebSocket MQTT listeners did not check `Origin`. With an anonymous
 * loopback `ws` listener, any web page open in a browser on that machine could connect and
 * subscribe to `#` — browsers let pages open WebSockets to any origin and leave the check to the
 * server. Now an upgrade carrying an Origin is refused (403) unless the listener's
 * `allowedOrigins` lists it; clients that are not browsers send no Origin and are accepted.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { WebSocket } from 'ws'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { connect, nextMessage, subscribeGranted, type MqttClient } from '../helpers/mqtt.js'

/** The HTTP status of a WebSocket upgrade to `url` with these headers, or 'open'. */
function upgradeStatus (url: string, headers: Record<string, string>): Promise<string> {
  return new Promise(resolve => {
    const ws = new WebSocket(url, 'mqtt', { headers })
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(String(res.statusCode)) })
    ws.on('error', err => { resolve(err.message) })
    ws.on('open', () => { ws.close(); resolve('open') })
  })
}

describe('Origin on WebSocket MQTT listeners', () => {
  let t: TestDaemon
  const clients: MqttClient[] = []
  let plain: string
  let allowing: string

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: {
        listeners: [
          { protocol: 'ws', host: '127.0.0.1', port: 0, anonymous: true, path: '/mqtt' },
          { protocol: 'ws', host: '127.0.0.1', port: 0, anonymous: true, path: '/mqtt', allowedOrigins: ['https://dashboard.example'] },
        ],
      },
    })
    const [a, b] = t.daemon.mqtt.bound
    plain = `ws://127.0.0.1:${a!.port}/mqtt`
    allowing = `ws://127.0.0.1:${b!.port}/mqtt`
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true).catch(() => {})))
    await t?.stop()
  })

  it('refuses a web page of another site (403, counted, logged) before any MQTT byte', async () => {
    expect(await upgradeStatus(plain, { origin: 'http://evil.example' })).toBe('403')
    // What the attack did: connect anonymously and subscribe to everything.
    let refused: unknown
    try {
      clients.push(await connect(plain, { clientId: 'evil-page', wsOptions: { headers: { origin: 'http://evil.example' } } }))
      await subscribeGranted(clients.at(-1)!, '#', 0)
    } catch (err) {
      refused = err
    }
    expect(refused).toBeDefined()
    expect(await t.counter('mqttRejected', { code: 'LB_ERR_MQTT_WS_ORIGIN' })).toBe(2)
    expect(t.logs.withCode('LB_ERR_MQTT_WS_ORIGIN')[0]).toMatchObject({ origin: 'http://evil.example', protocol: 'ws' })
    // Not even an allow-listed origin of another listener passes here.
    expect(await upgradeStatus(plain, { origin: 'https://dashboard.example' })).toBe('403')
    expect(await upgradeStatus(plain, { origin: 'null' })).toBe('403')
  })

  it('accepts clients without Origin, and allow-listed origins where configured', async () => {
    const tool = await connect(plain, { clientId: 'no-origin' })
    clients.push(tool)
    expect(await subscribeGranted(tool, 'ws-origin/#', 0)).toBe(0)
    const dashboard = await connect(allowing, { clientId: 'dashboard', wsOptions: { headers: { origin: 'https://dashboard.example' } } })
    clients.push(dashboard)
    const got = nextMessage(tool, 'ws-origin/x')
    await dashboard.publishAsync('ws-origin/x', 'from the dashboard', { qos: 1 })
    expect((await got).payload.toString()).toBe('from the dashboard')
    expect(await upgradeStatus(allowing, { origin: 'http://evil.example' })).toBe('403')
  })
})
