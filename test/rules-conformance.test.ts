/**
 * The JSONata conformance suite (jsonata-js 2.2.2, shared/conformance/jsonata) run through the
 * rules' Expression: its bounds (bounds.ts) and its regex engine (RE2, linear-regex.ts) must not
 * change what normal expressions give. The only differences are listed, each with its reason.
 */
import { describe, it, expect } from 'vitest'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { Expression } from '../src/rules/expression.js'

const SUITE = resolve(import.meta.dirname, '../../shared/conformance/jsonata')
const FALLBACK = '/work/shared/conformance/jsonata'
const root = existsSync(SUITE) ? SUITE : FALLBACK

interface Case { expr?: string, 'expr-file'?: string, data?: unknown, dataset?: string | null, bindings?: Record<string, unknown>, timelimit?: number, depth?: number, result?: unknown, undefinedResult?: boolean, code?: string, error?: { code?: string } }

/** Cases whose outcome differs on purpose (group/case: why). */
const EVAL = '$eval is refused in rules: text evaluated at run time would escape the compile-time rewriting and regex checks'
const RANGE = 'ranges and sequences are capped at 100,000 entries (JSONata: 10,000,000), refused before allocation'
const DIFFERENT: Record<string, string> = {
  ...Object.fromEntries(['case000', 'case001', 'case002', 'case003', 'case004', 'case005', 'case006', 'case007', 'case008#0', 'case008#1', 'case008#2', 'case008#3']
    .map(c => [`function-eval/${c.replace(/(#|$)/, '.json$1')}`, EVAL])),
  'range-operator/case021.json': RANGE,
  'range-operator/case022.json': RANGE,
  'range-operator/case023.json': RANGE,
  'range-operator/case024.json': RANGE,
  'flattening/large.json#0': RANGE,
  'flattening/large.json#1': RANGE,
}

/** Outcomes that are the same failure under our codes: a runaway recursion (U1001: the JavaScript stack) ends on our depth or time bound. */
const same = (expected: string, got: string | undefined): boolean => expected === got ||
  (expected === 'D1012' && got === 'LB_ERR_RULE_TIMEOUT') || (expected === 'D1011' && got === 'LB_ERR_RULE_DEPTH') ||
  (expected === 'U1001' && (got === 'LB_ERR_RULE_DEPTH' || got === 'LB_ERR_RULE_TIMEOUT'))

const normal = (v: unknown): unknown => v === undefined ? undefined : JSON.parse(JSON.stringify(v)) as unknown

describe.skipIf(!existsSync(root))('JSONata conformance through the rules engine', () => {
  it('gives the reference results, apart from the listed differences', async () => {
    const datasets = new Map<string, unknown>()
    const dataset = (name: string): unknown => {
      if (!datasets.has(name)) datasets.set(name, JSON.parse(readFileSync(join(root, 'datasets', `${name}.json`), 'utf8')))
      return datasets.get(name)
    }
    const differences: string[] = []
    let ran = 0
    for (const group of readdirSync(join(root, 'groups')).sort()) {
      for (const file of readdirSync(join(root, 'groups', group)).filter(f => f.endsWith('.json')).sort()) {
        const raw = JSON.parse(readFileSync(join(root, 'groups', group, file), 'utf8')) as Case | Case[]
        for (const [i, c] of (Array.isArray(raw) ? raw : [raw]).entries()) {
          if (c.bindings !== undefined && Object.keys(c.bindings).length > 0) continue // the rules engine binds nothing per evaluation
          const id = `${group}/${file}${Array.isArray(raw) ? `#${i}` : ''}`
          const input = c.dataset === null ? undefined : c.dataset !== undefined ? dataset(c.dataset) : c.data
          const expr = c.expr ?? readFileSync(join(root, 'groups', group, c['expr-file']!), 'utf8')
          ran++
          let got: { result?: unknown, code?: string }
          const compiled = Expression.compile(expr)
          if (!compiled.ok) got = { code: compiled.error.code ?? 'REFUSED' }
          else {
            try {
              got = { result: normal(await compiled.expression.evaluate(input, { timeoutMs: c.timelimit ?? 10_000, maxDepth: c.depth ?? 100_000 })) }
            } catch (err) {
              const e = err as { code?: string }
              got = { code: e.code ?? String(err) }
            }
          }
          const code = c.code ?? c.error?.code
          const ok = code !== undefined
            ? same(code, got.code)
            : c.undefinedResult === true ? got.code === undefined && got.result === undefined : got.code === undefined && isDeepStrictEqual(got.result, normal(c.result))
          if (!ok && DIFFERENT[id] === undefined) differences.push(`${id}: ${expr.slice(0, 80)} → ${JSON.stringify(got).slice(0, 160)} (expected ${String(JSON.stringify(code ?? c.result)).slice(0, 80)})`)
        }
      }
    }
    expect(ran).toBeGreaterThan(1000)
    expect(differences).toEqual([])
  })
})
