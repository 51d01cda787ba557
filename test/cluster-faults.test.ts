/**
 * Faults under traffic (issue 6 must-show 2 and 3), with daemon processes and a redis-server the
 * test starts (append-only, so its data survives a restart):
 * - Redis stopped and restarted during steady Conduit and ThingPark traffic: every acknowledged
 *   uplink reaches a persistent subscriber; readiness shows the outage; no daemon restart.
 * - SIGKILL of the instance holding a Conduit's session during downlink traffic: the Conduit
 *   reconnects through the other instance and receives every downlink at least once (QoS 1).
 */
import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import { startDaemonProcess, type DaemonProcess } from './helpers/cli.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { connect, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { ThingParkSimulator } from '../src/simulate/thingpark.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

async function node (redis: RedisServer, name: string): Promise<DaemonProcess> {
  const dir = await mkdtemp(join(tmpdir(), `lorabridge-${name}-`))
  await writeFile(join(dir, 'lorabridge.yaml'), stringify({
    redis: { url: redis.url },
    mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
    http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }] },
    thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKey: KEY, downlinkUrl: 'http://127.0.0.1:9/unused' }] },
  }))
  const d = await startDaemonProcess([], { cwd: dir })
  cleanups.push(async () => { await d.kill('SIGKILL'); await rm(dir, { recursive: true, force: true }) })
  return d
}

async function readyz (d: DaemonProcess): Promise<number> {
  return (await fetch(`http://127.0.0.1:${d.port('http')}/readyz`)).status
}

describe('faults under traffic', () => {
  it('loses no acknowledged uplink when Redis stops and comes back, and recovers without a restart', async () => {
    const redis = await startRedis({ persist: true })
    cleanups.push(() => redis.stop())
    const d = await node(redis, 'outage')
    const mqttUrl = `mqtt://127.0.0.1:${d.port('mqtt')}`

    // A consumer with a persistent session: what is published for it waits in Redis.
    const received = new Set<string>()
    const consumer = await connect(mqttUrl, { clientId: 'durable-consumer', clean: false })
    cleanups.push(() => consumer.endAsync(true))
    consumer.on('message', (_t, p) => { const e = JSON.parse(p.toString()) as { devEui: string, fCnt: number }; received.add(`${e.devEui}:${e.fCnt}`) })
    await consumer.subscribeAsync('lorabridge/+/devices/+/up', { qos: 1 })

    const sim = new ConduitSimulator({ url: mqttUrl, version: '1.1', devices: [generatedDevice(1)] })
    cleanups.push(() => sim.stop())
    await sim.start()
    const tp = new ThingParkSimulator({ asUrl: `http://127.0.0.1:${d.port('http')}/tp`, asId: AS_ID, asKey: KEY })
    cleanups.push(() => tp.stop())

    const acked = new Set<string>()
    const refused: number[] = []
    let running = true
    let tpCount = 0
    // While the store is down, a Conduit's uplink is refused: the connection closes without PUBACK
    // and the Conduit reconnects, as app-connect does.
    const conduitLoop = (async () => {
      while (running) {
        if (!sim.isConnected) {
          await sim.reconnect().catch(() => {})
          if (!sim.isConnected) await sleep(100)
          continue
        }
        try {
          const up = await sim.uplink(0, { port: 1, data: Buffer.from([1]) }) // resolves on PUBACK
          acked.add(`${String(up.deveui).replace(/-/g, '')}:${String(up.fcnt)}`)
        } catch {
          // not acknowledged: nothing is owed for it
        }
        await sleep(20)
      }
    })().catch(() => { running = false })
    const tpLoop = (async () => {
      while (running) {
        const fCnt = tpCount++
        const r = await tp.uplink({ devEui: '0018B20000000B20', fPort: 2, fCntUp: fCnt, payloadHex: '01' }).catch(() => undefined)
        if (r?.status === 204) acked.add(`0018b20000000b20:${fCnt}`)
        else refused.push(r?.status ?? 0)
        await sleep(20)
      }
    })()

    await sleep(700)
    expect(await readyz(d)).toBe(200)
    await redis.kill() // append-only with fsync always: a crash loses nothing Redis acknowledged
    const downAt = Date.now()
    await until(async () => (await readyz(d)) === 503 || undefined, 'not ready during the outage')
    await sleep(Math.max(0, 1500 - (Date.now() - downAt)))
    await redis.restart()
    await until(async () => (await readyz(d)) === 200 || undefined, 'ready again', 15_000)
    const conduitAcked = (): number => [...acked].filter(k => !k.startsWith('0018b20000000b20:')).length
    const conduitAckedAtRecovery = conduitAcked()
    // The Conduit goes on after the outage (what was refused meanwhile was not acknowledged, so not owed).
    await until(() => conduitAcked() > conduitAckedAtRecovery || undefined, 'a Conduit uplink acknowledged after the outage', 15_000)
    await sleep(300)
    running = false
    await Promise.all([conduitLoop, tpLoop])

    // Live delivery goes through Redis pub/sub, which drops what is published while it
    // reconnects; what was acknowledged is in the consumer's session queue all the same, and its
    // next connection receives it (docs/reliability.md). So the consumer reconnects once.
    await consumer.endAsync()
    const again = mqtt.connect(mqttUrl, { clientId: 'durable-consumer', clean: false, reconnectPeriod: 0 })
    cleanups.push(() => again.endAsync(true))
    again.on('message', (_t, p) => { const e = JSON.parse(p.toString()) as { devEui: string, fCnt: number }; received.add(`${e.devEui}:${e.fCnt}`) })
    // Every uplink acknowledged (PUBACK to the Conduit, 204 to ThingPark) reaches the consumer.
    await until(() => [...acked].every(k => received.has(k)) || undefined, 'every acknowledged uplink delivered', 20_000)
      .catch(() => { throw new Error(`lost: ${[...acked].filter(k => !received.has(k)).join(', ')}`) })
    expect(acked.size).toBeGreaterThan(40)
    // During the outage ThingPark was told at once (503) rather than kept waiting.
    expect(refused.every(s => s === 503)).toBe(true)
    expect(refused.length).toBeGreaterThan(0)
    expect(d.lines.some(l => l.code === 'LB_ERR_REDIS')).toBe(true)
    expect(d.child.exitCode).toBeNull()
  })

  it('delivers every queued downlink after SIGKILL of the instance holding the Conduit\'s session', async () => {
    const redis = await startRedis()
    cleanups.push(() => redis.stop())
    const [a, b] = [await node(redis, 'holder'), await node(redis, 'survivor')]
    const gw = '5b2f00d2-7c4e-4b39-9f0a-22c3e1d4b6a9'
    const dev = '00-11-22-33-44-55-66-88'
    const session = { clientId: `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${gw}`, clean: false, reconnectPeriod: 0 }

    // The Conduit's session lives on A.
    const got = new Map<string, number>()
    const onMessage = (topic: string, payload: Buffer): void => {
      if (topic !== `lorawan/${gw}/down`) return
      const { data } = JSON.parse(payload.toString()) as { data: string }
      const id = Buffer.from(data, 'base64').toString()
      got.set(id, (got.get(id) ?? 0) + 1)
    }
    const onA = await connect(`mqtt://127.0.0.1:${a.port('mqtt')}`, session)
    onA.on('message', onMessage)
    await onA.subscribeAsync(`lorawan/${gw}/down`, { qos: 1 })
    await onA.publishAsync(`lorawan/${gw}/init`, '{"gateways_euis": ["00-80-00-00-00-01-b5-fc"], "api_version": "1.1"}', { qos: 1, retain: true })
    await onA.publishAsync(`lorawan/${gw}/6c-4e-ef-66-f4-79-86-a6/${dev}/up`, JSON.stringify({ deveui: dev, appeui: '6c-4e-ef-66-f4-79-86-a6', data: 'AQ==', port: 1, fcnt: 1 }), { qos: 1 })

    // Downlinks requested on B, a steady stream; A dies in the middle of it.
    const operator: MqttClient = await connect(`mqtt://127.0.0.1:${b.port('mqtt')}`, { clientId: 'operator' })
    cleanups.push(() => operator.endAsync(true))
    const queued = new Set<string>()
    operator.on('message', (_t, p) => { queued.add((JSON.parse(p.toString()) as { id: string }).id) })
    await operator.subscribeAsync('lorabridge/+/devices/+/down/queued', { qos: 1 })
    const ids = Array.from({ length: 40 }, (_, i) => `dl-${String(i).padStart(2, '0')}`)
    for (const [i, id] of ids.entries()) {
      await operator.publishAsync(`lorabridge/default/devices/${dev.replace(/-/g, '')}/down`, JSON.stringify({ id, fPort: 1, data: Buffer.from(id).toString('base64') }), { qos: 1 })
      if (i === 15) {
        expect((await a.kill('SIGKILL')).signal).toBe('SIGKILL')
        onA.end(true)
      }
      await sleep(15)
    }

    // The Conduit reconnects through B with its persistent session (as app-connect does).
    const onB = mqtt.connect(`mqtt://127.0.0.1:${b.port('mqtt')}`, session)
    cleanups.push(() => onB.endAsync(true))
    onB.on('message', onMessage)
    await until(() => ids.every(id => got.has(id)) || undefined, 'every downlink received', 20_000)
      .catch(() => { throw new Error(`missing: ${ids.filter(id => !got.has(id)).join(', ')}`) })
    await until(() => ids.every(id => queued.has(id)) || undefined, 'every downlink queued')
    // At least once: a message in flight when A died may come twice, never zero times.
    expect([...got.values()].every(n => n >= 1)).toBe(true)
  })
})
