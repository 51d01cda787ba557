/**
 * Issue 12, attack 8: with `maxTimeDeviation: 0` a captured ThingPark request, replayed once the
 * replay memory had forgotten it (120 s), was accepted and published a second time. The daemon's
 * clock is injected, so "310 s later" and "a day later" take no real time; the replay memory and
 * the frame deduplication follow that clock.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { observe, sleep, until, type MqttClient } from '../helpers/mqtt.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { Redis } from 'ioredis'
import { tpConfig, ENV, signedUplink, uplinkReport, post } from './thingpark-helpers.js'

const START = Date.parse('2026-03-01T10:00:00.000Z')
const HORIZON = 86_400

describe('ThingPark replay with maxTimeDeviation 0 (one instance)', () => {
  let clock = START
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  const ups = (): number => seen.filter(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/up').length

  beforeAll(async () => {
    t = await startTestDaemon(tpConfig({ maxTimeDeviation: 0 }), { env: ENV, now: () => new Date(clock) })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await observer?.endAsync(true)
    await t?.stop()
  })

  it('refuses a captured request replayed 310 s later, and at any time before the horizon; fresh uplinks keep flowing', async () => {
    const captured = signedUplink(uplinkReport(1), new Date(clock))
    expect((await post(t.port('http'), captured)).status).toBe(204)
    await until(() => ups() === 1, 'the first uplink')

    for (const later of [310, 3600, HORIZON - 60]) {
      clock = START + later * 1000
      const replay = await post(t.port('http'), captured)
      expect(replay.status, `replay at +${later} s: ${JSON.stringify(replay.json)}`).toBe(401)
      expect(replay.json?.error).toBe('LB_ERR_THINGPARK_REPLAY')
      // Legitimate traffic at the same moment: a new frame, signed now, is published.
      const fresh = signedUplink(uplinkReport(100 + later), new Date(clock))
      expect((await post(t.port('http'), fresh)).status).toBe(204)
    }
    await until(() => ups() === 4, 'three fresh uplinks')
    await sleep(100)
    expect(ups()).toBe(4)
  })

  it('refuses the captured request once it is older than the horizon, as too old', async () => {
    const captured = signedUplink(uplinkReport(2), new Date(clock))
    expect((await post(t.port('http'), captured)).status).toBe(204)
    const at = clock
    clock = at + (HORIZON + 120) * 1000
    const replay = await post(t.port('http'), captured)
    expect(replay.status).toBe(401)
    expect(replay.json?.error).toBe('LB_ERR_THINGPARK_TIME')
    // And a report whose Time is that old is refused even if it was never seen.
    const old = signedUplink(uplinkReport(3), new Date(at))
    expect((await post(t.port('http'), old)).json?.error).toBe('LB_ERR_THINGPARK_TIME')
    expect((await post(t.port('http'), signedUplink(uplinkReport(4), new Date(clock)))).status).toBe(204)
  })
})

describe('ThingPark replay memory when full (no Redis)', () => {
  let clock = START
  let t: TestDaemon

  beforeAll(async () => {
    t = await startTestDaemon(tpConfig({ maxTimeDeviation: 0 }, { replayMemoryMaxEntries: 1000 }), { env: ENV, now: () => new Date(clock) })
  })
  afterAll(async () => { await t?.stop() })

  it('forgets the oldest token past its cap, and then refuses that request as too old rather than accept it again', async () => {
    const first = signedUplink(uplinkReport(1), new Date(clock))
    expect((await post(t.port('http'), first)).status).toBe(204)
    for (let i = 2; i <= 1000; i++) {
      clock += 1000
      expect((await post(t.port('http'), signedUplink(uplinkReport(i), new Date(clock)))).status).toBe(204)
    }
    expect(await t.counter('thingparkReplayEvictions')).toBe(0)
    clock += 1000
    expect((await post(t.port('http'), signedUplink(uplinkReport(1001), new Date(clock)))).status).toBe(204)
    expect(await t.counter('thingparkReplayEvictions')).toBe(1)
    const replay = await post(t.port('http'), first)
    expect(replay.status).toBe(401)
    expect(replay.json?.error).toBe('LB_ERR_THINGPARK_TIME')
    // Still remembered, so still a replay; and new reports keep being accepted.
    const second = signedUplink(uplinkReport(2), new Date(START + 1000))
    expect((await post(t.port('http'), second)).json?.error).toBe('LB_ERR_THINGPARK_REPLAY')
    clock += 1000
    expect((await post(t.port('http'), signedUplink(uplinkReport(1002), new Date(clock)))).status).toBe(204)
  })
})

describe('ThingPark replay with maxTimeDeviation 0 (two instances sharing Redis)', () => {
  let clock = START
  let redis: RedisServer
  const daemons: TestDaemon[] = []

  beforeAll(async () => {
    redis = await startRedis()
    for (let i = 0; i < 2; i++) {
      daemons.push(await startTestDaemon({ ...tpConfig({ maxTimeDeviation: 0 }), redis: { url: redis.url } }, { env: ENV, now: () => new Date(clock) }))
    }
  })
  afterAll(async () => {
    for (const d of daemons) await d.stop()
    await redis?.stop()
  })

  it('refuses on instance B, 310 s later, a request instance A accepted', async () => {
    const [a, b] = daemons as [TestDaemon, TestDaemon]
    const captured = signedUplink(uplinkReport(10), new Date(clock))
    expect((await post(a.port('http'), captured)).status).toBe(204)
    // The shared memory keeps the token for the whole horizon (Redis expiries run in real time).
    const token = /Token=([0-9a-f]{64})/.exec(captured.query)![1]!
    const r = new Redis(redis.url)
    try {
      const [key] = (await r.keys(`*${token}*`))
      expect(key).toBeDefined()
      expect(await r.pttl(key!)).toBeGreaterThan((HORIZON - 60) * 1000)
    } finally {
      r.disconnect()
    }
    clock += 310_000
    const replay = await post(b.port('http'), captured)
    expect(replay.status).toBe(401)
    expect(replay.json?.error).toBe('LB_ERR_THINGPARK_REPLAY')
    expect((await post(b.port('http'), signedUplink(uplinkReport(11), new Date(clock)))).status).toBe(204)
  })
})
