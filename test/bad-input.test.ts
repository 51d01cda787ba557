/**
 * Bad input at the MQTT listeners (must-show 7): random bytes, an oversized packet, a topic with
 * 1,000 levels, a connect flood from one address. Each offender is cut off, a pair of well-behaved
 * clients keeps exchanging messages throughout, and /metrics shows what happened.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { connect as netConnect, type Socket } from 'node:net'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, nextMessage, closedByBroker, sleep, type MqttClient } from './helpers/mqtt.js'

/** mulberry32: a fixed seed makes the "random" bytes the same on every run. */
function seededBytes (seed: number, length: number): Buffer {
  let a = seed
  const out = Buffer.alloc(length)
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff
  }
  return out
}

function rawSocket (port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ port, host: '127.0.0.1', localAddress })
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

function closed (socket: Socket, timeoutMs = 5000): Promise<boolean> {
  return new Promise(resolve => {
    if (socket.destroyed || socket.readableEnded) { resolve(true); return }
    const timer = setTimeout(() => resolve(false), timeoutMs)
    socket.once('close', () => { clearTimeout(timer); resolve(true) })
    socket.on('error', () => {})
    socket.resume()
  })
}

async function scrape (t: TestDaemon): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${t.port('http')}/metrics`)
  return res.text()
}

function metric (text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  const line = text.split('\n').find(l => l.startsWith(`${name}{`) && want.every(w => l.includes(w)))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

describe('bad input on the MQTT listener', () => {
  let t: TestDaemon
  let port: number
  let sub: MqttClient
  let pub: MqttClient
  let round = 0

  /** The well-behaved pair still works. */
  async function healthy (): Promise<void> {
    const topic = `healthy/${round++}`
    await sub.subscribeAsync(topic, { qos: 1 })
    const got = nextMessage(sub, topic)
    await pub.publishAsync(topic, 'still here', { qos: 1 })
    expect((await got).payload.toString()).toBe('still here')
  }

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }],
        limits: { maxPacketSize: 65536, connectRate: { perAddress: 20, windowSeconds: 10 } },
      },
    })
    port = t.port('mqtt')
    sub = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'healthy-sub' })
    pub = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'healthy-pub' })
    await healthy()
  })

  afterAll(async () => {
    await sub?.endAsync(true)
    await pub?.endAsync(true)
    await t?.stop()
  })

  it('cuts off a socket that sends random bytes, before and after CONNECT', async () => {
    for (const seed of [1, 2, 3, 42]) {
      const s = await rawSocket(port)
      s.write(seededBytes(seed, 4096))
      expect(await closed(s), `seed ${seed}`).toBe(true)
    }
    const client = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'garbage-after-connect' })
    const cut = closedByBroker(client)
    ;(client.stream as Socket).write(Buffer.concat([Buffer.from([0x00, 0x05]), seededBytes(7, 64)]))
    expect(await cut).toBe(true)
    const text = await scrape(t)
    expect(metric(text, 'lorabridge_mqtt_client_errors_total', { code: 'LB_ERR_MQTT_PROTOCOL' }) +
      metric(text, 'lorabridge_mqtt_rejected_total', { code: 'LB_ERR_MQTT_PACKET_TOO_LARGE' })).toBeGreaterThanOrEqual(5)
    await healthy()
  })

  it('cuts off a client that sends a packet over maxPacketSize, as soon as the header announces it', async () => {
    const client = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'oversized' })
    const cut = closedByBroker(client)
    client.publish('big/one', Buffer.alloc(200_000, 1), { qos: 1 })
    expect(await cut).toBe(true)
    // A raw header announcing 100 MB, with no body: refused without buffering anything.
    const s = await rawSocket(port)
    s.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x30]))
    expect(await closed(s)).toBe(true)
    expect(metric(await scrape(t), 'lorabridge_mqtt_rejected_total', { code: 'LB_ERR_MQTT_PACKET_TOO_LARGE' })).toBeGreaterThanOrEqual(2)
    expect(t.logs.withCode('LB_ERR_MQTT_PACKET_TOO_LARGE').length).toBeGreaterThanOrEqual(2)
    await healthy()
  })

  it('cuts off a client that publishes or subscribes with 1,000 topic levels', async () => {
    const deep = Array.from({ length: 1000 }, (_, i) => `l${i}`).join('/')
    const publisher = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'deep-pub' })
    const cutPub = closedByBroker(publisher)
    publisher.publish(deep, 'x', { qos: 1 })
    expect(await cutPub).toBe(true)
    const subscriber = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'deep-sub' })
    const cutSub = closedByBroker(subscriber)
    subscriber.subscribe(deep, { qos: 1 }, () => {})
    expect(await cutSub).toBe(true)
    expect(metric(await scrape(t), 'lorabridge_mqtt_client_errors_total', { code: 'LB_ERR_MQTT_TOPIC_LEVELS' })).toBeGreaterThanOrEqual(2)
    await healthy()
  })

  it('closes a connect flood from one address while other addresses connect normally', async () => {
    // Linux routes all of 127/8 to loopback: the flood comes from 127.0.0.2, everyone else from 127.0.0.1.
    const attempts = 200
    const results = await Promise.all(Array.from({ length: attempts }, async () => {
      const s = await rawSocket(port, '127.0.0.2').catch(() => undefined)
      if (s === undefined) return 'refused'
      const wasClosed = await closed(s, 1000)
      s.destroy()
      return wasClosed ? 'closed' : 'open'
    }))
    // The first `perAddress` sockets are let in (and would be cut by connectTimeout); the rest are closed at once.
    expect(results.filter(r => r === 'closed' || r === 'refused').length).toBeGreaterThanOrEqual(attempts - 20)
    expect(metric(await scrape(t), 'lorabridge_mqtt_rejected_total', { code: 'LB_ERR_MQTT_CONNECT_RATE' })).toBeGreaterThanOrEqual(attempts - 20)
    // One log line per flooding address per window, not one per socket.
    expect(t.logs.withCode('LB_ERR_MQTT_CONNECT_RATE').length).toBe(1)
    const fresh = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'after-flood' })
    expect(fresh.connected).toBe(true)
    await fresh.endAsync()
    await healthy()
    await sleep(10)
  })
})
