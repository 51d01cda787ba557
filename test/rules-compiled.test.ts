/**
 * The synchronous compilation of rule expressions (src/rules/sync-jsonata.ts) against the JSONata
 * conformance suite (jsonata-js 2.2.2, shared/conformance/jsonata): for every case the compiler
 * accepts, its own result — without the reference evaluator — equals the case's expected result,
 * or, where the case expects an error, the compiled code hands the evaluation to the reference
 * (which gives that error). Prints cases compiled / passed / handed over / left to the reference,
 * by group; docs/rules.md quotes the totals.
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

const normal = (v: unknown): unknown => v === undefined ? undefined : JSON.parse(JSON.stringify(v)) as unknown

interface Tally { cases: number, compiled: number, passed: number, handedOver: number, reference: number }

describe.skipIf(!existsSync(root))('compiled rule expressions on the JSONata conformance suite', () => {
  it('give the expected result for every case they compile', () => {
    const datasets = new Map<string, unknown>()
    const dataset = (name: string): unknown => {
      if (!datasets.has(name)) datasets.set(name, JSON.parse(readFileSync(join(root, 'datasets', `${name}.json`), 'utf8')))
      return datasets.get(name)
    }
    const mismatches: string[] = []
    const groups = new Map<string, Tally>()
    const reasons = new Map<string, number>()
    for (const group of readdirSync(join(root, 'groups')).sort()) {
      const tally: Tally = { cases: 0, compiled: 0, passed: 0, handedOver: 0, reference: 0 }
      groups.set(group, tally)
      for (const file of readdirSync(join(root, 'groups', group)).filter(f => f.endsWith('.json')).sort()) {
        const raw = JSON.parse(readFileSync(join(root, 'groups', group, file), 'utf8')) as Case | Case[]
        for (const [i, c] of (Array.isArray(raw) ? raw : [raw]).entries()) {
          if (c.bindings !== undefined && Object.keys(c.bindings).length > 0) continue // rules bind nothing per evaluation
          const id = `${group}/${file}${Array.isArray(raw) ? `#${i}` : ''}`
          const input = c.dataset === null ? undefined : c.dataset !== undefined ? dataset(c.dataset) : c.data
          const expr = c.expr ?? readFileSync(join(root, 'groups', group, c['expr-file']!), 'utf8')
          const compiled = Expression.compile(expr)
          if (!compiled.ok) continue // refused at compile time (syntax errors, unsafe regexes): not an evaluation
          tally.cases++
          const engine = compiled.expression.engine
          if (engine.kind === 'reference') {
            tally.reference++
            reasons.set(engine.reason.replace(/\$\w+/, '$f'), (reasons.get(engine.reason.replace(/\$\w+/, '$f')) ?? 0) + 1)
            continue
          }
          tally.compiled++
          const budget = { timeoutMs: c.timelimit ?? 10_000, maxDepth: c.depth ?? 100_000 }
          let got: { bailed: true } | { bailed: false, result: unknown } | { error: string }
          try {
            got = compiled.expression.evaluateCompiled(input, budget)
          } catch (err) {
            got = { error: String((err as { code?: string }).code ?? err) }
          }
          const code = c.code ?? c.error?.code
          if ('error' in got) {
            // Only the time budget ends compiled code with an error of its own.
            if (code === 'D1012' && got.error === 'D1012') tally.passed++
            else mismatches.push(`${id}: ${expr.slice(0, 80)} → error ${got.error} (expected ${JSON.stringify(code ?? c.result)?.slice(0, 80)})`)
            continue
          }
          if (got.bailed) { tally.handedOver++; tally.passed++; continue } // the reference gives this evaluation, by design
          const ok = code === undefined && (c.undefinedResult === true ? got.result === undefined : isDeepStrictEqual(normal(got.result), normal(c.result)))
          if (ok) tally.passed++
          else mismatches.push(`${id}: ${expr.slice(0, 80)} → ${JSON.stringify(got.result)?.slice(0, 120)} (expected ${code !== undefined ? `error ${code}` : JSON.stringify(c.result)?.slice(0, 120)})`)
        }
      }
    }
    const total = [...groups.values()].reduce((a, t) => ({ cases: a.cases + t.cases, compiled: a.compiled + t.compiled, passed: a.passed + t.passed, handedOver: a.handedOver + t.handedOver, reference: a.reference + t.reference }))
    const lines = [`compiled JSONata on the conformance suite: ${total.cases} cases, ${total.compiled} compiled (${total.passed} passed, ${total.handedOver} of them handed to the reference at run time), ${total.reference} left to the reference`]
    for (const [g, t] of groups) if (t.reference > 0 && t.reference === t.cases) lines.push(`  falls back: ${g} (${t.cases})`)
    for (const [r, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`  reason ×${n}: ${r}`)
    process.stdout.write(lines.join('\n') + '\n')
    expect(mismatches).toEqual([])
    expect(total.compiled).toBeGreaterThan(500)
    expect(total.passed).toBe(total.compiled)
  })
})

describe('limits inside compiled code', () => {
  it('ends a long loop on its time budget, in the compiled code itself', async () => {
    const c = Expression.compile('$count([1..100000].($string($) & "-" & $string($ * 2)))')
    if (!c.ok) throw new Error('not compiled')
    expect(c.expression.engine.kind).toBe('compiled')
    expect(() => c.expression.evaluateCompiled({}, { timeoutMs: 2, maxDepth: 500 })).toThrow(expect.objectContaining({ code: 'D1012' }))
    await expect(c.expression.evaluate({}, { timeoutMs: 2, maxDepth: 500 })).rejects.toMatchObject({ code: 'LB_ERR_RULE_TIMEOUT' })
    // Within a sufficient budget the same expression completes, compiled.
    expect(c.expression.evaluateCompiled({}, { timeoutMs: 10_000, maxDepth: 500 })).toEqual({ bailed: false, result: 100_000 })
  })

  it('leaves an expression deeper than the depth budget to the reference, which ends it on the budget', async () => {
    const deep = `${'('.repeat(60)}1${')'.repeat(60)} + a`
    const c = Expression.compile(deep)
    if (!c.ok) throw new Error('not compiled')
    await expect(c.expression.evaluate({ a: 1 }, { timeoutMs: 1000, maxDepth: 20 })).rejects.toMatchObject({ code: 'LB_ERR_RULE_DEPTH' })
    expect(await c.expression.evaluate({ a: 1 }, { timeoutMs: 1000, maxDepth: 500 })).toBe(2)
  })

  it('hands ranges and sequences past the size cap to the reference, which refuses them', async () => {
    const c = Expression.compile('$count([1..200000])')
    if (!c.ok) throw new Error('not compiled')
    expect(c.expression.evaluateCompiled({}, { timeoutMs: 1000, maxDepth: 500 })).toEqual({ bailed: true })
    await expect(c.expression.evaluate({}, { timeoutMs: 1000, maxDepth: 500 })).rejects.toMatchObject({ code: 'LB_ERR_RULE_LIMIT' })
  })
})
