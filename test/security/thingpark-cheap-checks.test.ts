/**
 * Issue 12, weakness: unauthenticated ThingPark XML was parsed before the token was checked, so
 * anyone could make the daemon parse 62 KB of XML per request (200 posts raised MQTT round trips
 * from 44 ms to 619 ms). Now the checks that need no body come first (Content-Type, query, AS_ID,
 * Token format, Time window, replay), and an address whose requests keep failing them or the token
 * gets 429 before its body is read.
 *
 * "Not parsed" is observed through the answers: a body that is not XML at all gets the cheap check's
 * code, never LB_ERR_THINGPARK_BODY (the parser's), and once an address is limited even a body
 * that is not XML gets 429.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { randomBytes } from 'node:crypto'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { observe, sleep, until, type MqttClient } from '../helpers/mqtt.js'
import { tpConfig, ENV, signedUplink, uplinkReport, post, type TpRequest } from './thingpark-helpers.js'

const START = Date.parse('2026-03-01T10:00:00.000Z')

/** About 62 KB of well-formed report XML: 600 `<Lrr>` receptions. */
function bigXmlUplink (fCnt: number, time: Date, token?: string): TpRequest {
  const req = signedUplink(uplinkReport(fCnt), time, { xml: true, ...(token !== undefined ? { token } : {}) })
  const lrr = '<Lrr><Lrrid>10000036</Lrrid><Chain>0</Chain><LrrRSSI>-67.000000</LrrRSSI><LrrSNR>9.250000</LrrSNR></Lrr>'
  return { ...req, body: req.body.replace('</DevEUI_uplink>', `<Lrrs>${lrr.repeat(600)}</Lrrs></DevEUI_uplink>`) }
}

/** A body no parser accepts: 62 KB of unclosed tags. */
const NOT_XML = '<DevEUI_uplink>'.repeat(4000)

describe('cheap checks come before the body is parsed', () => {
  let clock = START
  let t: TestDaemon

  beforeAll(async () => {
    t = await startTestDaemon(tpConfig({ maxTimeDeviation: 60 }), { env: ENV, now: () => new Date(clock) })
  })
  afterAll(async () => { await t?.stop() })

  it.each([
    ['an AS_ID that is not the connection\'s', { asId: 'TWA_other.1.AS' }, 0, 'LB_ERR_THINGPARK_TOKEN'],
    ['a Token that is not 64 hex digits', { token: 'not-a-token' }, 0, 'LB_ERR_THINGPARK_TOKEN'],
    ['a Time 5 minutes old', {}, -300, 'LB_ERR_THINGPARK_TIME'],
  ] as Array<[string, { asId?: string, token?: string }, number, string]>)('refuses %s without parsing its body', async (_name, o, skewSeconds, code) => {
    const req = signedUplink(uplinkReport(1), new Date(clock + skewSeconds * 1000), o)
    const r = await post(t.port('http'), { ...req, body: NOT_XML, contentType: 'text/xml' })
    expect(r.json?.error, JSON.stringify(r.json).slice(0, 300)).toBe(code)
    expect(r.status).toBe(401)
  })

  it('does not echo a body the parser refuses into the answer or the log', async () => {
    const req = signedUplink(uplinkReport(2), new Date(clock), { token: 'ab'.repeat(32) })
    const r = await post(t.port('http'), { ...req, body: NOT_XML, contentType: 'text/xml' })
    expect(r.json?.error).toBe('LB_ERR_THINGPARK_BODY')
    expect(String(r.json?.message).length, 'the answer').toBeLessThan(300)
    const logged = t.logs.withCode('LB_ERR_THINGPARK_BODY').at(-1)
    expect(String(logged?.reason).length, 'the log line').toBeLessThan(300)
  })

  it('refuses a replayed token without parsing its body, and still publishes the original', async () => {
    const { client, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    try {
      const captured = bigXmlUplink(7, new Date(clock))
      expect((await post(t.port('http'), captured)).status).toBe(204)
      await until(() => seen.some(m => m.topic.endsWith('/up')), 'the original uplink')
      const r = await post(t.port('http'), { ...captured, body: NOT_XML })
      expect(r.json?.error, JSON.stringify(r.json).slice(0, 300)).toBe('LB_ERR_THINGPARK_REPLAY')
    } finally {
      await client.endAsync(true)
    }
  })
})

describe('failed tokens are limited per source address', () => {
  const LIMIT = 10
  let clock = START
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  const ups = (): number => seen.filter(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/up').length
  const ATTACKER = '127.0.0.3'
  const THINGPARK = '127.0.0.2'

  beforeAll(async () => {
    t = await startTestDaemon(tpConfig({ maxTimeDeviation: 60 }, { failedTokenLimit: { perAddress: LIMIT, windowSeconds: 600 } }), { env: ENV, now: () => new Date(clock) })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
  })
  afterAll(async () => {
    await observer?.endAsync(true)
    await t?.stop()
  })

  it('answers a flood of bad-token 62 KB XML posts 429 after the limit, unparsed, while signed uplinks from ThingPark are published', async () => {
    const port = t.port('http')
    const tokenFailures = (): Promise<number> => t.counter('thingparkTokenFailures', { connection: 'tp-eu', code: 'LB_ERR_THINGPARK_TOKEN' })
    const limited = (): Promise<number> => t.counter('ingestErrors', { network: 'thingpark', code: 'LB_ERR_THINGPARK_RATE_LIMITED' })
    const statuses: number[] = []
    let fCnt = 1000
    for (let i = 0; i < 4 * LIMIT; i++) {
      const bad = bigXmlUplink(fCnt++, new Date(clock), randomBytes(32).toString('hex'))
      expect(Buffer.byteLength(bad.body)).toBeGreaterThan(60_000)
      statuses.push((await post(port, bad, ATTACKER)).status)
      // ThingPark's own posts, interleaved with the flood, are answered 204 and published.
      if (i % 4 === 0) expect((await post(port, bigXmlUplink(fCnt++, new Date(clock)), THINGPARK)).status).toBe(204)
    }
    expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(401))
    expect(statuses.slice(LIMIT)).toEqual(Array(3 * LIMIT).fill(429))
    // Only the first LIMIT bodies reached the token check (which follows the parse).
    expect(await tokenFailures()).toBe(LIMIT)
    expect(await limited()).toBe(3 * LIMIT)
    // Once limited, not even a body that is not XML is looked at.
    const notXml = await post(port, { ...signedUplink(uplinkReport(fCnt++), new Date(clock)), body: NOT_XML, contentType: 'text/xml' }, ATTACKER)
    expect(notXml.status).toBe(429)
    expect(notXml.json?.error).toBe('LB_ERR_THINGPARK_RATE_LIMITED')
    await until(() => ups() === LIMIT, 'every uplink ThingPark sent')
    // One log line per address per window, not one per refused request.
    expect(t.logs.withCode('LB_ERR_THINGPARK_RATE_LIMITED').length).toBe(1)

    // Another source is not affected; the attacker's budget refills over the window.
    expect((await post(port, signedUplink(uplinkReport(fCnt++), new Date(clock)), '127.0.0.4')).status).toBe(204)
    clock += 600_000
    expect((await post(port, signedUplink(uplinkReport(fCnt++), new Date(clock)), ATTACKER)).status).toBe(204)
    await until(() => ups() === LIMIT + 2, 'the last two uplinks')
    await sleep(50)
    expect(ups()).toBe(LIMIT + 2)
  })
})
