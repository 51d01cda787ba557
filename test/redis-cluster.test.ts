/**
 * Two lorabridge instances on a three-node Redis Cluster (ioredis Cluster, through `redis.cluster`):
 * what works on one Redis works across cluster slots too.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.js'
import { connect, nextMessage, observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice, type ReceivedDownlink } from '../src/simulate/conduit.js'

describe('on a Redis Cluster', () => {
  let cluster: RedisCluster
  const nodes: TestDaemon[] = []
  const dirs: string[] = []
  const sims: ConduitSimulator[] = []
  const clients: MqttClient[] = []
  const url = (i: number): string => `mqtt://127.0.0.1:${nodes[i]!.port('mqtt')}`

  beforeAll(async () => {
    cluster = await startRedisCluster()
    for (let i = 0; i < 2; i++) {
      const dir = await mkdtemp(join(tmpdir(), `lorabridge-rc${i}-`))
      dirs.push(dir)
      nodes.push(await startTestDaemon({
        redis: { url: `redis://127.0.0.1:${cluster.nodes[0]!.port}`, cluster: cluster.nodes },
        mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      }, { dir }))
    }
  }, 90_000)

  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await Promise.all(clients.map(c => c.endAsync(true)))
    for (const n of nodes) await n.stop()
    await cluster?.stop()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('is ready, and delivers across instances', async () => {
    for (const n of nodes) expect((await fetch(`http://127.0.0.1:${n.port('http')}/readyz`)).status).toBe(200)
    const a = await connect(url(0), { clientId: 'rc-sub' })
    const b = await connect(url(1), { clientId: 'rc-pub' })
    clients.push(a, b)
    await a.subscribeAsync('rc/#', { qos: 1 })
    await sleep(200)
    const got = nextMessage(a, 'rc/1')
    await b.publishAsync('rc/1', 'across the cluster', { qos: 1 })
    expect((await got).payload.toString()).toBe('across the cluster')
  })

  it('publishes a frame heard on both instances once, and routes its downlink across', async () => {
    const { client: watcher, seen } = await observe(url(1), 'lorabridge', 'rc-watcher')
    clients.push(watcher)
    const dev = generatedDevice(3)
    const s1 = new ConduitSimulator({ url: url(0), version: '1.1', devices: [{ ...dev }] })
    const s2 = new ConduitSimulator({ url: url(1), version: '1.1', devices: [{ ...dev }] })
    sims.push(s1, s2)
    await Promise.all([s1.start(), s2.start()])
    await s1.uplink(0, { port: 1, data: Buffer.from('x') })
    await s2.uplink(0, { port: 1, data: Buffer.from('x') })
    const d = dev.devEui.replace(/-/g, '')
    await until(() => seen.some(m => m.topic.endsWith(`${d}/up`)) || undefined, 'uplink')
    await sleep(300)
    expect(seen.filter(m => m.topic.endsWith(`${d}/up`)).length).toBe(1)
    const got = new Promise<ReceivedDownlink>(resolve => { s1.once('downlink', resolve); s2.once('downlink', resolve) })
    await watcher.publishAsync(`lorabridge/default/devices/${d}/down`, '{"id":"rc-dl","fPort":2,"hex":"beef"}', { qos: 1 })
    expect((await got).data).toEqual(Buffer.from([0xbe, 0xef]))
    await until(() => seen.some(m => m.topic.endsWith(`${d}/down/queued`)) || undefined, 'queued')
  })
})
