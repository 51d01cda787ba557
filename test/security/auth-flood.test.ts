/**
 * Attack 5 of issue 12: password hashing exhausted by unauthenticated clients. 400 bad-password
 * CONNECTs from 8 source addresses (each within the per-address connect limit) queued 400 scrypt
 * derivations on libuv's thread pool, and a valid user's login (which waits for a users-file stat on
 * that same pool) went from 47 ms to 10 s.
 *
 * Now: at most `auth.failedAuth.maxConcurrentHashes` derivations run at once for credentials not
 * already verified, waiting ones are served fairly across source addresses, a user name with too
 * many failures is refused without hashing, and what is refused is answered CONNACK 3 and counted.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { connect, until } from '../helpers/mqtt.js'
import { rawConnect, writeUsers } from './console-helpers.js'
import { HashGate } from '../../src/auth/hash-gate.js'

const FLOOD = 400
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`)
/** The bound the issue states for a valid login while the flood runs. */
const PROMPT_MS = 2000

describe('authentication flood', () => {
  let t: TestDaemon
  let dir: string
  let url: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-sec-flood-'))
    await writeUsers(join(dir, 'data'), [
      { name: 'farm', role: 'consumer', password: 'farm-secret' },
      { name: 'reader', role: 'consumer', password: 'reader-secret' },
    ])
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0 }] } }, { dir })
    url = `mqtt://127.0.0.1:${t.port('mqtt')}`
  })
  afterAll(async () => {
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('valid users log in promptly while 400 bad-password CONNECTs from 8 addresses are in flight; refusals are counted', async () => {
    // `farm` has connected before the flood (a Conduit that reconnects); `reader` never has.
    await (await connect(url, { username: 'farm', password: 'farm-secret', clientId: 'farm-before' })).endAsync()

    let finished = 0
    const flood = Array.from({ length: FLOOD }, (_, i) => {
      // Half guess `farm`'s password, half spread over names that do not exist.
      const username = i % 2 === 0 ? 'farm' : `ghost-${i}`
      return rawConnect(t.port('mqtt'), { username, password: `guess-${i}`, clientId: `flood-${i}`, localAddress: SOURCES[i % SOURCES.length]! })
        .finally(() => { finished++ })
    })
    // The flood is being worked on.
    await until(async () => await t.counter('authFailures') > 0 || undefined, 'the first refusal', 20_000)

    const timedLogin = async (username: string, password: string, clientId: string): Promise<number> => {
      const start = performance.now()
      const client = await connect(url, { username, password, clientId })
      const ms = performance.now() - start
      await client.endAsync()
      return ms
    }
    const firstLogin = await timedLogin('reader', 'reader-secret', 'reader-during-flood')
    const knownLogin = await timedLogin('farm', 'farm-secret', 'farm-during-flood')
    const stillInFlight = FLOOD - finished
    expect(firstLogin, 'a user never verified before').toBeLessThan(PROMPT_MS)
    expect(knownLogin, 'a user verified before, whose name the flood targets').toBeLessThan(PROMPT_MS)
    expect(stillInFlight, 'the flood was still running when both had logged in').toBeGreaterThan(0)

    const codes = await Promise.all(flood)
    expect(codes.filter(c => c === 0)).toEqual([])
    const limited = codes.filter(c => c === 3).length
    expect(limited).toBeGreaterThan(0)
    expect(codes.filter(c => c !== 3 && c !== 4)).toEqual([])
    expect(await t.counter('authFailures', { code: 'LB_ERR_AUTH_RATE_LIMITED' })).toBe(limited)
    expect(t.logs.withCode('LB_ERR_AUTH_RATE_LIMITED').length).toBeGreaterThan(0)

    // After the flood, legitimate traffic flows as before.
    expect(await timedLogin('reader', 'reader-secret', 'reader-after')).toBeLessThan(PROMPT_MS)
  })
})

describe('the password-check gate', () => {
  it('serves waiting addresses round-robin, and a full waiting room makes room for the address with fewer', async () => {
    const gate = new HashGate(1, 3)
    const order: string[] = []
    const ask = (source: string, tag: string): Promise<void> => gate.acquire(source).then(granted => { order.push(granted ? tag : `refused ${tag}`) })
    await ask('a', 'a0') // runs
    const waiting = [ask('a', 'a1'), ask('a', 'a2'), ask('a', 'a3')]
    // Full: b takes the place of a's newest.
    const b = ask('b', 'b1')
    await Promise.resolve()
    expect(order).toEqual(['a0', 'refused a3'])
    // Full again, and b has no more than one waiting: c cannot push b out, a gives way.
    const c = ask('c', 'c1')
    await Promise.resolve()
    expect(order).toEqual(['a0', 'refused a3', 'refused a2'])
    for (let i = 0; i < 3; i++) { gate.release(); await Promise.resolve() }
    await Promise.all([...waiting, b, c])
    expect(order.slice(3)).toEqual(['a1', 'b1', 'c1'])
    expect(gate.inFlight).toBe(1)
    gate.release()
    expect(gate.inFlight).toBe(0)
    // An address that failed recently waits behind those that did not — asked when a slot frees,
    // since a flood's first wave arrives before any of it failed — and gives way when full.
    const failed = new Set<string>()
    const prio = new HashGate(1, 3, source => failed.has(source))
    const served: string[] = []
    const take = (source: string, tag: string): Promise<void> => prio.acquire(source).then(granted => { served.push(granted ? tag : `refused ${tag}`) })
    await take('x', 'x0')
    const rest = [take('x', 'x1'), take('y', 'y1'), take('fresh', 'fresh1')]
    failed.add('x').add('y')
    const more = take('fresh', 'fresh2')
    await Promise.resolve()
    expect(served).toEqual(['x0', 'refused x1'])
    for (let i = 0; i < 3; i++) { prio.release(); await Promise.resolve() }
    await Promise.all([...rest, more])
    expect(served.slice(2)).toEqual(['fresh1', 'fresh2', 'y1'])
    // With no waiting room, what cannot run at once is refused.
    const none = new HashGate(1, 0)
    expect(await none.acquire('x')).toBe(true)
    expect(await none.acquire('y')).toBe(false)
  })
})
