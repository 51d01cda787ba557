/**
 * HTTP Conduits, which have no connection whose end would tell: one that sends nothing for
 * `multitech.http.silentAfterSeconds` goes offline with reason `silent` and comes back online with
 * its next message; downlinks still waiting for it when lorabridge stops end in `down/failed`
 * `shutdown` rather than vanish.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { observe, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'

describe('HTTP Conduits: presence and shutdown', () => {
  let t: TestDaemon | undefined
  let sim: ConduitSimulator | undefined
  let watcher: { client: MqttClient, seen: Array<{ topic: string, payload: string }> } | undefined
  afterAll(async () => {
    await sim?.stop()
    await watcher?.client.endAsync(true)
    await t?.stop()
  })

  it('goes offline (silent) after silentAfterSeconds without a request, and online again on the next uplink', async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      multitech: { http: { silentAfterSeconds: 1 } },
    })
    watcher = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`, 'lorabridge', 'presence-watcher')
    sim = new ConduitSimulator({ url: `http://127.0.0.1:${t.port('http')}`, version: '1.1', devices: [generatedDevice(5)], httpPollIntervalMs: 3_600_000 })
    await sim.start()
    const gateway = sim.gwUuid.toLowerCase()
    const topic = `lorabridge/gateways/${gateway}/status`
    const statuses = (): Array<Record<string, unknown>> => watcher!.seen.filter(m => m.topic === topic).map(m => JSON.parse(m.payload) as Record<string, unknown>)
    await sim.uplink(0, { port: 2, data: Buffer.from([1]) })
    expect(statuses().at(-1)).toMatchObject({ online: true, transport: 'http' })

    const offline = await until(() => statuses().find(s => s.online === false), 'the silent offline status', 6000)
    expect(offline).toMatchObject({ online: false, reason: 'silent', network: 'multitech', transport: 'http' })
    expect(Date.parse(String(offline.since)) - Date.parse(String(offline.lastSeen))).toBeGreaterThanOrEqual(1000)

    await sim.uplink(0, { port: 2, data: Buffer.from([2]) })
    expect(await until(() => { const s = statuses().at(-1); return s?.online === true ? s : undefined }, 'online again')).toMatchObject({ online: true, transport: 'http' })
  })

  it('ends the downlinks still waiting for an HTTP Conduit in down/failed shutdown when lorabridge stops', async () => {
    const devEui = sim!.devices[0]!.devEui.replace(/-/g, '')
    await watcher!.client.publishAsync(`lorabridge/default/devices/${devEui}/down`, '{"id":"waits-1","fPort":3,"hex":"01"}', { qos: 1 })
    await watcher!.client.publishAsync(`lorabridge/default/devices/${devEui}/down`, '{"id":"waits-2","fPort":3,"hex":"02"}', { qos: 1 })
    await until(() => t!.daemon.multitech.queue.size(devEui) === 2 || undefined, 'two waiting downlinks')
    await sim!.stop()
    sim = undefined
    await t!.stop()
    t = undefined
    const failed = watcher!.seen.filter(m => m.topic === `lorabridge/default/devices/${devEui}/down/failed`).map(m => JSON.parse(m.payload) as Record<string, unknown>)
    expect(failed.map(f => f.id).sort()).toEqual(['waits-1', 'waits-2'])
    for (const f of failed) expect(f).toMatchObject({ reason: 'shutdown', command: 'down', devEui })
  })
})
