/**
 * /metrics names gateways, rules and applications without authentication: it is served on
 * loopback listeners by default, on others only when the listener says `metrics: true`, and never
 * on a listener that says `metrics: false`. /healthz and /readyz answer everywhere.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { servesMetrics } from '../src/http/http-listeners.js'

describe('where /metrics is served', () => {
  let t: TestDaemon | undefined
  afterAll(async () => { await t?.stop() })

  it('decides by the listener: loopback by default, a public host only when asked', () => {
    expect(servesMetrics({ host: '127.0.0.1' })).toBe(true)
    expect(servesMetrics({ host: '::1' })).toBe(true)
    expect(servesMetrics({ host: 'localhost' })).toBe(true)
    expect(servesMetrics({ host: '0.0.0.0' })).toBe(false)
    expect(servesMetrics({ host: '::' })).toBe(false)
    expect(servesMetrics({ host: '0.0.0.0', metrics: true })).toBe(true)
    expect(servesMetrics({ host: '127.0.0.1', metrics: false })).toBe(false)
  })

  it('answers /metrics on a loopback listener and 404 on one that turned it off, health on both', async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }, { protocol: 'http', host: '127.0.0.1', port: 0, metrics: false, console: false }] },
    })
    const [open, closed] = t.daemon.http.bound.map(b => `http://127.0.0.1:${b.port}`) as [string, string]
    const metrics = await fetch(`${open}/metrics`)
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toContain('lorabridge_mqtt_clients')
    expect((await fetch(`${closed}/metrics`)).status).toBe(404)
    for (const base of [open, closed]) {
      expect((await fetch(`${base}/healthz`)).status).toBe(200)
      expect((await fetch(`${base}/readyz`)).status).toBe(200)
    }
  })
})
