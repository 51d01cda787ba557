/**
 * A store that stops answering without going away (Redis frozen with SIGSTOP: its connections
 * stay open, so the daemon still looks ready). A Conduit's uplink must not wait forever for it:
 * after STORE_DEADLINE_MS it is given up unacknowledged — the connection closes without PUBACK,
 * with LB_ERR_REDIS in the log — and once Redis answers again the Conduit's resend is published
 * exactly once.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { collect, connect, until, type MqttClient } from './helpers/mqtt.js'
import { STORE_DEADLINE_MS } from '../src/multitech/ingest.js'

const GW = '5a1f00d2-7c4e-4b39-9f0a-22c3e1d4b6a8'
const DEV = '00-11-22-33-44-55-66-99'
const TOPIC = `lorawan/${GW}/16-ea-76-f6-ab-66-3d-80/${DEV}/up`
const uplink = (fcnt: number): string => JSON.stringify({ tmst: 1, time: new Date().toISOString(), freq: 868.1, datr: 'SF7BW125', codr: '4/5', lsnr: 9.5, rssi: -47, fcnt, port: 1, data: 'AQ==', deveui: DEV, devaddr: '0146cd49', gweui: '00-80-00-00-00-01-b5-fc' })

describe('a store that stops answering', () => {
  let redis: RedisServer | undefined
  let t: TestDaemon | undefined
  const clients: MqttClient[] = []
  afterAll(async () => {
    for (const c of clients) await c.endAsync(true)
    await t?.stop()
    await redis?.stop()
  })

  it('gives a Conduit\'s uplink up unacknowledged after the deadline, and publishes the resend once', async () => {
    redis = await startRedis()
    t = await startTestDaemon({ redis: { url: redis.url }, mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] } })
    const url = `mqtt://127.0.0.1:${t.port('mqtt')}`
    const app = await connect(url, { clientId: 'app' })
    clients.push(app)
    const seen = collect(app)
    await app.subscribeAsync('lorabridge/+/devices/+/up', { qos: 1 })
    const conduit = await connect(url, { clientId: `lorawan/${GW}`, reconnectPeriod: 0 })
    clients.push(conduit)
    await conduit.publishAsync(TOPIC, uplink(1), { qos: 1 })
    await until(() => seen.find(m => m.topic.endsWith('/up')), 'the first uplink')

    process.kill(redis.pid, 'SIGSTOP')
    let closedAfterMs: number | undefined
    try {
      const t0 = Date.now()
      const closed = new Promise<void>(resolve => conduit.once('close', () => { closedAfterMs = Date.now() - t0; resolve() }))
      let acked = false
      conduit.publishAsync(TOPIC, uplink(2), { qos: 1 }).then(() => { acked = true }, () => {})
      await Promise.race([closed, new Promise(resolve => setTimeout(resolve, STORE_DEADLINE_MS * 3))])
      expect(closedAfterMs, 'the connection was not closed while the store hung').toBeDefined()
      expect(closedAfterMs!).toBeGreaterThanOrEqual(STORE_DEADLINE_MS - 100)
      expect(acked).toBe(false)
      expect(t.logs.withCode('LB_ERR_REDIS').some(l => String(l.msg).includes('not kept in time'))).toBe(true)
    } finally {
      process.kill(redis.pid, 'SIGCONT')
    }

    // The Conduit reconnects and sends the message again: published exactly once.
    const again = await connect(url, { clientId: `lorawan/${GW}` })
    clients.push(again)
    await again.publishAsync(TOPIC, uplink(2), { qos: 1 })
    await until(() => seen.filter(m => m.topic.endsWith('/up') && (JSON.parse(m.payload) as { fCnt: number }).fCnt === 2).length >= 1 || undefined, 'the resend', 15_000)
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(seen.filter(m => m.topic.endsWith('/up') && (JSON.parse(m.payload) as { fCnt: number }).fCnt === 2)).toHaveLength(1)
  })
})
