/**
 * Authorization by role against a real daemon and real clients (must-show 5). Each refusal is
 * paired with the allowed case next to it, so the test fails if the ACL is too open or too shut.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { runCli } from './helpers/cli.js'
import { connect, subscribeGranted, nextMessage, closedByBroker, collect, sleep, type MqttClient } from './helpers/mqtt.js'

const GW_UUID = '029998e0-6156-cdd4-4523-264b523115c1'
const GW_UUID_V10 = '029998E06156CDD44523264B523115C1' // the same Conduit as app-connect v1.0 spells it
const OTHER_GW = '11111111-2222-3333-4444-555555555555'
const DEV = '0011223344556677'

describe('authorization by role', () => {
  let t: TestDaemon
  let url: string
  let admin: MqttClient
  const clients: MqttClient[] = []

  const as = async (username: string, clientId = `${username}-${clients.length}`): Promise<MqttClient> => {
    const c = await connect(url, { username, password: `${username}-password`, clientId })
    clients.push(c)
    return c
  }

  beforeAll(async () => {
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: false }] } })
    url = `mqtt://127.0.0.1:${t.port('mqtt')}`
    const add = async (...args: string[]): Promise<void> => {
      const r = await runCli(['-c', t.configFile, 'users', 'add', ...args, '--password', `${args[0]}-password`])
      expect(r.code, r.stderr).toBe(0)
    }
    // Deliberately unbound: the tests below check what an unbound gateway may and may not do.
    await add('gw-free', '--role', 'gateway', '--any-gateway')
    await add('gw-bound', '--role', 'gateway', '--gateway', GW_UUID)
    await add('farm-reader', '--role', 'consumer', '--apps', 'farm')
    await add('farm-operator', '--role', 'consumer', '--apps', 'farm', '--downlink')
    await add('root', '--role', 'admin')
    await sleep(1100)
    admin = await as('root')
    await admin.subscribeAsync('#', { qos: 1 })
  })

  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    await t?.stop()
  })

  it('a gateway publishes and subscribes on lorawan/… only', async () => {
    const gw = await as('gw-free')
    expect(await subscribeGranted(gw, `lorawan/${GW_UUID}/down`)).toBe(1)
    expect(await subscribeGranted(gw, 'lorabridge/#')).toBe(128)
    expect(await subscribeGranted(gw, '$SYS/#')).toBe(128)
    const up = nextMessage(admin, `lorawan/${GW_UUID}/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up`)
    await gw.publishAsync(`lorawan/${GW_UUID}/16-ea-76-f6-ab-66-3d-80/00-80-00-00-00-01-58-34/up`, '{}', { qos: 1 })
    await up
  })

  it('a gateway publishing on lorabridge/… is disconnected, counted, and nothing is delivered', async () => {
    const gw = await as('gw-free')
    const seen = collect(admin)
    const before = await t.counter('mqttDenied', { action: 'publish', role: 'gateway' })
    const closed = closedByBroker(gw)
    gw.publish(`lorabridge/farm/devices/${DEV}/down`, '{"fPort":1,"hex":"00"}', { qos: 1 })
    expect(await closed).toBe(true)
    await sleep(200)
    expect(seen.filter(m => m.topic.startsWith('lorabridge/'))).toEqual([])
    expect(await t.counter('mqttDenied', { action: 'publish', role: 'gateway' })).toBe(before + 1)
    expect(t.logs.withCode('LB_ERR_MQTT_PUBLISH_DENIED').some(l => l.user === 'gw-free')).toBe(true)
  })

  it('a gateway bound to its GW-UUID uses only its own topics, in either spelling, without wildcards', async () => {
    const gw = await as('gw-bound', `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW_UUID}`)
    expect(await subscribeGranted(gw, `lorawan/${GW_UUID}/down`)).toBe(1)
    expect(await subscribeGranted(gw, `lorawan/16-ea-76-f6-ab-66-3d-80/${GW_UUID_V10}/down`)).toBe(1)
    expect(await subscribeGranted(gw, `lorawan/${OTHER_GW}/down`)).toBe(128)
    expect(await subscribeGranted(gw, 'lorawan/+/down')).toBe(128)
    const closed = closedByBroker(gw)
    gw.publish(`lorawan/${OTHER_GW}/init`, '{}', { qos: 1 })
    expect(await closed).toBe(true)
  })

  it('a consumer of farm reads farm but not city, nor other applications by wildcard', async () => {
    const reader = await as('farm-reader')
    expect(await subscribeGranted(reader, 'lorabridge/farm/devices/+/up')).toBe(1)
    expect(await subscribeGranted(reader, 'lorabridge/city/devices/+/up')).toBe(128)
    expect(await subscribeGranted(reader, 'lorabridge/+/devices/+/up')).toBe(128)
    expect(await subscribeGranted(reader, 'lorabridge/#')).toBe(128)
    expect(await subscribeGranted(reader, 'lorawan/#')).toBe(128)
    expect(await subscribeGranted(reader, '$SYS/#')).toBe(128)
    const got = collect(reader)
    const farmUp = nextMessage(reader, `lorabridge/farm/devices/${DEV}/up`)
    await admin.publishAsync(`lorabridge/city/devices/${DEV}/up`, '{"city":true}', { qos: 1 })
    await admin.publishAsync(`lorabridge/farm/devices/${DEV}/up`, '{"farm":true}', { qos: 1 })
    await farmUp
    expect(got.map(m => m.topic)).toEqual([`lorabridge/farm/devices/${DEV}/up`])
  })

  it('a consumer cannot publish on lorawan/…', async () => {
    const operator = await as('farm-operator')
    const closed = closedByBroker(operator)
    operator.publish(`lorawan/${GW_UUID}/down`, '{"deveui":"00-11-22-33-44-55-66-77"}', { qos: 1 })
    expect(await closed).toBe(true)
  })

  it('a consumer with --downlink cannot forge an outcome or the retained pending list of its own devices', async () => {
    for (const kind of ['down/pending', 'down/acked', 'down/failed']) {
      const operator = await as('farm-operator')
      const closed = closedByBroker(operator)
      operator.publish(`lorabridge/farm/devices/${DEV}/${kind}`, '{"app":"farm","devEui":"x","pending":[]}', { qos: 1, retain: true })
      expect(await closed, kind).toBe(true)
    }
  })

  it('a consumer publishes …/down only with --downlink, and only for its applications', async () => {
    const operator = await as('farm-operator')
    const down = nextMessage(admin, `lorabridge/farm/devices/${DEV}/down`)
    await operator.publishAsync(`lorabridge/farm/devices/${DEV}/down`, '{"fPort":2,"hex":"01"}', { qos: 1 })
    await down
    const closedCity = closedByBroker(operator)
    operator.publish(`lorabridge/city/devices/${DEV}/down`, '{"fPort":2,"hex":"01"}', { qos: 1 })
    expect(await closedCity).toBe(true)

    const reader = await as('farm-reader')
    const closed = closedByBroker(reader)
    reader.publish(`lorabridge/farm/devices/${DEV}/down`, '{"fPort":2,"hex":"01"}', { qos: 1 })
    expect(await closed).toBe(true)
    expect(t.logs.withCode('LB_ERR_MQTT_PUBLISH_DENIED').some(l => l.user === 'farm-reader' && l.reason === 'downlink is not granted')).toBe(true)
  })

  it('an admin reads $SYS', async () => {
    expect(await subscribeGranted(admin, '$SYS/#', 0)).toBe(0)
  })

  it('refuses a CONNECT whose will topic the user may not publish', async () => {
    await expect(connect(url, { username: 'gw-free', password: 'gw-free-password', will: { topic: `lorabridge/farm/devices/${DEV}/down`, payload: Buffer.from('{}'), qos: 1, retain: false } }))
      .rejects.toMatchObject({ code: 5 })
  })
})
