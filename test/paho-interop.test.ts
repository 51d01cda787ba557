/**
 * A real third-party client (issue must-show 3): Debian's python3-paho-mqtt — the library
 * app-connect runs on the Conduit — with TLS 1.2 and a client certificate from `certs client`,
 * bound to its GW-UUID, publishes an app-connect v1.1 uplink and receives the downlink routed to it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { runCli } from './helpers/cli.js'
import { connect, collect, sleep, type MqttClient, observe } from './helpers/mqtt.js'

const SCRIPT = fileURLToPath(new URL('./interop/paho_conduit.py', import.meta.url))
// Debian's python3-paho-mqtt imports only under the system interpreter.
const PYTHON = process.env.LORABRIDGE_TEST_PYTHON ?? '/usr/bin/python3'
const GW = '5a1f00d2-7c4e-4b39-9f0a-22c3e1d4b6a8'
const DEV = '00-11-22-33-44-55-66-77'

describe('python3-paho-mqtt as an app-connect v1.1 Conduit', () => {
  let t: TestDaemon
  let operator: MqttClient
  let seen: Array<{ topic: string, payload: string }>

  beforeAll(async () => {
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }, { protocol: 'mqtts', host: '127.0.0.1', port: 0 }] } })
    expect((await runCli(['-c', t.configFile, 'certs', 'client', 'conduit-paho'])).code).toBe(0)
    const added = await runCli(['-c', t.configFile, 'users', 'add', 'conduit-paho', '--role', 'gateway', '--gateway', GW])
    expect(added.code, added.stderr).toBe(0)
    await sleep(1100) // users file re-read
    ;({ client: operator, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await operator?.endAsync(true)
    await t?.stop()
  })

  it('publishes an uplink that is normalized, and receives its downlink on lorawan/{GW}/down', async () => {
    const py = spawn(PYTHON, [SCRIPT, '--port', String(t.port('mqtts')), '--ca', join(t.dataDir, 'ca.crt'),
      '--cert', join(t.dataDir, 'conduit-paho.crt'), '--key', join(t.dataDir, 'conduit-paho.key'), '--gw', GW, '--deveui', DEV], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    py.stderr.on('data', d => { stderr += String(d) })
    const lines: Array<Record<string, unknown>> = []
    createInterface({ input: py.stdout }).on('line', l => { lines.push(JSON.parse(l) as Record<string, unknown>) })
    const exited = new Promise<number | null>(resolve => py.on('close', resolve))
    const waitFor = async (pred: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> => {
      const end = Date.now() + 15_000
      for (;;) {
        const l = lines.find(pred)
        if (l !== undefined) return l
        if (Date.now() > end || py.exitCode !== null) throw new Error(`paho: no ${what}; stderr: ${stderr}; lines: ${JSON.stringify(lines)}`)
        await sleep(20)
      }
    }

    expect(await waitFor(l => l.event === 'connack', 'CONNACK')).toMatchObject({ rc: 0, tls: 'TLSv1.2' })
    expect(await waitFor(l => l.event === 'subscribed', 'SUBACK')).toMatchObject({ granted: [1] })
    await waitFor(l => l.event === 'uplink', 'uplink')
    const upTopic = 'lorabridge/default/devices/0011223344556677/up'
    const end = Date.now() + 5000
    while (!seen.some(m => m.topic === upTopic) && Date.now() < end) await sleep(20)
    expect(JSON.parse(seen.find(m => m.topic === upTopic)!.payload)).toMatchObject({
      devEui: '0011223344556677', fPort: 5, fCnt: 3, hex: 'abcd', network: { type: 'multitech', transport: 'mqtt', protocol: '1.1', gateway: GW },
    })
    expect(t.logs.find(l => l.msg === 'client authenticated' && l.user === 'conduit-paho')).toMatchObject({ via: 'certificate', role: 'gateway', protocol: 'mqtts' })

    await operator.publishAsync('lorabridge/default/devices/0011223344556677/down', '{"id":"to-paho","fPort":8,"hex":"c0ffee","confirmed":false}', { qos: 1 })
    expect(await waitFor(l => l.event === 'downlink', 'downlink')).toEqual({
      event: 'downlink', topic: `lorawan/${GW}/down`, retain: false, qos: 1,
      payload: { deveui: DEV, data: 'wP/u', port: 8, ack: false },
    })
    expect(await exited).toBe(0)
    expect(seen.some(m => m.topic === 'lorabridge/default/devices/0011223344556677/down/queued' && (JSON.parse(m.payload) as { id: string }).id === 'to-paho')).toBe(true)
  })
})
