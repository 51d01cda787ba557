/**
 * Two faults from the field (issue 6 scope): a subscriber that stops reading must not hold the
 * others back (it is cut off after mqtt.limits.drainTimeout); and a reconnect storm of many
 * Conduits at once is absorbed: all of them back online, nothing refused.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c().catch(() => {}) })

describe('storms', () => {
  it('cuts off a subscriber that stops reading, while another keeps receiving everything', async () => {
    // Publishers no longer wait for subscribers, so the 25 MiB burst below reaches the healthy
    // subscriber (which reads in this busy test process) faster than it reads: its outbound queue
    // is sized for the burst, so that this test is about the drain timeout alone (the queue bound
    // has its own test, test/security/slow-consumer.test.ts).
    const t: TestDaemon = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }], limits: { drainTimeout: 1000, maxQueuedBytes: 64 * 1024 * 1024 } } })
    cleanups.push(() => t.stop())
    const url = `mqtt://127.0.0.1:${t.port('mqtt')}`

    // The frozen one: a raw client that subscribes, then never reads again.
    const frozen: Socket = await new Promise(resolve => { const s = netConnect(t.port('mqtt'), '127.0.0.1', () => resolve(s)) })
    cleanups.push(async () => { frozen.destroy() })
    frozen.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'frozen', keepalive: 0 }))
    frozen.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood/#', qos: 0 }] }))
    await sleep(200)
    frozen.pause()

    const healthy: MqttClient = await connect(url, { clientId: 'healthy' })
    cleanups.push(() => healthy.endAsync(true))
    let got = 0
    healthy.on('message', () => { got++ })
    await healthy.subscribeAsync('flood/#', { qos: 0 })
    const pub = await connect(url, { clientId: 'flooder' })
    cleanups.push(() => pub.endAsync(true))
    const big = Buffer.alloc(64 * 1024, 7)
    const count = 400 // 25 MiB: far more than the frozen socket's buffers hold
    for (let i = 0; i < count; i++) await pub.publishAsync(`flood/${i}`, big, { qos: 0 })
    await until(() => got === count || undefined, 'the healthy subscriber received everything', 20_000)
    // The broker closed its side (a paused socket does not see it): only healthy and flooder remain.
    await until(() => t.daemon.broker.instance.connectedClients === 2 || undefined, 'the frozen client cut off')
    expect(await t.counter('mqttClientErrors', { code: 'LB_ERR_MQTT_DRAIN_TIMEOUT' })).toBe(1)
    expect(t.logs.withCode('LB_ERR_MQTT_DRAIN_TIMEOUT').filter(l => l.clientId === 'frozen').length).toBe(1)
  })

  it('absorbs a reconnect storm of 200 Conduits: every one back online, none refused', async () => {
    const t: TestDaemon = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }],
        // Behind a load balancer every Conduit comes from one address (docs/cluster.md).
        limits: { connectRate: { perAddress: 0 } },
      },
    })
    cleanups.push(() => t.stop())
    const url = `mqtt://127.0.0.1:${t.port('mqtt')}`
    const { client: observer, seen } = await observe(url)
    cleanups.push(() => observer.endAsync(true))
    const sims = Array.from({ length: 200 }, (_, i) => new ConduitSimulator({ url, version: '1.1.1', devices: [generatedDevice(i)] }))
    cleanups.push(() => Promise.all(sims.map(s => s.stop())))
    const online = (): number => {
      const last = new Map<string, boolean>()
      for (const m of seen) if (m.topic.startsWith('lorabridge/gateways/')) last.set(m.topic, (JSON.parse(m.payload) as { online: boolean }).online)
      return [...last.values()].filter(Boolean).length
    }
    await Promise.all(sims.map(s => s.start()))
    await until(() => online() === 200 || undefined, '200 online', 20_000)

    // The storm: every Conduit loses its connection at once and comes back at once.
    for (const s of sims) s.drop()
    await until(() => online() === 0 || undefined, 'all offline', 20_000)
    await Promise.all(sims.map(s => s.reconnect()))
    await until(() => online() === 200 || undefined, '200 back online', 20_000)
    expect(await t.counter('authFailures')).toBe(0)
    expect(await t.counter('mqttRejected')).toBe(0)
    // And they work: an uplink from each.
    const from = seen.length
    await Promise.all(sims.map(s => s.uplink(0)))
    await until(() => seen.slice(from).filter(m => m.topic.endsWith('/up')).length === 200 || undefined, '200 uplinks', 20_000)
  })
})
