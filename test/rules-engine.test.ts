/**
 * The engine's memory of the downlinks its rules produced (for chain depths): it expires with time,
 * stays bounded under sustained load, and costs the same per event however much it holds.
 */
import { describe, it, expect } from 'vitest'
import { RulesEngine } from '../src/rules/engine.js'
import { compileRuleText } from '../src/rules/compile.js'

const RULES = `rules:
  - name: echo
    on: [up, down/queued]
    downlink: '{ "fPort": 3, "hex": "01" }'
`

function engine (clock: { t: number }, producedMax?: number): RulesEngine {
  const e = new RulesEngine({
    topicRoot: 'lorabridge',
    budget: { timeoutMs: 1000, maxDepth: 100 },
    maxChainDepth: 2,
    sink: { downlink: async () => undefined, publish: async () => undefined, deadLetter: async () => undefined },
    now: () => clock.t,
    ...(producedMax !== undefined ? { producedMax } : {}),
  })
  const compiled = compileRuleText('echo.yaml', RULES)
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors))
  e.setFile(compiled.compiled)
  return e
}

const uplink = (n: number): Record<string, unknown> => ({ id: `up-${n}`, app: 'app', devEui: '0018b20000000001', fPort: 2, hex: '01', network: { type: 'multitech' } })

describe('rules engine: produced downlinks', () => {
  it('gives the outcome of a produced downlink the next chain depth, for an hour', async () => {
    const clock = { t: 1_000_000 }
    const e = engine(clock)
    const r = await e.evaluate('up', uplink(1))
    const id = r.results[0]!.downlinks[0]!.id as string
    expect(e.depthOf('down/queued', { id })).toBe(1)
    clock.t += 3_599_000
    expect(e.depthOf('down/queued', { id })).toBe(1)
    clock.t += 2_000
    expect(e.depthOf('down/queued', { id })).toBe(0)
  })

  it('forgets the oldest first once it holds producedMax, and stops the chain at maxChainDepth meanwhile', async () => {
    const clock = { t: 1_000_000 }
    const e = engine(clock, 50)
    const first = (await e.evaluate('up', uplink(0))).results[0]!.downlinks[0]!.id as string
    const ids: string[] = []
    for (let n = 1; n <= 60; n++) ids.push((await e.evaluate('up', uplink(n))).results[0]!.downlinks[0]!.id as string)
    expect(e.depthOf('down/queued', { id: first })).toBe(0)
    expect(ids.slice(-50).every(id => e.depthOf('down/queued', { id }) === 1)).toBe(true)
    expect(e.depthOf('down/queued', { id: ids[9]! })).toBe(0)
    // A chain: up → downlink (depth 1) → its outcome's rule → downlink (depth 2) → … stops past 2.
    const d1 = ids.at(-1)!
    const r2 = await e.evaluate('down/queued', { id: d1, app: 'app', devEui: '0018b20000000001' })
    const d2 = r2.results[0]!.downlinks[0]!.id as string
    expect(e.depthOf('down/queued', { id: d2 })).toBe(2)
    const r3 = await e.evaluate('down/queued', { id: d2, app: 'app', devEui: '0018b20000000001' })
    const d3 = r3.results[0]!.downlinks[0]!.id as string
    expect(e.depthOf('down/queued', { id: d3 })).toBe(3)
    const r4 = await e.evaluate('down/queued', { id: d3, app: 'app', devEui: '0018b20000000001' })
    expect(r4.results).toEqual([])
  })
})
