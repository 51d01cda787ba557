/**
 * Hostile JavaScript codecs in a running daemon: an endless loop, a memory hog, runaway recursion,
 * a codec probing for Node's objects, one tampering with built-ins between calls, one throwing, one
 * returning values that are not JSON. Each is contained (the uplink is still published, without
 * `decoded`, with `decodeErrors`), coded (a dead letter with its LB_ERR_CODEC_… code), counted
 * (`lorabridge_codec_calls_total` per codec and result, and the rules status), and the uplinks of
 * other devices, interleaved with the hostile ones, keep being decoded exactly by their own decoders
 * (a TS013 codec and a JSONata expression), none lost. The breaker suspends a codec that timed out
 * three times within a minute. And the rule file as the attacker: codec paths leading out of the
 * rules directory (`..`, absolute, symbolic links) are refused without reading the file, and a
 * codec's syntax error is reported at its line and column.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { copyFile, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { observe, until, type MqttClient } from './helpers/mqtt.js'
import { parseExposition } from './helpers/metrics.js'
import { runCli } from './helpers/cli.js'
import { validateMessage } from './helpers/event-schemas.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { compileRuleFile, disposeCodecs } from '../src/rules/compile.js'

const FIXTURES = new URL('./fixtures/codecs/', import.meta.url)
const HOSTILE = new URL('./fixtures/codecs/hostile/', import.meta.url)

/** Device 0 is the good TLV sensor (fPort 85), device 1 the hostile one, device 2 a tank decoded by JSONata (fPort 20). */
const GOOD = 0
const HOSTILE_DEVICE = 1
const TANK = 2
const DEVICES = [generatedDevice(900), generatedDevice(901), generatedDevice(902)]
const eui = (dashed: string): string => dashed.replace(/-/g, '')

/** The hostile codecs, one fPort each. */
const PORTS = { loop: 10, memory: 11, recursion: 12, probe: 13, tamper: 14, throw: 15, nonjson: 16 } as const
type Hostile = keyof typeof PORTS

const RULES = `decoders:
  - name: good-tlv
    when: { app: farm, fPort: 85 }
    codec: codecs/tlv-sensor.js
${Object.entries(PORTS).map(([name, port]) => `  - name: ${name}
    when: { app: farm, fPort: ${port} }
    codec: codecs/${name}.js
`).join('')}  - name: tank
    when: { app: farm, fPort: 20 }
    decode: |
      { "level": $u8(bytes, 0), "battery": $u16be(bytes, 1) / 1000 }
`

/** The receive time the Conduit reports; the TLV codec puts its UTC hour into `decoded`. */
const TIME = new Date('2026-12-01T07:30:00.000Z')

/** A TLV frame (battery, temperature, humidity, CO2) that differs per k, and what the codec must make of it. */
function goodFrame (k: number): { data: Buffer, decoded: Record<string, unknown> } {
  const battery = k % 101
  const t = k % 2 === 0 ? 200 + k : -(50 + k) // 0.1 °C, negative every other frame
  const humidity = (k * 3) % 200 // 0.5 %RH
  const co2 = 400 + 7 * k
  return {
    data: Buffer.from([0x01, 0x75, battery, 0x03, 0x67, t & 0xff, (t >> 8) & 0xff, 0x04, 0x68, humidity, 0x07, 0x7d, co2 & 0xff, co2 >> 8]),
    decoded: { battery, temperature: t / 10, humidity: humidity / 2, co2, receivedHour: TIME.getUTCHours() },
  }
}

/** A tank frame (level, battery in mV, big-endian) and what the JSONata decoder must make of it. */
function tankFrame (k: number): { data: Buffer, decoded: Record<string, unknown> } {
  const level = (k * 5) % 256
  const mv = 3000 + 11 * k
  return { data: Buffer.from([level, mv >> 8, mv & 0xff]), decoded: { level, battery: mv / 1000 } }
}

/** Names a Node (or QuickJS's own `qjs` shell) global scope has and a codec's must not. */
const NODE_GLOBALS = ['process', 'require', 'Buffer', 'global', 'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval',
  'clearImmediate', 'queueMicrotask', 'fetch', 'structuredClone', 'WebAssembly', 'TextEncoder', 'TextDecoder', 'URL', 'URLSearchParams',
  'performance', 'crypto', 'navigator', '__dirname', '__filename', 'std', 'os', 'print', 'scriptArgs', 'XMLHttpRequest', 'WebSocket', 'Deno', 'Bun']

/** ECMAScript's own global names (QuickJS adds InternalError). */
const STANDARD_GLOBALS = new Set(['AggregateError', 'Array', 'ArrayBuffer', 'Atomics', 'BigInt', 'BigInt64Array', 'BigUint64Array', 'Boolean', 'DataView',
  'Date', 'Error', 'EvalError', 'FinalizationRegistry', 'Float16Array', 'Float32Array', 'Float64Array', 'Function', 'Infinity', 'Int16Array',
  'Int32Array', 'Int8Array', 'InternalError', 'Iterator', 'JSON', 'Map', 'Math', 'NaN', 'Number', 'Object', 'Promise', 'Proxy', 'RangeError',
  'ReferenceError', 'Reflect', 'RegExp', 'Set', 'SharedArrayBuffer', 'String', 'Symbol', 'SyntaxError', 'TypeError', 'URIError', 'Uint16Array',
  'Uint32Array', 'Uint8Array', 'Uint8ClampedArray', 'WeakMap', 'WeakRef', 'WeakSet', 'decodeURI', 'decodeURIComponent', 'encodeURI',
  'encodeURIComponent', 'escape', 'eval', 'globalThis', 'isFinite', 'isNaN', 'parseFloat', 'parseInt', 'undefined', 'unescape'])

type Json = Record<string, unknown>
interface Sent { devEui: string, fCnt: number }
interface Expected extends Sent { decoded: Json }

describe('hostile codecs in a running daemon', () => {
  let dir: string
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let sim: ConduitSimulator
  /** Every uplink of the good devices sent, with what it must decode to. */
  const expected: Expected[] = []
  let k = 0

  const upTopic = (devEui: string): string => `lorabridge/farm/devices/${devEui}/up`
  const published = (s: Sent): Json[] =>
    seen.filter(m => m.topic === upTopic(s.devEui)).map(m => JSON.parse(m.payload) as Json).filter(u => u.fCnt === s.fCnt)
  const publishedUp = (s: Sent): Promise<Json> => until(() => published(s)[0], `uplink ${s.devEui} fCnt ${s.fCnt}`)
  const letterFor = (eventId: unknown): Json | undefined => seen.filter(m => m.topic === 'lorabridge/_bridge/rules/errors')
    .map(m => JSON.parse(m.payload) as Json).find(l => l.eventId === eventId)

  const send = async (device: number, port: number, data: Buffer): Promise<Sent> => {
    const msg = await sim.uplink(device, { port, data, time: TIME })
    return { devEui: eui(sim.devices[device]!.devEui), fCnt: msg.fcnt as number }
  }
  const good = async (): Promise<Expected> => {
    const f = goodFrame(k++)
    const e = { ...await send(GOOD, 85, f.data), decoded: f.decoded }
    expected.push(e)
    return e
  }
  const tank = async (): Promise<Expected> => {
    const f = tankFrame(k++)
    const e = { ...await send(TANK, 20, f.data), decoded: f.decoded }
    expected.push(e)
    return e
  }
  /** Published, decoded exactly, nothing else said about it. */
  const decodedExactly = async (e: Expected): Promise<void> => {
    const up = await publishedUp(e)
    expect(up.decoded, `${e.devEui} fCnt ${e.fCnt}`).toEqual(e.decoded)
    expect(up.decodeErrors).toBeUndefined()
    expect(up.decodeWarnings).toBeUndefined()
  }

  /**
   * One hostile uplink with the good devices' uplinks around it (sent back to back, not waiting
   * for each other's publication); returns the hostile uplink as published, and its dead letter.
   */
  const hostile = async (codec: Hostile, bytes: number[]): Promise<{ up: Json, letter: Json | undefined }> => {
    const before = [await good(), await tank()]
    const h = await send(HOSTILE_DEVICE, PORTS[codec], Buffer.from(bytes))
    const after = [await good(), await tank(), await good()]
    for (const e of [...before, ...after]) await decodedExactly(e)
    const up = await publishedUp(h)
    expect(validateMessage(upTopic(h.devEui), up).ok).toBe(true)
    if (up.decodeErrors === undefined) return { up, letter: undefined }
    const letter = await until(() => letterFor(up.id), `dead letter of ${String(up.id)}`)
    expect(validateMessage('lorabridge/_bridge/rules/errors', letter).ok).toBe(true)
    return { up, letter }
  }

  /** Contained and coded: published without decoded, decodeErrors = the dead letter's message, which has the code. */
  const refused = async (codec: Hostile, bytes: number[], code: string): Promise<Json> => {
    const { up, letter } = await hostile(codec, bytes)
    expect(up.decoded).toBeUndefined()
    expect(up).toMatchObject({ app: 'farm', fPort: PORTS[codec], hex: Buffer.from(bytes).toString('hex') })
    expect(letter).toMatchObject({ rule: codec, file: 'hostile.yaml', stage: 'decode', event: 'up', code, app: 'farm', devEui: up.devEui })
    expect(up.decodeErrors).toEqual([letter!.message])
    expect(letter!.message).toMatch(new RegExp(`^codecs/${codec}\\.js`))
    return letter!
  }
  const decodes = async (codec: Hostile, bytes: number[]): Promise<unknown> => {
    const { up } = await hostile(codec, bytes)
    expect(up.decodeErrors).toBeUndefined()
    return up.decoded
  }

  /** lorabridge_codec_calls_total of one codec, by result, from a scrape of /metrics. */
  const calls = async (codec?: string): Promise<Record<string, number>> => {
    const res = await fetch(`http://127.0.0.1:${t.port('http')}/metrics`)
    expect(res.status).toBe(200)
    const out: Record<string, number> = {}
    for (const s of parseExposition(await res.text())) {
      if (s.name !== 'lorabridge_codec_calls_total' || (codec !== undefined && s.labels.codec !== codec)) continue
      expect(s.labels.operation).toBe('decodeUplink')
      out[codec !== undefined ? s.labels.result! : `${s.labels.codec!} ${s.labels.result!}`] = s.value
    }
    return out
  }
  const codecStatus = (name: string): Json | undefined =>
    (t.daemon.rules.status().decoders as Array<{ name: string, codec?: Json }>).find(d => d.name === name)?.codec

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-hostile-'))
    const codecs = join(dir, 'rules', 'codecs')
    await mkdir(codecs, { recursive: true })
    await copyFile(new URL('tlv-sensor.js', FIXTURES), join(codecs, 'tlv-sensor.js'))
    for (const name of Object.keys(PORTS)) await copyFile(new URL(`${name}.js`, HOSTILE), join(codecs, `${name}.js`))
    await writeFile(join(dir, 'rules', 'hostile.yaml'), RULES)
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: [DEVICES[0]!.appEui] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      // A short time limit keeps the endless loops quick. Not 50 ms: a cold engine's first large
      // allocation can take that long, and the memory hog would then end in TIMEOUT, not MEMORY.
      // 20 MiB (the least) is what the memory hog exhausts.
      rules: { dir: './rules', codecs: { timeoutMs: 200, memoryMiB: 20 } },
    }, { dir })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1.1', gwUuid: '00ba5eba-11e5-cdd4-4523-264b523115c1', devices: DEVICES.map(d => ({ ...d })) })
    await sim.start()
  })
  afterAll(async () => {
    await sim?.stop()
    await observer?.endAsync(true)
    await t?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('loads the hostile codecs (their top levels are harmless) next to the good ones', () => {
    const files = t.daemon.rules.status().files as Json[]
    expect(files).toEqual([{ file: 'hostile.yaml', ok: true, loadedAt: expect.any(String) as unknown, rules: [], decoders: ['good-tlv', ...Object.keys(PORTS), 'tank'] }])
  })

  it('an endless loop: LB_ERR_CODEC_TIMEOUT, the uplink still published; the restarted engine decodes the next frame', async () => {
    expect(await decodes('loop', [1])).toEqual({ first: 1 })
    const letter = await refused('loop', [0], 'LB_ERR_CODEC_TIMEOUT')
    expect(letter.message).toBe('codecs/loop.js: ran past its time limit (an endless loop?)')
    expect(await decodes('loop', [5])).toEqual({ first: 5 })
    expect(await calls('codecs/loop.js')).toEqual({ ok: 2, LB_ERR_CODEC_TIMEOUT: 1 })
  })

  it('the breaker: the third timeout within a minute suspends the codec (LB_ERR_CODEC_SUSPENDED), without running it', async () => {
    await refused('loop', [0], 'LB_ERR_CODEC_TIMEOUT')
    await refused('loop', [0], 'LB_ERR_CODEC_TIMEOUT')
    const suspended = await refused('loop', [0], 'LB_ERR_CODEC_SUSPENDED')
    expect(suspended.message).toMatch(/^codecs\/loop\.js is suspended until \d{4}-\d\d-\d\dT[\d:.]+Z after 3 limit failures within 60 s$/)
    // A harmless frame is not decoded either while the codec is suspended.
    await refused('loop', [1], 'LB_ERR_CODEC_SUSPENDED')
    expect(await calls('codecs/loop.js')).toEqual({ ok: 2, LB_ERR_CODEC_TIMEOUT: 3, LB_ERR_CODEC_SUSPENDED: 2 })
    expect(codecStatus('loop')).toMatchObject({ calls: 7, ok: 2, failed: 5, failures: { LB_ERR_CODEC_TIMEOUT: 3, LB_ERR_CODEC_SUSPENDED: 2 }, restarts: 3 })
  })

  it('growing arrays until the memory runs out: LB_ERR_CODEC_MEMORY; the next call gets a fresh engine with none of it', async () => {
    const letter = await refused('memory', [0], 'LB_ERR_CODEC_MEMORY')
    expect(letter.message).toBe('codecs/memory.js: ran out of memory (the codec memory limit)')
    // `kept` is the codec's own global array the runaway call filled: a rebuilt engine starts it empty.
    expect(await decodes('memory', [1])).toEqual({ kept: 0 })
    expect(await calls('codecs/memory.js')).toEqual({ ok: 1, LB_ERR_CODEC_MEMORY: 1 })
    expect(codecStatus('memory')).toMatchObject({ calls: 2, ok: 1, failed: 1, restarts: 1 })
  })

  it('runaway recursion: LB_ERR_CODEC_STACK, and the daemon\'s own stack is untouched', async () => {
    expect(await decodes('recursion', [0, 16])).toEqual({ depth: 16 })
    const letter = await refused('recursion', [0xff, 0xff], 'LB_ERR_CODEC_STACK')
    expect(letter.message).toBe('codecs/recursion.js: stack overflow (recursion deeper than about 300 calls)')
    expect(await decodes('recursion', [0, 3])).toEqual({ depth: 3 })
    expect(await calls('codecs/recursion.js')).toEqual({ ok: 2, LB_ERR_CODEC_STACK: 1 })
    expect(codecStatus('recursion')).toMatchObject({ calls: 3, ok: 2, failed: 1, restarts: 1 })
  })

  it('finds none of Node\'s objects: no require, process, Buffer, timers, fetch; import() loads nothing', async () => {
    for (const first of [1, 2]) {
      const d = await decodes('probe', [first]) as { typeofs: Json, escapes: Json, imported: string | null, globals: string[] }
      expect(d.typeofs).toEqual({
        require: 'undefined', process: 'undefined', Buffer: 'undefined', setTimeout: 'undefined', setImmediate: 'undefined',
        queueMicrotask: 'undefined', fetch: 'undefined', WebAssembly: 'undefined', std: 'undefined', os: 'undefined',
        moduleRequire: 'undefined', globalProcess: 'undefined', sloppyThisProcess: 'undefined', sloppyThisIsGlobal: true,
      })
      // Reaching the global scope another way gives the same empty one.
      expect(d.escapes).toEqual({ evalRequire: 'threw ReferenceError', functionProcess: 'threw ReferenceError', constructorProcess: 'threw ReferenceError', importMeta: 'threw SyntaxError' })
      // The import() of the first call never gave a module (it is never settled, or refused).
      expect(d.imported === null || /^refused /.test(d.imported)).toBe(true)
      expect(d.globals.filter(n => NODE_GLOBALS.includes(n))).toEqual([])
      // Every global is ECMAScript's, the glue's (console, module, exports, __lb) or the codec's own.
      expect(d.globals.filter(n => !STANDARD_GLOBALS.has(n))).toEqual(['__lb', 'attempt', 'console', 'decodeUplink', 'exports', 'imported', 'module'])
    }
    expect(await calls('codecs/probe.js')).toEqual({ ok: 2 })
  })

  it('tampering with built-ins in one call (Array.prototype.map, Object.prototype, JSON…) changes nothing the next call sees', async () => {
    const originals = { map: [10, 20, 30], mapIsNative: true, polluted: false, arrayPolluted: false, json: '{"a":[1,"b"]}', parsed: 1, toJSON: 'undefined', keys: 'k', push: 'function' }
    expect(await decodes('tamper', [1])).toEqual({ call: 1, tampered: true, before: originals })
    // The same engine (its own global counter went on), and the built-ins are the originals.
    expect(await decodes('tamper', [2])).toEqual({ call: 2, tampered: false, before: originals })
    expect(await calls('codecs/tamper.js')).toEqual({ ok: 2 })
    expect(codecStatus('tamper')).toMatchObject({ calls: 2, ok: 2, failed: 0, restarts: 0 })
  })

  it('a throwing codec: LB_ERR_CODEC_THROWN with its message and the line:column in the codec file', async () => {
    const letter = await refused('throw', [2], 'LB_ERR_CODEC_THROWN')
    const m = /^codecs\/throw\.js: RangeError: unexpected frame kind 2 from the field at codecs\/throw\.js:(\d+):(\d+)$/.exec(letter.message as string)
    expect(m, letter.message as string).not.toBeNull()
    // Line 5 of throw.js is `    throw new RangeError(…)`: the column is within that statement.
    expect(Number(m![1])).toBe(5)
    expect(Number(m![2])).toBeGreaterThanOrEqual(5)
    expect(Number(m![2])).toBeLessThanOrEqual('    throw new RangeError('.length)
    const bare = await refused('throw', [3], 'LB_ERR_CODEC_THROWN')
    expect(bare.message).toBe('codecs/throw.js: threw "a bare string, no stack"')
    expect(await decodes('throw', [1])).toEqual({ kind: 1 })
    expect(await calls('codecs/throw.js')).toEqual({ ok: 1, LB_ERR_CODEC_THROWN: 2 })
    expect(codecStatus('throw')).toMatchObject({ restarts: 0 })
  })

  it('results that are not JSON (a function, NaN, a BigInt, a cycle): LB_ERR_CODEC_RESULT, saying where', async () => {
    const cases: Array<[number, string]> = [
      [1, 'codecs/nonjson.js: data.callback is a function'],
      [2, 'codecs/nonjson.js: data.ratio is NaN'],
      [3, 'codecs/nonjson.js: data.big is a BigInt'],
      [4, 'codecs/nonjson.js: data.child.parent refers to itself (a cycle)'],
    ]
    for (const [first, message] of cases) expect((await refused('nonjson', [first], 'LB_ERR_CODEC_RESULT')).message).toBe(message)
    expect(await decodes('nonjson', [9])).toEqual({ ok: 9 })
    expect(await calls('codecs/nonjson.js')).toEqual({ ok: 1, LB_ERR_CODEC_RESULT: 4 })
  })

  it('counts every call per codec and result in lorabridge_codec_calls_total, and in the rules status', async () => {
    const goodUplinks = expected.filter(e => e.devEui === eui(DEVICES[GOOD]!.devEui)).length
    expect(await calls()).toEqual({
      [`codecs/tlv-sensor.js ok`]: goodUplinks,
      'codecs/loop.js ok': 2,
      'codecs/loop.js LB_ERR_CODEC_TIMEOUT': 3,
      'codecs/loop.js LB_ERR_CODEC_SUSPENDED': 2,
      'codecs/memory.js ok': 1,
      'codecs/memory.js LB_ERR_CODEC_MEMORY': 1,
      'codecs/recursion.js ok': 2,
      'codecs/recursion.js LB_ERR_CODEC_STACK': 1,
      'codecs/probe.js ok': 2,
      'codecs/tamper.js ok': 2,
      'codecs/throw.js ok': 1,
      'codecs/throw.js LB_ERR_CODEC_THROWN': 2,
      'codecs/nonjson.js ok': 1,
      'codecs/nonjson.js LB_ERR_CODEC_RESULT': 4,
    })
    expect(codecStatus('good-tlv')).toEqual({ path: 'codecs/tlv-sensor.js', forms: ['ts013'], encodes: true, calls: goodUplinks, ok: goodUplinks, failed: 0, failures: {}, restarts: 0 })
    // The JSONata decoder is no codec.
    expect(codecStatus('tank')).toBeUndefined()
    expect(await t.counter('ruleDeadLetters', { stage: 'decode' })).toBe(3 + 2 + 1 + 1 + 2 + 4)
  })

  it('lost none of the other devices\' uplinks: each published once, decoded exactly by its own decoder', async () => {
    // 24 hostile uplinks, each with five of theirs around it.
    expect(expected).toHaveLength(24 * 5)
    for (const e of expected) {
      await decodedExactly(e)
      expect(published(e)).toHaveLength(1)
    }
    // Nothing else was published for them (no uplink without its fCnt among those sent).
    for (const device of [GOOD, TANK]) {
      const devEui = eui(DEVICES[device]!.devEui)
      expect(seen.filter(m => m.topic === upTopic(devEui))).toHaveLength(expected.filter(e => e.devEui === devEui).length)
    }
    // No dead letter names them.
    const letters = seen.filter(m => m.topic === 'lorabridge/_bridge/rules/errors').map(m => JSON.parse(m.payload) as Json)
    expect(letters.filter(l => l.devEui !== eui(DEVICES[HOSTILE_DEVICE]!.devEui))).toEqual([])
  })
})

describe('a rule file naming codecs outside the rules directory', () => {
  /** What the file outside holds: if it were ever evaluated, its ReferenceError would quote this. */
  const CANARY = 'SECRET_CANARY_7F3A9C'
  let base: string
  let rules: string

  /** One rule file per attempt, each with a single decoder; line 3, column 12 is where its codec path starts. */
  const ATTEMPTS: Record<string, string> = {
    dotdot: '../outside.js',
    normalized: 'codecs/../../outside.js',
    absolute: '', // set in beforeAll (the temporary directory's path)
    'file-link': 'codecs/link.js',
    'dir-link': 'elsewhere/outside.js',
  }
  const ruleFile = (codec: string): string => `decoders:\n  - name: attempt\n    codec: ${codec}\n`

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lorabridge-codec-paths-'))
    rules = join(base, 'rules')
    await mkdir(join(rules, 'codecs'), { recursive: true })
    await writeFile(join(base, 'outside.js'), `${CANARY}\n`)
    ATTEMPTS.absolute = join(base, 'outside.js')
    await symlink(join(base, 'outside.js'), join(rules, 'codecs', 'link.js'))
    await symlink(base, join(rules, 'elsewhere'), 'dir')
    for (const [name, codec] of Object.entries(ATTEMPTS)) await writeFile(join(rules, `${name}.yaml`), ruleFile(codec))
    // The same content inside the directory is read: the canary shows in its load error (what the refusals keep out).
    await writeFile(join(rules, 'codecs', 'inside.js'), `${CANARY}\n`)
    await writeFile(join(rules, 'inside.yaml'), ruleFile('codecs/inside.js'))
    await copyFile(new URL('syntax-error.js', HOSTILE), join(rules, 'codecs', 'syntax-error.js'))
    await writeFile(join(rules, 'syntax.yaml'), ruleFile('codecs/syntax-error.js'))
    await copyFile(new URL('tlv-sensor.js', FIXTURES), join(rules, 'codecs', 'tlv-sensor.js'))
    await writeFile(join(rules, 'good.yaml'), ruleFile('codecs/tlv-sensor.js'))
  })
  afterAll(async () => {
    if (base !== undefined) await rm(base, { recursive: true, force: true })
  })

  const refusal = (name: string, codec: string): string => ({
    dotdot: `codec "${codec}" is outside the rules directory`,
    normalized: `codec "${codec}" is outside the rules directory`,
    absolute: `codec "${codec}": give a path relative to the rules directory`,
    'file-link': `codec "${codec}" links outside the rules directory`,
    'dir-link': `codec "${codec}" links outside the rules directory`,
  } as Record<string, string>)[name]!

  it('refuses .., absolute paths and symbolic links leading out with LB_ERR_CODEC_LOAD, never reading the file', async () => {
    for (const [name, codec] of Object.entries(ATTEMPTS)) {
      const r = await compileRuleFile(join(rules, `${name}.yaml`))
      expect(r.ok, name).toBe(false)
      if (r.ok) continue
      expect(r.errors, name).toEqual([{ file: `${name}.yaml`, path: 'decoders[0].codec', line: 3, column: 12, code: 'LB_ERR_CODEC_LOAD', message: refusal(name, codec) }])
    }
    const inside = await compileRuleFile(join(rules, 'inside.yaml'))
    expect(inside.ok).toBe(false)
    expect(!inside.ok && inside.errors[0]).toMatchObject({ code: 'LB_ERR_CODEC_LOAD', message: `ReferenceError: '${CANARY}' is not defined at codecs/inside.js:1:1` })
    const good = await compileRuleFile(join(rules, 'good.yaml'))
    expect(good.ok).toBe(true)
    if (good.ok) disposeCodecs(good.compiled)
  })

  it('reports a codec\'s syntax error at its line:column in the codec file', async () => {
    const r = await compileRuleFile(join(rules, 'syntax.yaml'))
    expect(!r.ok && r.errors).toEqual([{ file: 'syntax.yaml', path: 'decoders[0].codec', line: 3, column: 12, code: 'LB_ERR_CODEC_LOAD', message: 'SyntaxError: expecting \'}\' at codecs/syntax-error.js:5:3' }])
  })

  it('`lorabridge rules check DIR` prints each refusal at its place in the rule file, and fails', async () => {
    const r = await runCli(['rules', 'check', rules], { cwd: base })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${rules}: 1 file ok, 0 rules, 1 decoder; 7 errors`)
    const lines = r.stderr.trim().split('\n').sort()
    const want = [
      ...Object.entries(ATTEMPTS).map(([name, codec]) => `${name}.yaml:3:12: decoders[0].codec: ${refusal(name, codec)}`),
      `inside.yaml:3:12: decoders[0].codec: ReferenceError: '${CANARY}' is not defined at codecs/inside.js:1:1`,
      'syntax.yaml:3:12: decoders[0].codec: SyntaxError: expecting \'}\' at codecs/syntax-error.js:5:3',
    ].sort()
    expect(lines).toEqual(want)
    // The file outside was never evaluated: its content shows only where the same file lies inside.
    expect(lines.filter(l => l.includes(CANARY))).toEqual([want.find(l => l.startsWith('inside.yaml'))])
  })
})
