/**
 * The abuse controls operators of Mosquitto 2 and EMQX 5 rely on, each tried against a real
 * daemon: the ban list (`lorabridge ban`), a global connection limit, per-client publish rates,
 * and connect-rate limits that count an IPv6 host by its /64.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { connect as netConnect } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { putUsers } from '../helpers/users.js'
import { runCli } from '../helpers/cli.js'
import { connect, connackCode, closedByBroker, collect, sleep, until, type MqttClient } from '../helpers/mqtt.js'
import { rateLimitKey } from '../../src/util/net.js'

describe('the ban list', () => {
  let t: TestDaemon
  let url: string
  const clients: MqttClient[] = []
  const ban = async (...args: string[]): Promise<void> => {
    const r = await runCli(['-c', t.configFile, 'ban', ...args])
    expect(r.code, r.stderr).toBe(0)
  }

  beforeAll(async () => {
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '0.0.0.0', port: 0, anonymous: false }] } })
    url = `mqtt://127.0.0.1:${t.port('mqtt')}`
    await putUsers(t, {
      mallory: { role: 'consumer', password: 'mallory-pw', apps: ['farm'] },
      alice: { role: 'consumer', password: 'alice-pw', apps: ['farm'] },
    })
    await sleep(1100)
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    await t?.stop()
  })

  /** A raw MQTT CONNECT from a given loopback address (mqtt.js cannot choose its source address). */
  const connectFrom = async (localAddress: string): Promise<{ closed: boolean, connack: number | undefined }> => {
    const socket = netConnect({ port: t.port('mqtt'), host: '127.0.0.1', localAddress })
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    let connack: number | undefined
    let closed = false
    parser.on('packet', p => { if (p.cmd === 'connack') connack = (p as { returnCode: number }).returnCode })
    socket.on('data', d => parser.parse(d))
    socket.on('error', () => {})
    socket.on('close', () => { closed = true })
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `raw-${localAddress}`, keepalive: 0, username: 'alice', password: Buffer.from('alice-pw') }))
    await until(() => closed || connack !== undefined || undefined, 'an answer')
    socket.destroy()
    return { closed: connack === undefined && closed, connack }
  }

  const as = async (user: string, clientId: string): Promise<MqttClient> => {
    const c = await connect(url, { username: user, password: `${user}-pw`, clientId })
    clients.push(c)
    return c
  }

  it('a banned user is disconnected at once and refused afterwards; others stay', async () => {
    const mallory = await as('mallory', 'm-1')
    const alice = await as('alice', 'a-1')
    await ban('add', '--user', 'mallory', '--reason', 'scraping')
    expect(await closedByBroker(mallory, 5000)).toBe(true)
    expect(await connackCode(url, { username: 'mallory', password: 'mallory-pw', clientId: 'm-2' })).toBe(5)
    expect(t.logs.withCode('LB_ERR_MQTT_BANNED').some(l => typeof l.reason === 'string' && l.reason.includes('scraping'))).toBe(true)
    expect(alice.connected).toBe(true)
    await ban('remove', 'mallory')
    await until(async () => await connackCode(url, { username: 'mallory', password: 'mallory-pw', clientId: 'm-3' }) === 0 || undefined, 'the ban lifted')
  })

  it('a banned client id is refused whoever presents it', async () => {
    await ban('add', '--client-id', 'stolen-id')
    await sleep(1100)
    expect(await connackCode(url, { username: 'alice', password: 'alice-pw', clientId: 'stolen-id' })).toBe(5)
    expect(await connackCode(url, { username: 'alice', password: 'alice-pw', clientId: 'fine-id' })).toBe(0)
  })

  it('a banned network is closed at accept, before any MQTT byte; other addresses connect', async () => {
    const before = await t.counter('mqttRejected', { code: 'LB_ERR_MQTT_BANNED' })
    await ban('add', '--address', '127.0.0.2/32', '--for', '8s')
    await sleep(1100)
    const from2 = await connectFrom('127.0.0.2')
    expect(from2).toEqual({ closed: true, connack: undefined })
    expect(await t.counter('mqttRejected', { code: 'LB_ERR_MQTT_BANNED' })).toBeGreaterThan(before)
    expect(await connectFrom('127.0.0.3')).toEqual({ closed: false, connack: 0 })
    // --for: the ban lifts itself.
    await until(async () => (await connectFrom('127.0.0.2')).connack === 0 || undefined, 'the ban to expire', 15_000)
  })

  it('refuses a malformed ban at the CLI', async () => {
    const r = await runCli(['-c', t.configFile, 'ban', 'add', '--address', '10.0.0.0/33'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('not an address or a CIDR network')
  })
})

describe('connection limit and publish rate', () => {
  let t: TestDaemon
  let url: string
  const clients: MqttClient[] = []

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }],
        limits: { maxConnections: 4, publishRate: { messagesPerSecond: 20 } },
      },
    })
    url = `mqtt://127.0.0.1:${t.port('mqtt')}`
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    await t?.stop()
  })

  it('a client over its publish rate is slowed down, loses nothing, and does not slow the others', async () => {
    const sub = await connect(url, { clientId: 'sub' })
    clients.push(sub)
    const got = collect(sub)
    await sub.subscribeAsync('rate/#', { qos: 1 })
    const flooder = await connect(url, { clientId: 'flooder' })
    const other = await connect(url, { clientId: 'other' })
    clients.push(flooder, other)
    const start = Date.now()
    let flooderDone = 0
    const flood = Promise.all(Array.from({ length: 80 }, (_, i) => flooder.publishAsync(`rate/flood/${i}`, 'x', { qos: 1 }))).then(() => { flooderDone = Date.now() })
    await sleep(200)
    // The other client's few messages go through while the flooder is still held back.
    for (let i = 0; i < 5; i++) await other.publishAsync(`rate/other/${i}`, 'y', { qos: 1 })
    expect(flooderDone).toBe(0)
    await flood
    // 80 messages at 20 per second, with a burst of 20: at least 3 seconds.
    expect(flooderDone - start).toBeGreaterThanOrEqual(2900)
    expect(await t.counter('mqttThrottled')).toBeGreaterThan(0)
    await until(() => got.length === 85 || undefined, 'every message delivered')
  })

  it('closes sockets past maxConnections at accept; a freed place can be taken again', async () => {
    // sub, flooder and other hold three of the four places.
    const fourth = await connect(url, { clientId: 'fourth' })
    clients.push(fourth)
    const refused = await connackCode(url, { clientId: 'fifth' })
    expect(refused).not.toBe(0)
    expect(await t.counter('mqttRejected', { code: 'LB_ERR_MQTT_CONNECTION_LIMIT' })).toBe(1)
    await fourth.endAsync()
    await until(async () => await connackCode(url, { clientId: 'fifth' }) === 0 || undefined, 'a free place')
  })
})

describe('connect rate per IPv6 /64', () => {
  it('keys IPv6 addresses by their /64 and IPv4 addresses as they are', () => {
    expect(rateLimitKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(rateLimitKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(rateLimitKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(rateLimitKey('2001:0db8:0001:0003::7')).toBe('2001:db8:1:3::/64')
    expect(rateLimitKey('::1')).toBe('0:0:0:0::/64')
    expect(rateLimitKey('192.0.2.7')).toBe('192.0.2.7')
  })

  it('limits connections from an IPv6 host (the loopback ::1) like any other', async () => {
    const t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '::1', port: 0, anonymous: true }], limits: { connectRate: { perAddress: 3, windowSeconds: 60 } } } })
    try {
      const url = `mqtt://[::1]:${t.port('mqtt')}`
      for (let i = 0; i < 3; i++) expect(await connackCode(url, { clientId: `v6-${i}` })).toBe(0)
      expect(await connackCode(url, { clientId: 'v6-over' })).not.toBe(0)
      expect(await t.counter('mqttRejected', { code: 'LB_ERR_MQTT_CONNECT_RATE' })).toBe(1)
    } finally {
      await t.stop()
    }
  })
})
