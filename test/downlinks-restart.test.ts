/**
 * Downlinks waiting for an HTTP-mode Conduit survive a crash with Redis (issue 16, must-show 3):
 * SIGKILL with requests held, restart, and the Conduit's next uplink gets them; every request ends
 * in an outcome, and the retained pending list follows.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import { startDaemonProcess, type DaemonProcess } from './helpers/cli.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { collect, connect, until } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'

const DEV = generatedDevice(820)
const DEV_EUI = DEV.devEui.replace(/-/g, '')
const TOPIC = `lorabridge/farm/devices/${DEV_EUI}`

describe('HTTP-mode downlinks with Redis', () => {
  let redis: RedisServer
  let dir: string
  let daemon: DaemonProcess | undefined
  let sim: ConduitSimulator | undefined

  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => {
    await sim?.stop()
    await daemon?.kill('SIGKILL')
    await redis?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('survive a SIGKILL of the daemon: held again after the restart and delivered; each ends in an outcome', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-httpq-'))
    await writeFile(join(dir, 'lorabridge.yaml'), stringify({
      applications: [{ name: 'farm', match: { appEui: [DEV.appEui] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }] },
      redis: { url: redis.url },
    }))
    daemon = await startDaemonProcess([], { cwd: dir })
    const start = (): ConduitSimulator => new ConduitSimulator({ url: `http://127.0.0.1:${daemon!.port('http')}`, version: '1.1.1', gwUuid: '00c4a500-6156-cdd4-4523-264b523115c1', devices: [{ ...DEV }], httpPollIntervalMs: 3_600_000, httpRetryDelayMs: 50 })
    sim = start()
    await sim.start()
    await sim.uplink(0, { port: 1 })
    // An application with a persistent session: what is published while the daemon restarts waits for it in Redis.
    const consumer = { clientId: 'httpq-consumer', clean: false }
    const first = await connect(`mqtt://127.0.0.1:${daemon.port('mqtt')}`, consumer)
    const seen = collect(first)
    await first.subscribeAsync(`${TOPIC}/down/+`, { qos: 1 })
    await first.publishAsync(`${TOPIC}/down`, JSON.stringify([{ id: 'held-1', fPort: 2, hex: '0a' }, { id: 'held-2', fPort: 3, hex: '0b0c', confirmed: true }]), { qos: 1 })
    const listed = await until(() => {
      const m = seen.filter(x => x.topic === `${TOPIC}/down/pending`).at(-1)
      const ids = m === undefined ? [] : (JSON.parse(m.payload) as { pending: Array<{ id: string }> }).pending.map(p => p.id)
      return ids.length === 2 ? ids : undefined
    }, 'both listed as pending')
    expect(listed).toEqual(['held-1', 'held-2'])
    await first.endAsync(true)
    await sim.stop()

    expect((await daemon.kill('SIGKILL')).signal).toBe('SIGKILL')
    daemon = await startDaemonProcess([], { cwd: dir })
    expect(daemon.lines.some(l => l.msg === 'holding again the downlinks HTTP Conduits had not fetched before the restart' && l.held === 2)).toBe(true)
    const after = mqtt.connect(`mqtt://127.0.0.1:${daemon.port('mqtt')}`, { ...consumer, reconnectPeriod: 0 })
    const got = collect(after)
    await new Promise<void>(resolve => after.once('connect', () => resolve()))
    // The Conduit comes back and sends an uplink: the reply carries both downlinks.
    sim = start()
    await sim.start()
    // A new frame (the simulator restarts its counter: another payload, so that it is not taken for the first one's duplicate).
    await sim.uplink(0, { port: 1, data: Buffer.from('02', 'hex') })
    await until(() => sim!.downlinks.length >= 2 || undefined, 'both downlinks at the Conduit', 10_000)
    expect(sim.downlinks.map(d => [d.data.toString('hex'), d.payload.port, d.payload.ack])).toEqual([['0a', 2, false], ['0b0c', 3, true]])
    const outcomes = await until(() => {
      const ids = got.filter(m => m.topic === `${TOPIC}/down/queued`).map(m => (JSON.parse(m.payload) as { id: string }).id)
      return ids.length >= 2 ? ids : undefined
    }, 'both down/queued', 10_000)
    expect(outcomes.sort()).toEqual(['held-1', 'held-2'])
    expect(got.filter(m => m.topic === `${TOPIC}/down/failed`)).toEqual([])
    // The pending list follows: the confirmed one awaits its ACK, the other is gone.
    const pending = await until(() => {
      const m = got.filter(x => x.topic === `${TOPIC}/down/pending`).at(-1)
      const list = m === undefined ? undefined : (JSON.parse(m.payload) as { pending: Array<{ id: string, state: string }> }).pending
      return list !== undefined && list.length === 1 ? list : undefined
    }, 'the pending list after the hand-over', 10_000)
    expect(pending).toMatchObject([{ id: 'held-2', state: 'awaiting-ack' }])
    await after.endAsync(true)
  })
})
