/**
 * End to end with the Conduit simulator (issue must-show 2, 4, 5, 6): for app-connect v1.0, v1.1
 * and 1.1.1, base64 and hex, MQTT and HTTP — uplink → normalized `up`; a `down` request → the
 * simulated Conduit receives the right topic and payload; `clear`. Then deduplication across a
 * retained replay and two Conduits, presence, and a downlink to an unknown device.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, collect, sleep, type MqttClient, observe } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice, type AppConnectVersion, type ReceivedDownlink } from '../src/simulate/conduit.js'
import { schemaViolations } from './helpers/event-schemas.js'

async function until<T> (probe: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

const bare = (dashed: string): string => dashed.replace(/-/g, '')
const dashedUuid = (raw: string): string => {
  const h = raw.replace(/-/g, '').toLowerCase()
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

describe('Conduit simulator against lorabridge', () => {
  let t: TestDaemon
  let operator: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  const sims: ConduitSimulator[] = []
  let gwIndex = 0

  const events = (topic: string): Array<Record<string, unknown>> => seen.filter(m => m.topic === topic).map(m => JSON.parse(m.payload) as Record<string, unknown>)
  const nextEvent = (topic: string, from: number, pred: (e: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> =>
    until(() => seen.slice(from).filter(m => m.topic === topic).map(m => JSON.parse(m.payload) as Record<string, unknown>).find(pred), topic)

  const simulator = async (opts: { version: AppConnectVersion, hex?: boolean, transport?: 'mqtt' | 'http', devices?: number, gwUuid?: string, deviceOffset?: number }): Promise<ConduitSimulator> => {
    gwIndex++
    const url = opts.transport === 'http' ? `http://127.0.0.1:${t.port('http')}` : `mqtt://127.0.0.1:${t.port('mqtt')}`
    const sim = new ConduitSimulator({
      url,
      version: opts.version,
      encodeHex: opts.hex === true,
      gwUuid: opts.gwUuid ?? `${String(gwIndex).padStart(6, '0')}e06156cdd44523264b523115c1`,
      gatewayEuis: [`00-80-00-00-d0-00-${String(gwIndex).padStart(2, '0')}-ff`],
      devices: Array.from({ length: opts.devices ?? 1 }, (_, i) => generatedDevice((opts.deviceOffset ?? gwIndex * 10) + i)),
      httpPollIntervalMs: 3_600_000, // tests poll explicitly
      httpRetryDelayMs: 50,
    })
    sims.push(sim)
    await sim.start()
    return sim
  }

  beforeAll(async () => {
    t = await startTestDaemon()
    ;({ client: operator, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await Promise.all(sims.map(s => s.stop()))
    await operator?.endAsync(true)
    await t?.stop()
  })

  const matrix = (['1.0', '1.1', '1.1.1'] as const).flatMap(version => (['base64', 'hex'] as const).flatMap(encoding => (['mqtt', 'http'] as const).map(transport => ({ version, encoding, transport }))))

  describe.each(matrix)('app-connect $version, $encoding, over $transport', ({ version, encoding, transport }) => {
    let sim: ConduitSimulator
    let devEui: string
    // Over HTTP, init carries no api_version (§3): a 1.1.1 Conduit cannot be told from a 1.1 one.
    const protocol = transport === 'http' && version === '1.1.1' ? '1.1' : version

    beforeAll(async () => {
      sim = await simulator({ version, hex: encoding === 'hex', transport })
      devEui = bare(sim.devices[0]!.devEui)
    })

    it('uplink → a normalized up with the right fields', async () => {
      const from = seen.length
      await sim.uplink(0, { port: 7, data: Buffer.from([0x01, 0x02, 0xfe]) })
      const up = await nextEvent(`lorabridge/default/devices/${devEui}/up`, from)
      expect(up).toMatchObject({
        app: 'default',
        devEui,
        devAddr: sim.devices[0]!.devAddr,
        fPort: 7,
        fCnt: 0,
        confirmed: false,
        data: 'AQL+',
        hex: '0102fe',
        network: { type: 'multitech', transport, protocol, gateway: dashedUuid(sim.gwUuid) },
      })
    })

    it('a down request reaches the simulated Conduit in its dialect, and ends in down/queued', async () => {
      const from = seen.length
      const got = new Promise<ReceivedDownlink>(resolve => sim.once('downlink', resolve))
      await operator.publishAsync(`lorabridge/default/devices/${devEui}/down`, JSON.stringify({ id: `dl-${version}-${encoding}-${transport}`, fPort: 3, hex: 'a1b2', confirmed: true }), { qos: 1 })
      if (transport === 'http') {
        // HTTP Conduits fetch downlinks; the request waits until the next poll (or up reply).
        await until(() => t.daemon.multitech.queue.size(devEui) === 1 ? true : undefined, 'pending downlink')
        await sim.pollDownlinks()
      }
      const dl = await got
      expect(dl.data).toEqual(Buffer.from([0xa1, 0xb2]))
      expect(dl.payload).toMatchObject({ deveui: sim.devices[0]!.devEui, data: encoding === 'hex' ? 'a1b2' : 'obI=', port: 3, ack: true })
      if (transport === 'mqtt') {
        expect(dl.topic).toBe(version === '1.0' ? `lorawan/${sim.devices[0]!.appEui}/${sim.devices[0]!.devEui}/down` : `lorawan/${sim.gwUuid}/down`)
      }
      expect(await nextEvent(`lorabridge/default/devices/${devEui}/down/queued`, from)).toMatchObject({ id: `dl-${version}-${encoding}-${transport}`, app: 'default', devEui, network: { type: 'multitech', transport, protocol } })
    })

    it('clear goes to the Conduit where its version has one', async () => {
      const from = seen.length
      const cleared = new Promise<{ topic: string }>(resolve => sim.once('clear', resolve))
      await operator.publishAsync(`lorabridge/default/devices/${devEui}/clear`, '{"id":"clear-1"}', { qos: 1 })
      if (transport === 'mqtt' && version === '1.1') {
        expect(await nextEvent(`lorabridge/default/devices/${devEui}/down/failed`, from)).toMatchObject({ id: 'clear-1', command: 'clear', reason: 'unsupported' })
        return
      }
      expect(await nextEvent(`lorabridge/default/devices/${devEui}/down/queued`, from)).toMatchObject({ id: 'clear-1', command: 'clear' })
      if (transport === 'mqtt') {
        expect((await cleared).topic).toBe(version === '1.0' ? `lorawan/${sim.devices[0]!.appEui}/${sim.devices[0]!.devEui}/clear` : `lorawan/${sim.gwUuid}/clear`)
      }
    })
  })

  it('an HTTP Conduit gets a pending downlink in the reply to that device\'s next uplink (Class A)', async () => {
    const sim = await simulator({ version: '1.1', transport: 'http' })
    const devEui = bare(sim.devices[0]!.devEui)
    await sim.uplink(0)
    await operator.publishAsync(`lorabridge/default/devices/${devEui}/down`, '{"id":"class-a","fPort":9,"data":"AQ=="}', { qos: 1 })
    await until(() => t.daemon.multitech.queue.size(devEui) === 1 ? true : undefined, 'pending downlink')
    const got = new Promise<ReceivedDownlink>(resolve => sim.once('downlink', resolve))
    await sim.uplink(0)
    expect((await got).payload).toMatchObject({ data: 'AQ==', port: 9 })
  })

  it('publishes one uplink for a frame heard by two Conduits and replayed retained, and counts 2 duplicates', async () => {
    const shared = generatedDevice(900)
    const a = await simulator({ version: '1.1', devices: 0 })
    const b = await simulator({ version: '1.1', devices: 0 })
    a.devices.push({ ...shared }); b.devices.push({ ...shared })
    const before = await t.counter('duplicates', { network: 'multitech', kind: 'up' })
    const from = seen.length
    const frame = await a.uplink(0, { data: Buffer.from('hi'), port: 2 })
    // The second Conduit heard the same frame (same counter and payload) through its own radio.
    await b.uplink(0, { data: Buffer.from('hi'), port: 2 })
    // A retained replay: the frame as stored by the broker, published again by its Conduit.
    const raw = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: a.clientId + '-replay' })
    await raw.publishAsync(`lorawan/${a.gwUuid}/${shared.appEui}/${shared.devEui}/up`, JSON.stringify(frame), { qos: 1, retain: true })
    await raw.endAsync()
    await until(async () => undefined, 'settle', 300).catch(() => {})
    expect(events(`lorabridge/default/devices/${bare(shared.devEui)}/up`).length).toBe(seen.slice(0, from).filter(m => m.topic === `lorabridge/default/devices/${bare(shared.devEui)}/up`).length + 1)
    expect(await t.counter('duplicates', { network: 'multitech', kind: 'up' })).toBe(before + 2)
  })

  it('delivers a Conduit\'s retained uplink live but does not keep it retained (its normalized event replaces it)', async () => {
    const sim = await simulator({ version: '1.1' })
    const dev = sim.devices[0]!
    const topic = `lorawan/${sim.gwUuid}/${dev.appEui}/${dev.devEui}/up`
    const live = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'raw-live' })
    const liveSeen = collect(live)
    await live.subscribeAsync(topic, { qos: 1 })
    await sim.uplink(0, { data: Buffer.from('kept?'), port: 2 })
    await until(() => liveSeen.find(m => m.topic === topic), 'the live delivery')
    await nextEvent(`lorabridge/default/devices/${bare(dev.devEui)}/up`, 0, e => e.hex === Buffer.from('kept?').toString('hex'))
    const late = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'raw-late' })
    const lateSeen = collect(late)
    await late.subscribeAsync(topic, { qos: 1 })
    await sleep(300)
    expect(lateSeen.filter(m => m.topic === topic)).toEqual([])
    await Promise.all([live.endAsync(), late.endAsync()])
  })

  it('routes downlinks to the Conduit with the best signal for the latest frame', async () => {
    const shared = generatedDevice(901)
    const near = await simulator({ version: '1.1', devices: 0 })
    const far = await simulator({ version: '1.1', devices: 0 })
    near.devices.push({ ...shared }); far.devices.push({ ...shared })
    // The far Conduit reports the frame first with the simulator's default signal; the near one
    // reports the same frame second, with a better SNR.
    const frame = await far.uplink(0, { data: Buffer.from('x') })
    const raw = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: near.clientId })
    await raw.publishAsync(`lorawan/${near.gwUuid}/${shared.appEui}/${shared.devEui}/up`, JSON.stringify({ ...frame, lsnr: 30, rssi: -20 }), { qos: 1 })
    await raw.endAsync()
    await near.reconnect()
    const from = seen.length
    let farGot = false
    far.once('downlink', () => { farGot = true })
    const nearGot = new Promise<ReceivedDownlink>(resolve => near.once('downlink', resolve))
    await operator.publishAsync(`lorabridge/default/devices/${bare(shared.devEui)}/down`, '{"id":"best","fPort":1,"hex":"07"}', { qos: 1 })
    expect((await nearGot).data).toEqual(Buffer.from([7]))
    expect(await nextEvent(`lorabridge/default/devices/${bare(shared.devEui)}/down/queued`, from)).toMatchObject({ id: 'best', network: { gateway: dashedUuid(near.gwUuid) } })
    await sleep(100)
    expect(farGot).toBe(false)
  })

  it('reports presence: online on init, offline on close, offline when the socket dies without DISCONNECT', async () => {
    const from = seen.length
    const sim = await simulator({ version: '1.1.1' })
    const status = `lorabridge/gateways/${dashedUuid(sim.gwUuid)}/status`
    expect(await nextEvent(status, from)).toMatchObject({ online: true, network: 'multitech', protocol: '1.1.1', transport: 'mqtt', gatewayEuis: sim.gatewayEuis })
    // First connection: no will (§1). The broker sees the socket die: offline anyway.
    let mark = seen.length
    sim.drop()
    expect(await nextEvent(status, mark, e => e.online === false)).toMatchObject({ online: false, reason: 'connection-lost' })
    mark = seen.length
    await sim.reconnect() // 1.1.1 publishes `connected`
    expect(await nextEvent(status, mark, e => e.online === true)).toMatchObject({ online: true })
    mark = seen.length
    sim.drop() // now with a will: the will and the dropped connection both say offline; published once
    expect(await nextEvent(status, mark, e => e.online === false)).toMatchObject({ online: false })
    await sleep(200)
    expect(seen.slice(mark).filter(m => m.topic === status).map(m => (JSON.parse(m.payload) as { online: boolean }).online)).toEqual([false])
    mark = seen.length
    await sim.reconnect()
    await nextEvent(status, mark, e => e.online === true)
    mark = seen.length
    await sim.close()
    expect(await nextEvent(status, mark, e => e.online === false)).toMatchObject({ online: false, reason: 'close' })
  })

  it('queues a downlink for an offline Conduit with a persistent session, and fails it with gateway-offline without one', async () => {
    const persistent = await simulator({ version: '1.1' })
    const dev = bare(persistent.devices[0]!.devEui)
    await persistent.uplink(0)
    persistent.drop() // gone; its session stays (clean session off, as app-connect)
    await sleep(100)
    let from = seen.length
    await operator.publishAsync(`lorabridge/default/devices/${dev}/down`, '{"id":"while-away","fPort":1,"hex":"aa"}', { qos: 1 })
    expect(await nextEvent(`lorabridge/default/devices/${dev}/down/queued`, from)).toMatchObject({ id: 'while-away' })
    const got = new Promise<ReceivedDownlink>(resolve => persistent.once('downlink', resolve))
    await persistent.reconnect()
    expect((await got).data).toEqual(Buffer.from([0xaa]))

    gwIndex++
    const clean = new ConduitSimulator({
      url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', cleanSession: true,
      gwUuid: `${String(gwIndex).padStart(6, '0')}e06156cdd44523264b523115c1`, devices: [generatedDevice(950)],
    })
    sims.push(clean)
    await clean.start()
    await clean.uplink(0)
    clean.drop()
    await sleep(100)
    from = seen.length
    const cleanDev = bare(clean.devices[0]!.devEui)
    await operator.publishAsync(`lorabridge/default/devices/${cleanDev}/down`, '{"id":"nobody-home","fPort":1,"hex":"bb"}', { qos: 1 })
    expect(await nextEvent(`lorabridge/default/devices/${cleanDev}/down/failed`, from)).toMatchObject({ id: 'nobody-home', reason: 'gateway-offline' })
  })

  it('ends a downlink to an unknown device in down/failed no-route, and a malformed one in invalid', async () => {
    const from = seen.length
    await operator.publishAsync('lorabridge/default/devices/0123456789abcdef/down', '{"id":"nowhere","fPort":1,"hex":"00"}', { qos: 1 })
    expect(await nextEvent('lorabridge/default/devices/0123456789abcdef/down/failed', from)).toMatchObject({ id: 'nowhere', app: 'default', devEui: '0123456789abcdef', reason: 'no-route' })
    await operator.publishAsync('lorabridge/default/devices/0123456789abcdef/down', '[{"id":"bad-port","fPort":300,"hex":"00"},{"id":"both","fPort":1,"hex":"00","data":"AA=="},"nope"]', { qos: 1 })
    const failed = await until(() => { const f = events('lorabridge/default/devices/0123456789abcdef/down/failed').filter(e => e.reason === 'invalid'); return f.length >= 3 ? f : undefined }, 'three invalid')
    expect(failed.map(f => f.id).slice(0, 2)).toEqual(['bad-port', 'both'])
  })

  it('does not let one application reach another application\'s device', async () => {
    const sim = await simulator({ version: '1.1' })
    const devEui = bare(sim.devices[0]!.devEui)
    await sim.uplink(0)
    const from = seen.length
    let received = false
    sim.once('downlink', () => { received = true })
    await operator.publishAsync(`lorabridge/farm/devices/${devEui}/down`, '{"id":"cross","fPort":1,"hex":"00"}', { qos: 1 })
    expect(await nextEvent(`lorabridge/farm/devices/${devEui}/down/failed`, from)).toMatchObject({ id: 'cross', reason: 'no-route' })
    await sleep(100)
    expect(received).toBe(false)
  })

  it('every message it saw matches its schema (docs/schemas/)', () => {
    // The request malformed on purpose above: refused by its schema as by the daemon.
    const malformed = (m: { payload: string }): boolean => m.payload.includes('"bad-port"')
    expect(schemaViolations(seen.filter(m => !malformed(m)))).toEqual([])
    expect(schemaViolations(seen.filter(malformed))).toHaveLength(1)
  })
})
