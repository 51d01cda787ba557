/**
 * Attacks 6 and 7 of the security review and the retained-message weakness, against a real daemon:
 * - a removed or changed user keeps its open connection (it still receives, can still subscribe);
 * - a PUBLISH to a topic containing U+0000 is acknowledged and forwarded, and every libmosquitto
 *   subscriber on a matching filter disconnects;
 * - a consumer retains 256 KB commands on `…/devices/<anything>/down`, and nothing bounds how many
 *   retained messages one user keeps.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { putUsers, removeUsers } from '../helpers/users.js'
import { connect, collect, closedByBroker, sleep, subscribeGranted, until, type MqttClient } from '../helpers/mqtt.js'

describe('broker abuse by authenticated clients', () => {
  let t: TestDaemon
  let url: string
  let admin: MqttClient
  const clients: MqttClient[] = []
  const children: ChildProcess[] = []

  const as = async (username: string, clientId: string): Promise<MqttClient> => {
    const c = await connect(url, { username, password: `${username}-pw`, clientId })
    clients.push(c)
    return c
  }

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: false }],
        limits: { retained: { perUser: 3, total: 5 } },
      },
    })
    url = `mqtt://127.0.0.1:${t.port('mqtt')}`
    await putUsers(t, {
      dave: { role: 'consumer', password: 'dave-pw', apps: ['farm'] },
      erin: { role: 'consumer', password: 'erin-pw', apps: ['farm'] },
      operator: { role: 'consumer', password: 'operator-pw', apps: ['farm'], downlink: true },
      root: { role: 'admin', password: 'root-pw' },
      root2: { role: 'admin', password: 'root2-pw' },
    })
    await sleep(1100)
    admin = await as('root', 'admin-observer')
  })
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL')
    await Promise.all(clients.map(c => c.endAsync(true)))
    await t?.stop()
  })

  describe('revoked access (attack 6)', () => {
    it('removing a user from the users file ends its open connections; others stay', async () => {
      const dave = await as('dave', 'dave-1')
      const got = collect(dave)
      await dave.subscribeAsync('lorabridge/farm/#', { qos: 1 })
      const erin = await as('erin', 'erin-1')
      await removeUsers(t, 'dave')
      expect(await closedByBroker(dave, 5000)).toBe(true)
      expect(await t.counter('mqttRevoked')).toBeGreaterThanOrEqual(1)
      expect(t.logs.withCode('LB_ERR_AUTH_REVOKED').some(l => l.user === 'dave')).toBe(true)
      // Nothing reaches the removed user any more, and it cannot come back.
      await admin.publishAsync('lorabridge/farm/devices/0011223344556677/up', '{}', { qos: 1 })
      await sleep(200)
      expect(got).toEqual([])
      const again = await connect(url, { username: 'dave', password: 'dave-pw', clientId: 'dave-2' }).then(c => { clients.push(c); return 0 }, (err: { code?: number }) => err.code)
      expect(again).toBe(4)
      expect(erin.connected).toBe(true)
    })

    it('changing a user\'s grants ends its connections made under the old grants', async () => {
      const erin = await as('erin', 'erin-2')
      await erin.subscribeAsync('lorabridge/farm/#', { qos: 1 })
      await putUsers(t, { erin: { role: 'consumer', password: 'erin-pw', apps: ['other'] } })
      expect(await closedByBroker(erin, 5000)).toBe(true)
      // Reconnected, the new grants apply.
      const back = await as('erin', 'erin-3')
      expect(await subscribeGranted(back, 'lorabridge/farm/#')).toBe(128)
      expect(await subscribeGranted(back, 'lorabridge/other/#')).toBe(1)
    })
  })

  describe('U+0000 in topics (attack 7)', () => {
    it('closes the publisher\'s connection, delivers nothing, and libmosquitto subscribers stay connected', async () => {
      const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(t.port('mqtt')), '-u', 'root2', '-P', 'root2-pw', '-i', 'mosq-sub', '-t', 'nul/#', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(sub)
      let out = ''
      sub.stdout.on('data', (d: Buffer) => { out += d.toString() })
      let exited = false
      sub.on('exit', () => { exited = true })
      await until(() => t.logs.lines.some(l => l.msg === 'client authenticated' && l.clientId === 'mosq-sub') || undefined, 'mosquitto_sub connected')
      await sleep(200)

      // mqtt.js refuses to send such a topic: the attacker writes the packet by hand.
      const raw: Socket = await new Promise(resolve => { const s = netConnect(t.port('mqtt'), '127.0.0.1', () => resolve(s)) })
      let rawClosed = false
      raw.on('close', () => { rawClosed = true })
      raw.on('error', () => {})
      raw.resume() // read, so that the broker's close is seen
      raw.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'nul-attacker', keepalive: 0, username: 'root', password: Buffer.from('root-pw') }))
      await sleep(300)
      raw.write(mqttPacket.generate({ cmd: 'publish', topic: 'nul/a\u0000b', payload: Buffer.from('boom'), qos: 1, messageId: 1, retain: false, dup: false }))
      await until(() => rawClosed || undefined, 'the publisher disconnected')
      expect(t.logs.withCode('LB_ERR_MQTT_TOPIC_INVALID').length).toBeGreaterThan(0)

      // Legitimate traffic still flows to the libmosquitto subscriber, which is still there.
      await admin.publishAsync('nul/ok', 'fine', { qos: 1 })
      await until(() => out.includes('nul/ok fine') || undefined, 'the legitimate message at mosquitto_sub')
      expect(out).not.toContain('boom')
      expect(exited).toBe(false)
    })

    it('refuses a filter containing U+0000 (SUBACK 128)', async () => {
      const raw: Socket = await new Promise(resolve => { const s = netConnect(t.port('mqtt'), '127.0.0.1', () => resolve(s)) })
      raw.on('error', () => {})
      const parser = mqttPacket.parser({ protocolVersion: 4 })
      const packets: Array<{ cmd: string, granted?: number[] }> = []
      parser.on('packet', p => { packets.push(p as { cmd: string, granted?: number[] }) })
      raw.on('data', d => parser.parse(d))
      raw.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'nul-sub', keepalive: 0, username: 'root', password: Buffer.from('root-pw') }))
      raw.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'x/\u0000/#', qos: 1 }, { topic: 'x/fine', qos: 1 }] }))
      const suback = await until(() => packets.find(p => p.cmd === 'suback'), 'SUBACK')
      expect(suback.granted).toEqual([128, 1])
      raw.destroy()
    })
  })

  describe('retained messages', () => {
    it('a command is never retained: later subscribers do not get it', async () => {
      const op = await as('operator', 'operator-1')
      const topic = 'lorabridge/farm/devices/ffffffffffffffff/down'
      await op.publishAsync(topic, Buffer.alloc(256 * 1000, 0x41), { qos: 1, retain: true })
      await until(() => t.logs.withCode('LB_ERR_MQTT_RETAIN_LIMIT').some(l => l.reason === 'command') || undefined, 'the refusal')
      const late = await as('root', 'late-subscriber')
      const got = collect(late)
      await late.subscribeAsync('lorabridge/farm/devices/+/down', { qos: 1 })
      await sleep(300)
      expect(got).toEqual([])
      expect(await t.counter('mqttRetainRefused', { reason: 'command' })).toBe(1)
    })

    it('a user keeps at most perUser retained topics, all users at most total; the rest is delivered live only', async () => {
      const root2 = await as('root2', 'retainer-2')
      for (let i = 0; i < 5; i++) await admin.publishAsync(`keep/root/${i}`, `v${i}`, { qos: 1, retain: true })
      for (let i = 0; i < 3; i++) await root2.publishAsync(`keep/root2/${i}`, `w${i}`, { qos: 1, retain: true })
      // Replacing one's own retained message is always allowed; deleting frees a place.
      await admin.publishAsync('keep/root/0', 'v0-new', { qos: 1, retain: true })
      const late = await as('root', 'late-2')
      const got = collect(late)
      await late.subscribeAsync('keep/#', { qos: 1 })
      await sleep(300)
      const topics = got.map(m => m.topic).sort()
      // root kept 3 (per user), root2 the 2 left of the total of 5.
      expect(topics).toEqual(['keep/root/0', 'keep/root/1', 'keep/root/2', 'keep/root2/0', 'keep/root2/1'])
      expect(got.find(m => m.topic === 'keep/root/0')?.payload).toBe('v0-new')
      expect(await t.counter('mqttRetainRefused', { reason: 'per-user' })).toBe(2)
      expect(await t.counter('mqttRetainRefused', { reason: 'total' })).toBe(1)
      await admin.publishAsync('keep/root/2', '', { qos: 1, retain: true })
      await root2.publishAsync('keep/root2/2', 'w2-again', { qos: 1, retain: true })
      const later = await as('root', 'late-3')
      const got2 = collect(later)
      await later.subscribeAsync('keep/root2/#', { qos: 1 })
      await sleep(300)
      expect(got2.map(m => m.topic).sort()).toEqual(['keep/root2/0', 'keep/root2/1', 'keep/root2/2'])
    })
  })
})
