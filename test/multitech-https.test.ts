/**
 * app-connect's HTTPS mode with client certificates, as on MQTTS: a Conduit presenting a
 * certificate of a gateway user is served (init, uplink, downlink in the poll); a certificate of a
 * user that is not a gateway, or bound to another gateway, is refused with 403. Also the optional
 * path prefix, and keep-alive longer than the poll interval.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { runCli } from './helpers/cli.js'
import { connect, collect, sleep, type MqttClient, observe } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice, type ReceivedDownlink } from '../src/simulate/conduit.js'

const GW = '7d0c9e1a-2b3f-4c5d-8e6f-a1b2c3d4e5f6'

describe('app-connect over HTTPS with client certificates', () => {
  let t: TestDaemon
  let operator: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let pem: (name: string) => Promise<{ cert: Buffer, key: Buffer }>
  let ca: Buffer

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'https', host: '127.0.0.1', port: 0 }] },
      multitech: { http: { pathPrefix: '/conduits' } },
    })
    const cli = async (...args: string[]): Promise<void> => {
      const r = await runCli(['-c', t.configFile, ...args])
      expect(r.code, r.stderr).toBe(0)
    }
    for (const name of ['conduit-https', 'dashboard', 'other-conduit']) await cli('certs', 'client', name)
    await cli('users', 'add', 'conduit-https', '--role', 'gateway', '--gateway', GW)
    await cli('users', 'add', 'dashboard', '--role', 'consumer', '--apps', 'default')
    await cli('users', 'add', 'other-conduit', '--role', 'gateway', '--gateway', '00000000-1111-2222-3333-444444444444')
    await sleep(1100)
    ca = await readFile(join(t.dataDir, 'ca.crt'))
    pem = async name => ({ cert: await readFile(join(t.dataDir, `${name}.crt`)), key: await readFile(join(t.dataDir, `${name}.key`)) })
    ;({ client: operator, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await operator?.endAsync(true)
    await t?.stop()
  })

  it('serves a Conduit with a gateway certificate under the path prefix: init, uplink, downlink by poll', async () => {
    const sim = new ConduitSimulator({
      url: `https://localhost:${t.port('https')}/conduits`, version: '1.1', gwUuid: GW, ca, ...await pem('conduit-https'),
      devices: [generatedDevice(1)], httpPollIntervalMs: 3_600_000, httpRetryDelayMs: 50,
    })
    try {
      await sim.start()
      expect(sim.httpConfig).toEqual({ timeout: 20, queue_size: 10, downlink_query_interval: 30 })
      const from = seen.length
      await sim.uplink(0, { data: Buffer.from([1]) })
      const end = Date.now() + 5000
      while (!seen.slice(from).some(m => m.topic.endsWith('/up')) && Date.now() < end) await sleep(10)
      const up = JSON.parse(seen.slice(from).find(m => m.topic.endsWith('/up'))!.payload) as Record<string, unknown>
      const devEui = sim.devices[0]!.devEui.replace(/-/g, '')
      expect(up).toMatchObject({ devEui, network: { transport: 'http', gateway: GW } })
      await operator.publishAsync(`lorabridge/default/devices/${devEui}/down`, '{"id":"https-dl","fPort":4,"hex":"beef"}', { qos: 1 })
      while (t.daemon.multitech.queue.size(devEui) === 0) await sleep(10)
      const got = new Promise<ReceivedDownlink>(resolve => sim.once('downlink', resolve))
      await sim.pollDownlinks()
      expect((await got).payload).toMatchObject({ data: 'vu8=', port: 4 })
    } finally {
      await sim.stop()
    }
  })

  const status = async (name: string | undefined, path: string): Promise<number> => new Promise((resolve, reject) => {
    void (async () => {
      const creds = name === undefined ? {} : await pem(name)
      const req = request({ host: '127.0.0.1', servername: 'localhost', port: t.port('https'), path, method: 'POST', ca, ...creds, headers: { 'content-type': 'application/json' } }, res => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end('{"gateways_euis": []}')
    })()
  })

  it('refuses a certificate whose user is not a gateway, and one bound to another gateway (403), counted', async () => {
    const before = await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_HTTP_AUTH' })
    expect(await status('dashboard', `/conduits/api/v1/lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW}/init`)).toBe(403)
    expect(await status('other-conduit', `/conduits/api/v1/lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW}/init`)).toBe(403)
    expect(await status('conduit-https', `/conduits/api/v1/lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW}/init`)).toBe(200)
    expect(await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_HTTP_AUTH' })).toBe(before + 2)
  })

  it('keeps idle connections open longer than the poll interval (a closed keep-alive costs the Conduit a 5 s retry, §3)', async () => {
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      void pem('conduit-https').then(creds => {
        const req = request({ host: '127.0.0.1', servername: 'localhost', port: t.port('https'), path: `/conduits/api/v1/lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW}/init`, method: 'POST', ca, ...creds, headers: { 'content-type': 'application/json', connection: 'keep-alive' } }, resolve)
        req.on('error', reject)
        req.end('{"gateways_euis": []}')
      })
    })
    expect(res?.headers['keep-alive']).toMatch(/timeout=(\d+)/)
    const timeout = Number(/timeout=(\d+)/.exec(String(res?.headers['keep-alive']))![1])
    expect(timeout).toBeGreaterThan(30)
    res?.resume()
  })
})
