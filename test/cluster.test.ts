/**
 * Three lorabridge instances on one redis-server started by the test (issue 6 must-show 1):
 * cross-instance delivery, downlink routing across instances, duplicates published once, rules
 * firing once — with counts asserted.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { connect, nextMessage, observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice, type ReceivedDownlink } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'

describe('three instances on one Redis', () => {
  let redis: RedisServer
  const dirs: string[] = []
  const nodes: TestDaemon[] = []
  const clients: MqttClient[] = []
  const sims: ConduitSimulator[] = []
  let watcher: { client: MqttClient, seen: Array<{ topic: string, payload: string }> }

  const url = (i: number): string => `mqtt://127.0.0.1:${nodes[i]!.port('mqtt')}`
  const topics = (suffix: string): Array<{ topic: string, payload: string }> => watcher.seen.filter(m => m.topic.endsWith(suffix))

  beforeAll(async () => {
    redis = await startRedis()
    for (let i = 0; i < 3; i++) {
      const dir = await mkdtemp(join(tmpdir(), `lorabridge-node${i}-`))
      dirs.push(dir)
      await mkdir(join(dir, 'rules'))
      await writeFile(join(dir, 'rules', 'alerts.yaml'), `rules:
  - name: every-uplink
    on: up
    publish:
      topic: '"audit/" & devEui'
      payload: '{ "id": id }'
  - name: once-a-minute
    on: up
    cooldown: 1m
    publish:
      topic: '"cooldown/" & devEui'
      payload: '{ "id": id }'
`)
      nodes.push(await startTestDaemon({
        redis: { url: redis.url },
        mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
        thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKey: KEY, downlinkUrl: 'http://127.0.0.1:9/unused' }] },
      }, { dir }))
    }
    // One observer on the third instance sees what every instance publishes.
    watcher = await observe(url(2), 'lorabridge', 'cluster-watcher')
    await watcher.client.subscribeAsync(['audit/#', 'cooldown/#'], { qos: 1 })
  })

  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await Promise.all([...clients, watcher?.client].map(c => c?.endAsync(true)))
    for (const n of nodes) await n.stop()
    await redis?.stop()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('delivers to a client on one instance what is published on another', async () => {
    const a = await connect(url(0), { clientId: 'sub-on-a' })
    const b = await connect(url(1), { clientId: 'pub-on-b' })
    clients.push(a, b)
    await a.subscribeAsync('cross/#', { qos: 1 })
    await sleep(100)
    const got = nextMessage(a, 'cross/1')
    await b.publishAsync('cross/1', 'from b', { qos: 1 })
    expect((await got).payload.toString()).toBe('from b')
  })

  it('routes a downlink requested on one instance to a Conduit connected to another, once', async () => {
    const sim = new ConduitSimulator({ url: url(1), version: '1.1', gwUuid: '00000001aa6156cdd44523264b523115c1'.slice(2), devices: [generatedDevice(1)] })
    sims.push(sim)
    await sim.start()
    const dev = sim.devices[0]!.devEui.replace(/-/g, '')
    await sim.uplink(0, { port: 1, data: Buffer.from([1]) })
    await until(() => topics(`/${dev}/up`).length === 1 || undefined, 'uplink')
    const operator = await connect(url(0), { clientId: 'operator-on-a' })
    clients.push(operator)
    const got = new Promise<ReceivedDownlink>(resolve => sim.once('downlink', resolve))
    await operator.publishAsync(`lorabridge/default/devices/${dev}/down`, '{"id":"x-inst","fPort":4,"hex":"0a0b"}', { qos: 1 })
    expect((await got).data).toEqual(Buffer.from([10, 11]))
    await sleep(300)
    expect(sim.downlinks.length).toBe(1)
    expect(topics(`/${dev}/down/queued`).map(m => JSON.parse(m.payload).id)).toEqual(['x-inst'])
  })

  it('publishes once a frame heard by Conduits on two instances and a ThingPark report posted to two', async () => {
    const shared = generatedDevice(7)
    const s1 = new ConduitSimulator({ url: url(0), version: '1.1', devices: [{ ...shared }] })
    const s2 = new ConduitSimulator({ url: url(1), version: '1.1', devices: [{ ...shared }] })
    sims.push(s1, s2)
    await Promise.all([s1.start(), s2.start()])
    const dev = shared.devEui.replace(/-/g, '')
    const before = await Promise.all(nodes.map(n => n.counter('duplicates', { network: 'multitech', kind: 'up' })))
    await s1.uplink(0, { port: 2, data: Buffer.from('same') })
    await s2.uplink(0, { port: 2, data: Buffer.from('same') })

    const tpFrame = { devEui: '0018B20000000B20', fPort: 2, fCntUp: 5, payloadHex: 'abcd' }
    const posted = await Promise.all([0, 1].map(async i => {
      const tp = new ThingParkSimulator({ asUrl: `http://127.0.0.1:${nodes[i]!.port('http')}/tp`, asId: AS_ID, asKey: KEY })
      // The same frame, reported twice (each post with its own Time and token).
      const status = (await tp.uplink(tpFrame, { time: new Date(Date.now() + i) })).status
      await tp.stop()
      return status
    }))
    expect(posted).toEqual([204, 204])
    await sleep(500)
    expect(topics(`/${dev}/up`).length).toBe(1)
    expect(topics('/0018b20000000b20/up').length).toBe(1)
    const after = await Promise.all(nodes.map(n => n.counter('duplicates', { network: 'multitech', kind: 'up' })))
    expect(after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)).toBe(1)
  })

  it('fires each rule once per event across the cluster, and keeps cooldowns shared', async () => {
    const dev = generatedDevice(9)
    const sims3 = [0, 1, 2].map(i => new ConduitSimulator({ url: url(i), version: '1.1', devices: [{ ...dev }] }))
    sims.push(...sims3)
    await Promise.all(sims3.map(s => s.start()))
    const d = dev.devEui.replace(/-/g, '')
    // Three frames, each heard on all three instances.
    for (let f = 0; f < 3; f++) {
      for (const s of sims3) { s.devices[0]!.fCnt = f; await s.uplink(0, { port: 3, data: Buffer.from([f]) }) }
    }
    await until(() => topics(`audit/${d}`).length >= 3 || undefined, 'three audits')
    await sleep(500)
    const ups = topics(`/${d}/up`).map(m => JSON.parse(m.payload).id as string)
    expect(ups.length).toBe(3)
    expect(topics(`audit/${d}`).map(m => JSON.parse(m.payload).id as string).sort()).toEqual([...ups].sort())
    // The cooldown is taken once for the whole cluster: one publication for three frames.
    expect(topics(`cooldown/${d}`).length).toBe(1)
  })
})
