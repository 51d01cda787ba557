/**
 * Overload: while a hundred deliveries wait on a subscriber that does not read, publications queue
 * in the broker's emitter; when the subscriber reads again the backlog is delivered — not drained
 * by recursion until the stack overflows and the daemon dies (as it did in a benchmark run at
 * twice its capacity). Every message still arrives.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, sleep, until, type MqttClient } from './helpers/mqtt.js'

describe('broker under a backlog', () => {
  let t: TestDaemon | undefined
  let slow: MqttClient | undefined
  afterAll(async () => {
    await slow?.endAsync(true)
    await t?.stop()
  })

  it('delivers a backlog of 30,000 publications queued behind a stalled subscriber', async () => {
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] } })
    const bus = t.daemon.bus
    slow = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'stalled' })
    let slowGot = 0
    slow.on('message', () => { slowGot++ })
    await slow.subscribeAsync('stall/#', { qos: 1 })
    const internal: number[] = []
    await bus.subscribe('flood/#', (_topic, payload) => { internal.push((JSON.parse(payload.toString()) as { n: number }).n) })

    // The subscriber stops reading: 200 deliveries of 64 KiB each fill the socket and stay pending.
    ;(slow as unknown as { stream: { pause: () => void, resume: () => void } }).stream.pause()
    const big = { blob: 'x'.repeat(64 * 1024) }
    const stalled = Array.from({ length: 200 }, () => bus.publish('stall/x', big, { qos: 1 }))
    await sleep(300)
    // Meanwhile 30,000 publications arrive, most for nobody (they complete at once), some for an
    // in-process subscriber.
    const n = 30_000
    const flood = Array.from({ length: n }, (_, i) => bus.publish(i % 10 === 0 ? `flood/${i % 7}` : `nobody/${i % 7}`, { n: i }, { qos: 0 }))
    await sleep(100)
    ;(slow as unknown as { stream: { resume: () => void } }).stream.resume()
    await Promise.all([...stalled, ...flood])
    await until(() => slowGot === 200 || undefined, 'the stalled deliveries', 20_000)
    await until(() => internal.length === n / 10 || undefined, 'the in-process deliveries')
    expect(internal.every((v, i) => v === i * 10)).toBe(true)
  }, 30_000)
})
