// Proof that the pinned Redis stack works together:
//   aedes 1.2.0 + aedes-persistence-redis 11.2.2 + mqemitter-redis 7.2.1 + ioredis 5
// See docs/dependencies.md for why these versions.
//
//   A: dependency graph facts (peer ranges, single mqemitter major, single ioredis copy)
//   B: the aedes-persistence 10.x abstract suite against aedes-persistence-redis on a
//      real redis-server (test/compat/persistence-abstract.cjs)
//   C: a persistent (clean:false) session survives an aedes broker restart on Redis

import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Aedes } from 'aedes'
import { Redis } from 'ioredis'
import mqemitterRedis from 'mqemitter-redis'
import mqtt, { type MqttClient } from 'mqtt'
import { startRedis, type RedisServer } from './helpers/redis-server.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const NM = join(ROOT, 'node_modules')

// aedes-persistence-redis is CommonJS without type declarations; load it via
// require and give it the minimal shape we use.
interface RedisPersistence {
  // Called without a callback: aedes 1.x initialises the persistence with
  // `await setup(broker)`, which never sets the callback wrapper's `ready`
  // flag, and `destroy(cb)` would wait for a 'ready' event that never comes.
  destroy(): Promise<void>
}
type RedisPersistenceFactory = (opts: { conn: Redis }) => RedisPersistence
const require = createRequire(import.meta.url)
const redisPersistence = require('aedes-persistence-redis') as RedisPersistenceFactory

// ---------------------------------------------------------------------------
// helpers

interface Pkg {
  name: string
  version: string
  dependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

function readPkg(path: string): Pkg {
  return JSON.parse(readFileSync(path, 'utf8')) as Pkg
}

type Triple = [number, number, number]

function parseVersion(v: string): Triple {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v.trim())
  if (!m) throw new Error(`not a plain MAJOR.MINOR.PATCH version: ${v}`)
  return [Number(m[1]), Number(m[2]), Number(m[3])]
}

function cmp(a: Triple, b: Triple): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
}

/**
 * Tiny range check for the two forms used here: "^MAJOR.MINOR.PATCH" (npm caret
 * semantics, incl. the 0.x special cases) and an exact "MAJOR.MINOR.PATCH" pin.
 */
function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version)
  const r = range.trim()
  if (!r.startsWith('^')) return cmp(v, parseVersion(r)) === 0
  const base = parseVersion(r.slice(1))
  if (cmp(v, base) < 0) return false
  if (base[0] > 0) return v[0] === base[0]
  if (base[1] > 0) return v[0] === 0 && v[1] === base[1]
  return v[0] === 0 && v[1] === 0 && v[2] === base[2]
}

function rangeMajor(range: string): number {
  return parseVersion(range.trim().replace(/^\^/, ''))[0]
}

/** Every node_modules/<pkg>/node_modules/<name> (incl. scoped <pkg>) that exists. */
function nestedCopies(name: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(NM)) {
    const dirs = entry.startsWith('@')
      ? readdirSync(join(NM, entry)).map((s) => join(NM, entry, s))
      : [join(NM, entry)]
    for (const d of dirs) {
      const p = join(d, 'node_modules', name, 'package.json')
      if (existsSync(p)) found.push(p)
    }
  }
  return found
}

function listen(server: Server): Promise<number> {
  return new Promise((res, rej) => {
    server.once('error', rej)
    server.listen(0, '127.0.0.1', () => res((server.address() as AddressInfo).port))
  })
}

function closeServer(server: Server): Promise<void> {
  return new Promise((res) => server.close(() => res()))
}

// ---------------------------------------------------------------------------

describe('aedes + aedes-persistence-redis compatibility', () => {
  it('A: installed versions satisfy the declared ranges (peer, mqemitter, ioredis)', () => {
    const ours = readPkg(join(ROOT, 'package.json'))
    const aedes = readPkg(join(NM, 'aedes', 'package.json'))
    const apr = readPkg(join(NM, 'aedes-persistence-redis', 'package.json'))
    const mqr = readPkg(join(NM, 'mqemitter-redis', 'package.json'))
    const mqemitter = readPkg(join(NM, 'mqemitter', 'package.json'))
    const ioredis = readPkg(join(NM, 'ioredis', 'package.json'))

    // sanity of the tiny range check itself
    expect(satisfies('11.2.2', '^11.2.1')).toBe(true)
    expect(satisfies('12.0.0', '^11.2.1')).toBe(false)
    expect(satisfies('11.2.0', '^11.2.1')).toBe(false)
    expect(satisfies('0.2.5', '^0.2.1')).toBe(true)
    expect(satisfies('0.3.0', '^0.2.1')).toBe(false)
    expect(satisfies('5.11.1', '5.11.1')).toBe(true)

    // aedes' optional peer range for the Redis persistence accepts what we installed
    const peer = aedes.peerDependencies?.['aedes-persistence-redis']
    expect(peer, 'aedes declares a peer range for aedes-persistence-redis').toBeTypeOf('string')
    expect(satisfies(apr.version, peer!),
      `aedes-persistence-redis@${apr.version} vs aedes peer ${peer}`).toBe(true)
    expect(ours.dependencies?.['aedes-persistence-redis']).toBe(apr.version)

    // one mqemitter major shared by aedes and mqemitter-redis
    const aedesMq = aedes.dependencies?.['mqemitter']
    const mqrMq = mqr.dependencies?.['mqemitter']
    expect(aedesMq).toBeTypeOf('string')
    expect(mqrMq).toBeTypeOf('string')
    const mqMajor = parseVersion(mqemitter.version)[0]
    expect(rangeMajor(aedesMq!)).toBe(mqMajor)
    expect(rangeMajor(mqrMq!)).toBe(mqMajor)
    expect(satisfies(mqemitter.version, aedesMq!)).toBe(true)
    expect(satisfies(mqemitter.version, mqrMq!)).toBe(true)
    expect(nestedCopies('mqemitter'), 'no nested mqemitter copies').toEqual([])

    // exactly one ioredis, satisfying every dependent (including us)
    const ioRanges: Record<string, string | undefined> = {
      [ours.name]: ours.dependencies?.['ioredis'],
      'aedes-persistence-redis': apr.dependencies?.['ioredis'],
      'mqemitter-redis': mqr.dependencies?.['ioredis']
    }
    for (const [who, range] of Object.entries(ioRanges)) {
      expect(range, `${who} depends on ioredis`).toBeTypeOf('string')
      expect(satisfies(ioredis.version, range!),
        `ioredis@${ioredis.version} vs ${who} ${range}`).toBe(true)
    }
    expect(nestedCopies('ioredis'), 'no nested ioredis copies').toEqual([])
  })

  describe('with a throwaway redis-server', () => {
    let redis: RedisServer | undefined
    afterEach(async () => {
      await redis?.stop()
      redis = undefined
    })

    it('B: aedes-persistence 10.x abstract suite passes against aedes-persistence-redis', async () => {
      redis = await startRedis()
      const script = join(ROOT, 'test', 'compat', 'persistence-abstract.cjs')
      const abstractFile = join(NM, 'aedes-persistence', 'abstract.js')
      // 10.x abstract suite tests + the runner's own "external Redis conn" test
      const expectedTests =
        (readFileSync(abstractFile, 'utf8').match(/^ {2}test\(/gm) ?? []).length + 1

      const { code, out } = await new Promise<{ code: number | null, out: string }>((res, rej) => {
        const child = spawn(process.execPath,
          ['--test', '--test-concurrency=1', '--test-reporter=tap', script],
          {
            cwd: ROOT,
            env: { ...process.env, REDIS_URL: redis!.url, NODE_OPTIONS: '' },
            stdio: ['ignore', 'pipe', 'pipe']
          })
        let out = ''
        child.stdout.on('data', (d: Buffer) => { out += d.toString('utf8') })
        child.stderr.on('data', (d: Buffer) => { out += d.toString('utf8') })
        const timer = setTimeout(() => child.kill('SIGKILL'), 170_000)
        child.once('error', rej)
        child.once('close', (code) => { clearTimeout(timer); res({ code, out }) })
      })

      const num = (key: string): number => {
        const m = new RegExp(`^# ${key} (\\d+)$`, 'm').exec(out)
        if (!m) throw new Error(`no "# ${key} N" summary line in output:\n${out.slice(-4000)}`)
        return Number(m[1])
      }
      const tail = out.slice(-4000)
      expect(code, tail).toBe(0)
      expect(num('fail'), tail).toBe(0)
      expect(num('cancelled'), tail).toBe(0)
      expect(num('pass'), tail).toBe(num('tests'))
      expect(expectedTests).toBeGreaterThanOrEqual(45)
      expect(num('pass'), tail).toBe(expectedTests)
      expect(out).toMatch(/# abstract suite: aedes-persistence@10\./)
    }, 180_000)

    it('C: a clean:false session survives an aedes broker restart on Redis', async () => {
      redis = await startRedis()
      const url = redis.url
      const clientId = 'lorawan/ff-ff-ff-ff-ff-ff-ff-ff/029998e0-6156-cdd4-4523-264b523115c1'

      interface Running { broker: Aedes, server: Server, port: number, conn: Redis, persistence: RedisPersistence }
      const running: Running[] = []
      const clients: MqttClient[] = []

      const startBroker = async (): Promise<Running> => {
        const conn = new Redis(url)
        const persistence = redisPersistence({ conn })
        // mqemitter-redis subscribes at once; ioredis's ready check (INFO) on that connection would
        // then fail in subscriber mode and be thrown from a timer (as src/broker/store.ts avoids too).
        const mq = mqemitterRedis({ pubConn: new Redis(url) as never, subConn: new Redis(url, { enableReadyCheck: false }) as never })
        const broker = await Aedes.createBroker({ persistence, mq })
        const server = createServer((socket) => broker.handle(socket))
        const port = await listen(server)
        const r = { broker, server, port, conn, persistence }
        running.push(r)
        return r
      }
      const stopBroker = async (r: Running): Promise<void> => {
        const i = running.indexOf(r)
        if (i >= 0) running.splice(i, 1)
        await new Promise<void>((res) => r.broker.close(() => res())) // also closes mq
        await closeServer(r.server)
        await r.persistence.destroy()
        if (r.conn.status !== 'end') await r.conn.quit().catch(() => undefined)
      }

      try {
        const b1 = await startBroker()
        const opts = { clientId, clean: false, reconnectPeriod: 0 } as const

        const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${b1.port}`, opts)
        clients.push(sub)
        const granted = await sub.subscribeAsync('x/y', { qos: 1 })
        expect(granted[0]?.qos).toBe(1)
        await sub.endAsync()

        const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${b1.port}`, { reconnectPeriod: 0 })
        clients.push(pub)
        await pub.publishAsync('x/y', 'kept across restart', { qos: 1 })
        await pub.endAsync()

        await stopBroker(b1)

        const b2 = await startBroker()
        expect(b2.port).not.toBe(b1.port)

        // mqtt.connect (not connectAsync) so the 'message' listener is in place
        // before the broker replays the queued message right after CONNACK.
        const again = mqtt.connect(`mqtt://127.0.0.1:${b2.port}`, opts)
        clients.push(again)
        const received = new Promise<{ topic: string, payload: string, qos: number }>((res) => {
          again.once('message', (topic, payload, packet) =>
            res({ topic, payload: payload.toString('utf8'), qos: packet.qos }))
        })
        const connack = await new Promise<{ sessionPresent: boolean }>((res, rej) => {
          again.once('connect', (p) => res(p))
          again.once('error', rej)
        })
        expect(connack.sessionPresent).toBe(true)

        let timer: NodeJS.Timeout | undefined
        const msg = await Promise.race([
          received,
          new Promise<never>((_, rej) => {
            timer = setTimeout(() => rej(new Error('queued message not delivered after restart')), 10_000)
          })
        ]).finally(() => clearTimeout(timer))
        expect(msg).toEqual({ topic: 'x/y', payload: 'kept across restart', qos: 1 })
      } finally {
        for (const c of clients) await c.endAsync(true).catch(() => undefined)
        for (const r of [...running]) await stopBroker(r)
      }
    }, 60_000)
  })
})
