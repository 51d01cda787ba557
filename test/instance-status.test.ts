/**
 * The daemon's own status on `lorabridge/_bridge/instances/{name}`: each instance of a cluster says
 * it runs (retained, with its listeners), keeps `lastSeen` moving, and says when it stops.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { connect, observe, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { InstanceStatus, instanceName } from '../src/core/instance-status.js'

type Status = Record<string, unknown> & { name: string, online: boolean, lastSeen: string }

describe('instance status', () => {
  let redis: RedisServer | undefined
  const daemons: TestDaemon[] = []
  const clients: MqttClient[] = []
  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    for (const d of daemons) await d.stop()
    await redis?.stop()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('one retained status per instance of a cluster; online:false once an instance stops, seen by the others', async () => {
    redis = await startRedis()
    for (let i = 0; i < 2; i++) {
      const dir = await mkdtemp(join(tmpdir(), `lorabridge-instance${i}-`))
      dirs.push(dir)
      daemons.push(await startTestDaemon({ redis: { url: redis.url }, mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] } }, { dir }))
    }
    const [a, b] = daemons as [TestDaemon, TestDaemon]
    const nameA = instanceName(a.dataDir)
    const nameB = instanceName(b.dataDir)
    expect(nameA).not.toBe(nameB)
    const watcher = await observe(`mqtt://127.0.0.1:${b.port('mqtt')}`, 'lorabridge', 'instance-watcher')
    clients.push(watcher.client)
    const latest = (name: string): Status | undefined => watcher.seen.filter(m => m.topic === `lorabridge/_bridge/instances/${name}`).map(m => JSON.parse(m.payload) as Status).at(-1)
    const statusA = await until(() => latest(nameA), 'instance A\'s status')
    await until(() => latest(nameB), 'instance B\'s status')
    expect(statusA).toMatchObject({ name: nameA, online: true, store: 'redis', version: expect.any(String) })
    expect(statusA.listeners).toContainEqual({ kind: 'mqtt', protocol: 'mqtt', address: '127.0.0.1', port: a.port('mqtt') })

    await a.stop()
    daemons.splice(0, 1)
    const stopped = await until(() => { const s = latest(nameA); return s?.online === false ? s : undefined }, 'instance A stopped')
    expect(stopped).toMatchObject({ name: nameA, online: false, instance: statusA.instance, stoppedAt: expect.any(String) })
    // Retained: a subscriber arriving later learns it too.
    const late = await connect(`mqtt://127.0.0.1:${b.port('mqtt')}`, { clientId: 'instance-late' })
    clients.push(late)
    const got: Status[] = []
    late.on('message', (topic, payload) => { if (topic === `lorabridge/_bridge/instances/${nameA}`) got.push(JSON.parse(payload.toString()) as Status) })
    await late.subscribeAsync('lorabridge/_bridge/instances/+', { qos: 1 })
    expect((await until(() => got[0], 'the retained status')).online).toBe(false)
  })

  it('keeps lastSeen moving while it runs', async () => {
    const t = daemons[0]!
    const watcher = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`, 'lorabridge', 'refresh-watcher')
    clients.push(watcher.client)
    const status = new InstanceStatus({ bus: t.daemon.bus, log: t.daemon.log, instanceName: 'refresh-test', instance: '00000000-0000-4000-8000-000000000000', store: 'memory', listeners: () => [], refreshMs: 50 })
    await status.start()
    await sleep(300)
    await status.stop()
    const seen = (): Status[] => watcher.seen.filter(m => m.topic === 'lorabridge/_bridge/instances/refresh-test').map(m => JSON.parse(m.payload) as Status)
    await until(() => seen().at(-1)?.online === false || undefined, 'the stopped status')
    expect(seen().filter(s => s.online).length).toBeGreaterThanOrEqual(3)
    expect(new Set(seen().map(s => s.lastSeen)).size).toBeGreaterThanOrEqual(3)
  })
})
