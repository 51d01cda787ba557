/**
 * Rule expressions: every expression of the shipped example rules and decoders (rules/), evaluated
 * on a matching uplink as the daemon evaluates them (Expression.evaluate: the compiled code,
 * awaited), against the reference JSONata evaluator on the same input, in the bench process.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { Expression } from '../../src/rules/expression.js'
import { expressionInput } from '../../src/rules/engine.js'
import { round } from '../lib/stats.js'

export interface RuleExpressionResult { file: string, where: string, engine: string, referencePerSec: number, compiledPerSec: number, ratio: number }

const BUDGET = { timeoutMs: 50, maxDepth: 500 }

/** Evaluations per second of `f` over about `ms` milliseconds, after a warm-up. */
async function rate (f: () => Promise<unknown>, ms: number): Promise<number> {
  for (let i = 0; i < 2000; i++) await f()
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < ms) { for (let i = 0; i < 500; i++) await f(); n += 500 }
  return n / ((performance.now() - t0) / 1000)
}

export async function ruleExpressions (o: { msPerFigure: number }): Promise<{ expressions: RuleExpressionResult[], medianRatio: number }> {
  const dir = join(import.meta.dirname, '../../rules')
  const uplink: Record<string, unknown> = {
    id: '0c3d3e55-7e29-8a4b-9b1c-2d3e4f5a6b7c', app: 'farm', devEui: '0018b20000000b20', receivedAt: '2026-12-01T07:00:00.000Z',
    network: { type: 'multitech', transport: 'mqtt', protocol: '1.1', gateway: '5a1f00d2-7c4e-4b39-9f0a-22c3e1d4b6a8' },
    fPort: 2, fCnt: 1234, hex: '5b0e1000e601', data: 'Ww4QAOYB', decoded: { level: 91, battery: 3.6, temperature: 23, pumpRunning: true },
    gateways: [{ id: '00-80-00-00-00-01-b5-fc', rssi: -47, snr: 9.5 }], reason: 'no-route', detail: 'no uplink',
  }
  const event = expressionInput(uplink)
  const out: RuleExpressionResult[] = []
  for (const file of (await readdir(dir)).filter(f => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      const v = doc.toJS() as { decoders?: Array<{ name: string, decode: string }>, rules?: Array<{ name: string, if?: string, downlink?: string, publish?: { topic: string, payload: string } }> }
      const list: Array<[string, string]> = [
        ...(v.decoders ?? []).map((d): [string, string] => [`decoder ${d.name}`, d.decode]),
        ...(v.rules ?? []).flatMap(r => [['if', r.if], ['downlink', r.downlink], ['publish.topic', r.publish?.topic], ['publish.payload', r.publish?.payload]]
          .filter((x): x is [string, string] => typeof x[1] === 'string').map(([k, s]): [string, string] => [`rule ${r.name} ${k}`, s])),
      ]
      for (const [where, source] of list) {
        const c = Expression.compile(source)
        if (!c.ok) continue
        const e = c.expression
        const reference = await rate(() => e.reference(event, BUDGET), o.msPerFigure)
        const compiled = await rate(() => e.evaluate(event, BUDGET), o.msPerFigure)
        out.push({ file, where, engine: e.engine.kind, referencePerSec: round(reference, 0), compiledPerSec: round(compiled, 0), ratio: round(compiled / reference, 1) })
      }
    }
  }
  const ratios = out.map(r => r.ratio).sort((a, b) => a - b)
  return { expressions: out, medianRatio: ratios[Math.floor(ratios.length / 2)] ?? 0 }
}
