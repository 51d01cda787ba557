/**
 * Attacks 1 and 2 (MQTT half) of the security review, performed against a real daemon:
 * - a consumer of another application takes over a Conduit's client id to steal its queued
 *   downlinks (and kicks the Conduit, flipping its presence);
 * - a gateway bound to GW-UUID A connects with B's client id and publishes as B;
 * - a user takes over another user's session by its client id;
 * - a stored session's queued messages reach a client no longer allowed to read them.
 * Each attack must fail while the legitimate Conduit keeps working.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { putUsers } from '../helpers/users.js'
import { connect, connackCode, collect, closedByBroker, sleep, until, type MqttClient } from '../helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../../src/simulate/conduit.js'

const GW_A = 'aaaaaaaa-6156-cdd4-4523-264b523115c1'
const GW_B = 'bbbbbbbb-6156-cdd4-4523-264b523115c1'
const B_CLIENT_ID = `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW_B}`

describe('client ids belong to the identities that may use them', () => {
  let t: TestDaemon
  let url: string
  let admin: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  const clients: MqttClient[] = []
  const sims: ConduitSimulator[] = []

  const as = async (username: string, opts: { clientId: string, clean?: boolean }): Promise<MqttClient> => {
    const c = await connect(url, { username, password: `${username}-pw`, clientId: opts.clientId, clean: opts.clean ?? true })
    clients.push(c)
    return c
  }

  const conduitB = async (): Promise<ConduitSimulator> => {
    const sim = new ConduitSimulator({
      url, version: '1.1.1', gwUuid: GW_B, gatewayEuis: ['00-80-00-00-d0-00-0b-ff'],
      devices: [generatedDevice(7001)], username: 'gw-b', password: 'gw-b-pw', cleanSession: false,
    })
    sims.push(sim)
    await sim.start()
    return sim
  }

  const gatewayStatuses = (): Array<{ online: boolean }> => seen
    .filter(m => m.topic === `lorabridge/gateways/${GW_B}/status`)
    .map(m => JSON.parse(m.payload) as { online: boolean })

  beforeAll(async () => {
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: false }] } })
    url = `mqtt://127.0.0.1:${t.port('mqtt')}`
    await putUsers(t, {
      'gw-a': { role: 'gateway', password: 'gw-a-pw', gateway: GW_A },
      'gw-b': { role: 'gateway', password: 'gw-b-pw', gateway: GW_B },
      'other-app': { role: 'consumer', password: 'other-app-pw', apps: ['other'] },
      alice: { role: 'consumer', password: 'alice-pw', apps: ['default'] },
      bob: { role: 'consumer', password: 'bob-pw', apps: ['default'] },
      root: { role: 'admin', password: 'root-pw' },
    })
    await sleep(1100) // the daemon re-reads the users file within a second
    admin = await as('root', { clientId: 'observer' })
    seen = collect(admin)
    await admin.subscribeAsync('lorabridge/#', { qos: 1 })
  })
  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await Promise.all(clients.map(c => c.endAsync(true)))
    await t?.stop()
  })

  it('a consumer cannot take over an offline Conduit\'s session and its queued downlink; the Conduit gets it', async () => {
    const sim = await conduitB()
    const dev = sim.devices[0]!
    const devEui = dev.devEui.replace(/-/g, '')
    await sim.uplink(dev)
    await until(() => seen.some(m => m.topic === `lorabridge/default/devices/${devEui}/up`), 'the uplink')
    await sim.stop() // clean DISCONNECT; the persistent session stays
    const from = seen.length
    await admin.publishAsync(`lorabridge/default/devices/${devEui}/down`, JSON.stringify({ id: 'secret-1', fPort: 2, hex: 'c0ffee' }))
    await until(() => seen.slice(from).some(m => m.topic.endsWith('/down/queued') && m.payload.includes('secret-1')), 'down/queued')

    // The attack: another application's consumer connects with B's client id, clean session off.
    const code = await connackCode(url, { username: 'other-app', password: 'other-app-pw', clientId: B_CLIENT_ID, clean: false })
    expect(code).toBe(5)
    expect(await t.counter('authFailures', { code: 'LB_ERR_AUTH_CLIENT_ID' })).toBeGreaterThan(0)

    // The real Conduit reconnects and receives its downlink.
    const back = await conduitB()
    await until(() => back.downlinks.find(d => d.data.toString('hex') === 'c0ffee'), 'the queued downlink at the Conduit')
  })

  it('a consumer cannot kick a connected Conduit: it stays connected and its presence does not flip', async () => {
    const sim = sims.at(-1)!
    expect(sim.isConnected).toBe(true)
    await until(() => gatewayStatuses().at(-1)?.online === true || undefined, 'B online')
    const statusesBefore = gatewayStatuses().length
    for (let i = 0; i < 3; i++) {
      expect(await connackCode(url, { username: 'other-app', password: 'other-app-pw', clientId: B_CLIENT_ID, clean: false })).toBe(5)
    }
    await sleep(300)
    expect(sim.isConnected).toBe(true)
    expect(gatewayStatuses().length).toBe(statusesBefore)
    // And it still works: an uplink goes through (a new payload: the restarted simulator counts from 0 again).
    await sim.uplink(undefined, { data: Buffer.from('0a0b0c', 'hex') })
    await until(() => seen.filter(m => m.topic.endsWith('/up')).length >= 2 || undefined, 'a second uplink')
  })

  it('a gateway bound to A cannot connect as B, so it can neither publish as B nor make B look online', async () => {
    const sim = sims.at(-1)!
    await sim.stop()
    await until(() => gatewayStatuses().at(-1)?.online === false || undefined, 'B offline')
    const statusesBefore = gatewayStatuses().length
    expect(await connackCode(url, { username: 'gw-a', password: 'gw-a-pw', clientId: B_CLIENT_ID, clean: true })).toBe(5)
    // v1.0 spelling of B's GW-UUID: the same Conduit.
    expect(await connackCode(url, { username: 'gw-a', password: 'gw-a-pw', clientId: `lorawan/00-80-00-00-d0-00-0b-ff/${GW_B.replace(/-/g, '').toUpperCase()}` })).toBe(5)
    await sleep(300)
    expect(gatewayStatuses().length).toBe(statusesBefore)
    // Its own id works.
    const own = await as('gw-a', { clientId: `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${GW_A}` })
    expect(own.connected).toBe(true)
  })

  it('a user cannot take over another user\'s session by its client id (CONNACK 2); the owner stays connected', async () => {
    const owner = await as('alice', { clientId: 'dashboard-1', clean: false })
    const code = await connackCode(url, { username: 'bob', password: 'bob-pw', clientId: 'dashboard-1', clean: false })
    expect(code).toBe(2)
    expect(await t.counter('authFailures', { code: 'LB_ERR_AUTH_CLIENT_ID_TAKEN' })).toBe(1)
    await sleep(200)
    expect(owner.connected).toBe(true)
    // The owner may come back with its id after a disconnect (the session is still its own).
    await owner.endAsync()
    const again = await as('alice', { clientId: 'dashboard-1', clean: false })
    expect(again.connected).toBe(true)
    await again.endAsync()
    expect(await connackCode(url, { username: 'bob', password: 'bob-pw', clientId: 'dashboard-1', clean: false })).toBe(2)
  })

  it('a clean session\'s id is free again once its connection ends', async () => {
    const first = await as('alice', { clientId: 'scratch', clean: true })
    expect(await connackCode(url, { username: 'bob', password: 'bob-pw', clientId: 'scratch' })).toBe(2)
    await first.endAsync()
    await until(async () => await connackCode(url, { username: 'bob', password: 'bob-pw', clientId: 'scratch' }) === 0 || undefined, 'the id to be free')
  })

  it('a stored session does not deliver what its user may no longer read', async () => {
    await putUsers(t, { carol: { role: 'consumer', password: 'carol-pw', apps: ['default'] } })
    await sleep(1100)
    const carol = await as('carol', { clientId: 'carol-persistent', clean: false })
    await carol.subscribeAsync('lorabridge/default/#', { qos: 1 })
    await carol.endAsync()
    // Queued for the offline session while carol may still read it…
    await admin.publishAsync('lorabridge/default/devices/0011223344556677/up', JSON.stringify({ n: 1 }), { qos: 1 })
    await sleep(100)
    // …then her grant changes to another application.
    await putUsers(t, { carol: { role: 'consumer', password: 'carol-pw', apps: ['other'] } })
    await sleep(1100)
    const before = await t.counter('mqttDropped', { reason: 'not-authorized' })
    const back = await connect(url, { username: 'carol', password: 'carol-pw', clientId: 'carol-persistent', clean: false })
    clients.push(back)
    const got = collect(back)
    await until(async () => await t.counter('mqttDropped', { reason: 'not-authorized' }) > before || undefined, 'the stored message to be withheld')
    await sleep(200)
    expect(got).toEqual([])
    expect(await closedByBroker(back, 100)).toBe(false)
  })
})
