/**
 * The codec sandbox itself (src/codecs): what the daemon relies on when a codec misbehaves in ways
 * that are not one bad call — concurrent callers around an engine restart, promise jobs piling up,
 * one long native operation, results that change between the check and the serialization, errors
 * that pretend to be limits, and positions in files whose names have spaces.
 */
import { describe, it, expect } from 'vitest'
import { Codec } from '../src/codecs/codec.js'

const LIMITS = { timeoutMs: 100, memoryBytes: 20 * 1024 * 1024 }
const at = new Date('2026-12-01T10:00:00.000Z')

/** Calls as the rules engine does: wait for a restarting engine (as long as it takes), then call. */
async function decode (c: Codec, bytes: number[]): Promise<ReturnType<Codec['decodeUplink']>> {
  for (let r = c.ready(); r !== undefined; r = c.ready()) await r
  return c.decodeUplink(bytes, 1, at)
}

describe('codec sandbox', () => {
  it('lets callers waiting on a restart through one by one: a second runaway call restarts it again, and the good payloads are decoded', async () => {
    const c = await Codec.fromSource('race.js', 'function decodeUplink (i) { if (i.bytes[0] === 0xff) while (true) {} return { data: { v: i.bytes[0] } } }', LIMITS)
    const first = c.decodeUplink([0xff], 1, at)
    expect(first).toMatchObject({ ok: false, code: 'LB_ERR_CODEC_TIMEOUT' })
    // Four uplinks arrive while the engine is being rebuilt.
    const results = await Promise.all([[0xff], [1], [2], [3]].map(b => decode(c, b)))
    expect(results.map(r => r.ok ? r.value : r.code)).toEqual(['LB_ERR_CODEC_TIMEOUT', { v: 1 }, { v: 2 }, { v: 3 }])
    // Two real timeouts: not yet suspended, and no CRASHED counted.
    expect(c.counters.byCode).toEqual({ LB_ERR_CODEC_TIMEOUT: 2 })
    expect((await decode(c, [4])).ok).toBe(true)
    c.dispose()
  })

  it('runs the promise jobs a call queues, so that they do not pile up until memory runs out', async () => {
    const c = await Codec.fromSource('promises.js', 'var done = 0; function decodeUplink (i) { Promise.resolve(i.bytes).then(function (b) { done++ }); return { data: { done: done } } }', LIMITS)
    let last: unknown
    for (let i = 0; i < 30_000; i++) {
      const r = c.decodeUplink([i & 0xff], 1, at)
      if (!r.ok) throw new Error(`call ${i}: ${r.code} ${r.message}`)
      last = r.value
    }
    // Each call sees the jobs of the calls before it done.
    expect(last).toEqual({ done: 29_999 })
    c.dispose()
  })

  it('counts one long native operation that returns past the deadline as a timeout, and restarts the engine', async () => {
    const c = await Codec.fromSource('long.js', 'function decodeUplink () { var s = "ab".repeat(1 << 24).toUpperCase(); return { data: { n: s.length } } }', { timeoutMs: 1, memoryBytes: 200 * 1024 * 1024 })
    const r = c.decodeUplink([1], 1, at)
    // repeat and toUpperCase run in native code: no interrupt check fires inside them.
    expect(r).toMatchObject({ ok: false, code: 'LB_ERR_CODEC_TIMEOUT', message: expect.stringContaining('one long operation') as unknown })
    expect(c.ready()).toBeInstanceOf(Promise)
    c.dispose()
  })

  it('serializes a copy of what it checked: getters, toJSON and Proxies cannot slip anything else into decoded', async () => {
    const cases: Record<string, string> = {
      // A getter that answers 1 to the check and a BigInt after.
      getter: 'var n = 0; function decodeUplink () { return { data: { get x () { return n++ === 0 ? 1 : 10n } } } }',
      // A Date whose toJSON gives a function: JSON.stringify would drop the key silently.
      dateToJson: 'function decodeUplink () { var d = new Date(0); d.toJSON = function () { return function () {} }; return { data: { at: d } } }',
      // A Proxy whose get trap invents toJSON.
      proxy: 'function decodeUplink () { return { data: new Proxy({ a: 1 }, { get: function (t, k) { return k === "toJSON" ? function () { return { sneaky: true } } : t[k] } }) } }',
      fakeDate: 'function decodeUplink () { return { data: { at: Object.create(Date.prototype) } } }',
    }
    const out: Record<string, unknown> = {}
    for (const [name, source] of Object.entries(cases)) {
      const c = await Codec.fromSource(`${name}.js`, source, LIMITS)
      const r = c.decodeUplink([1], 1, at)
      out[name] = r.ok ? r.value : `${r.code}: ${r.message}`
      c.dispose()
    }
    expect(out).toEqual({
      getter: { x: 1 },
      dateToJson: { at: '1970-01-01T00:00:00.000Z' },
      proxy: { a: 1 },
      fakeDate: 'LB_ERR_CODEC_RESULT: fakeDate.js: data.at is not a valid Date',
    })
  })

  it('does not take a thrown look-alike for a limit: it is the codec\'s exception, and the engine is kept', async () => {
    const c = await Codec.fromSource('liar.js', 'function decodeUplink () { throw { name: "InternalError", message: "interrupted" } }', LIMITS)
    const r = c.decodeUplink([1], 1, at)
    expect(r).toMatchObject({ ok: false, code: 'LB_ERR_CODEC_THROWN' })
    expect(c.ready()).toBeUndefined()
    c.dispose()
  })

  it('keeps what a failing call printed with its failure, and not for the next call', async () => {
    const c = await Codec.fromSource('logs.js', 'function decodeUplink (i) { console.log("call", i.bytes[0]); if (i.bytes[0] === 1) throw new Error("b"); return { data: {} } }', LIMITS)
    expect(c.decodeUplink([1], 1, at).logs).toEqual(['log: call 1'])
    expect(c.decodeUplink([2], 1, at).logs).toEqual(['log: call 2'])
    c.dispose()
  })

  it('finds the line and column in a codec whose path has spaces and parentheses', async () => {
    const c = await Codec.fromSource('vendor codecs (v2)/x.js', 'function decodeUplink () {\n  throw new Error("boom")\n}', LIMITS)
    const r = c.decodeUplink([1], 1, at)
    expect(r).toMatchObject({ ok: false, code: 'LB_ERR_CODEC_THROWN' })
    expect(r.ok ? '' : r.message).toMatch(/Error: boom at vendor codecs \(v2\)\/x\.js:2:\d+$/)
    c.dispose()
  })
})
