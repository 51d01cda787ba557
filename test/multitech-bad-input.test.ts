/**
 * Bad input from (or posing as) a Conduit (issue must-show 7): non-JSON, wrong types, bad EUIs,
 * unknown events, 300 KB payloads — on `lorawan/…` and on the HTTP paths. Each gets a clear
 * error (log line with its code, counter, HTTP status), produces no normalized output, and the
 * daemon keeps handling good messages.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, collect, closedByBroker, sleep, type MqttClient, observe } from './helpers/mqtt.js'
import * as F from './fixtures/app-connect.js'

const GW = F.GW_V11
const UP = `lorawan/${GW}/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up`

describe('bad app-connect input', () => {
  let t: TestDaemon
  let observer: MqttClient
  let conduit: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let base: string

  const normalized = (): string[] => seen.filter(m => m.topic.includes('/devices/')).map(m => m.topic)
  const errors = (code: string): Promise<number> => t.counter('ingestErrors', { network: 'multitech', code })
  async function until (probe: () => Promise<boolean>, what: string): Promise<void> {
    const end = Date.now() + 5000
    while (!await probe()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await sleep(10)
    }
  }

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }], limits: { maxPacketSize: 1048576 } },
    })
    base = `http://127.0.0.1:${t.port('http')}/api/v1/lorawan`
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    conduit = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: `lorawan/${F.CATCH_ALL}/${GW}`, clean: false })
  })
  afterAll(async () => {
    await conduit?.endAsync(true)
    await observer?.endAsync(true)
    await t?.stop()
  })

  const mqttCases: Array<[string, string, string | Buffer, string]> = [
    ['non-JSON uplink', UP, '{"data": "AAA=",', 'LB_ERR_APPCONNECT_JSON'],
    ['uplink that is a JSON array', UP, '[1,2,3]', 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['uplink with a string port', UP, F.F4.replace('"port":1', '"port":"1"'), 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['uplink with fcnt below zero', UP, F.F4.replace('"fcnt":27', '"fcnt":-1'), 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['uplink without data', UP, F.F4.replace('"data":"bWVzc2FnZQ==",', ''), 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['uplink whose data is not base64', UP, F.F4.replace('bWVzc2FnZQ==', 'not base64!'), 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['hex uplink whose data is not hex', UP, F.F6.replace('"data": "0173"', '"data": "zz"'), 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['uplink with a malformed deveui', UP, F.F4.replace('"deveui":"00-80-00-00-00-01-58-34"', '"deveui":"00-80-zz"'), 'LB_ERR_APPCONNECT_EUI'],
    ['init with a malformed gateway EUI', `lorawan/${GW}/init`, '{"gateways_euis": ["not-an-eui"]}', 'LB_ERR_APPCONNECT_EUI'],
    ['unknown gateway event', `lorawan/${GW}/reboot`, '{}', 'LB_ERR_APPCONNECT_TOPIC'],
    ['unknown device event', `lorawan/${GW}/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/teleport`, '{}', 'LB_ERR_APPCONNECT_TOPIC'],
    ['uplink topic with a bad DevEUI segment', `lorawan/${GW}/16-ea-76-f6-ab-66-3d-80/not-a-dev-eui/up`, F.F4, 'LB_ERR_APPCONNECT_TOPIC'],
    ['300 KB uplink', UP, Buffer.alloc(300 * 1024, 0x7b), 'LB_ERR_APPCONNECT_TOO_LARGE'],
  ]

  for (const [name, topic, payload, code] of mqttCases) {
    it(`MQTT: ${name} → ${code}`, async () => {
      const before = await errors(code)
      const from = normalized().length
      await conduit.publishAsync(topic, payload, { qos: 1, retain: true })
      await until(async () => await errors(code) === before + 1, code)
      expect(t.logs.withCode(code).length).toBeGreaterThan(0)
      expect(normalized().slice(from)).toEqual([])
      expect(conduit.connected).toBe(true)
    })
  }

  it('MQTT: a 300 KB packet over the default maxPacketSize cuts the connection, counted', async () => {
    const strict = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] } })
    try {
      const c = await connect(`mqtt://127.0.0.1:${strict.port('mqtt')}`, { clientId: `lorawan/${F.CATCH_ALL}/${GW}` })
      const cut = closedByBroker(c)
      c.publish(UP, Buffer.alloc(300 * 1024, 0x7b), { qos: 1, retain: true })
      expect(await cut).toBe(true)
      expect(await strict.counter('mqttRejected', { code: 'LB_ERR_MQTT_PACKET_TOO_LARGE' })).toBe(1)
    } finally {
      await strict.stop()
    }
  })

  const post = async (path: string, body: string | Buffer): Promise<{ status: number, json: Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    return { status: res.status, json: await res.json() as Record<string, unknown> }
  }

  const httpCases: Array<[string, string, string | Buffer, number, string]> = [
    ['non-JSON uplink', '/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up', 'nope', 400, 'LB_ERR_APPCONNECT_JSON'],
    ['uplink with a string fcnt', '/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up', F.F4.replace('"fcnt":27', '"fcnt":"27"'), 400, 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['uplink path with a bad DevEUI', '/16-ea-76-f6-ab-66-3d-80/xyz/up', F.F4.replace('"deveui":"00-80-00-00-00-01-58-34",', ''), 400, 'LB_ERR_APPCONNECT_TOPIC'],
    ['init path with a bad GW-UUID', `/${F.APP_EUI}/not-a-uuid/init`, '{"gateways_euis": []}', 400, 'LB_ERR_APPCONNECT_TOPIC'],
    ['batch that is not an array', `/${F.APP_EUI}/up`, '{"deveui":"00-80-00-00-00-01-58-34"}', 400, 'LB_ERR_APPCONNECT_JSON'],
    ['batch whose only item is malformed', `/${F.APP_EUI}/up`, '[{"deveui":"00-80-00-00-00-01-58-34","data":7}]', 400, 'LB_ERR_APPCONNECT_PAYLOAD'],
    ['300 KB uplink', '/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up', Buffer.alloc(300 * 1024, 0x7b), 413, 'LB_ERR_APPCONNECT_TOO_LARGE'],
  ]

  for (const [name, path, body, status, code] of httpCases) {
    it(`HTTP: ${name} → ${status} ${code}`, async () => {
      const before = await errors(code)
      const from = normalized().length
      const r = await post(path, body)
      expect(r.status).toBe(status)
      expect(r.json.error).toBe(code)
      expect(await errors(code)).toBe(before + 1)
      await sleep(20)
      expect(normalized().slice(from)).toEqual([])
    })
  }

  it('HTTP: an unknown path is 404 and no normalized output', async () => {
    expect((await post('/a/b/c/d/e', '{}')).status).toBe(404)
  })

  it('still normalizes good messages afterwards, over both transports', async () => {
    const from = seen.length
    await conduit.publishAsync(UP, F.F4, { qos: 1, retain: true })
    expect((await post('/16-ea-76-f6-ab-66-3d-80/00-80-00-ff-ff-00-00-03/up', F.F3)).status).toBe(200)
    await until(async () => seen.slice(from).filter(m => m.topic.endsWith('/up')).length === 2, 'two uplinks')
  })
})
