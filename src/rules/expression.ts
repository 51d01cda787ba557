/**
 * A compiled JSONata expression with the payload helpers bound, evaluated within a time and depth
 * budget. The budget uses JSONata's own guardrails (its per-evaluation depth counter and clock),
 * which cost one comparison per step; an evaluate-entry hook would cost an `await` per step, and
 * carrying each evaluation's budget in AsyncLocalStorage slowed every promise of the process.
 * Those checks run between steps; what keeps each single step short is bounds.ts (sizes) and
 * linear-regex.ts (regular expressions on RE2).
 */
import jsonata from 'jsonata'
import { HELPERS } from './helpers.js'
import { BOUNDED_FUNCTIONS, BoundExceeded, MAX_ITEMS, grouped, rewriteTree } from './bounds.js'
import { LinearRegExp, regexRefusal } from './linear-regex.js'
import { BAIL, compileTree, functionTable, type CompileResult, type JsonataFunction } from './sync-jsonata.js'

/**
 * The functions every rule expression registers, as JSONata holds them (with parsed signatures),
 * for the compiled code: read once from an expression that registers them all.
 */
const REGISTERED = await (() => {
  const names = [...HELPERS.map(h => h.name), ...BOUNDED_FUNCTIONS.map(b => b.name)]
  const probe = jsonata(`{ ${names.map(n => `"${n}": $${n}`).join(', ')} }`)
  for (const h of HELPERS) probe.registerFunction(h.name, h.fn as (...args: unknown[]) => unknown, h.signature)
  for (const b of BOUNDED_FUNCTIONS) probe.registerFunction(b.name, b.fn, b.signature)
  return probe.evaluate({}) as Promise<Record<string, JsonataFunction>>
})()
const FUNCTIONS = functionTable(REGISTERED)

export interface Budget { timeoutMs: number, maxDepth: number }

export class EvaluationLimit extends Error {
  constructor (readonly code: 'LB_ERR_RULE_TIMEOUT' | 'LB_ERR_RULE_DEPTH' | 'LB_ERR_RULE_LIMIT', message: string) { super(message) }
}

/** JSONata's guardrail errors (stack D1011, timeout D1012, range and sequence sizes D2014/D2015) and our size bounds as ours. */
function limitOf (err: unknown, budget: Budget): EvaluationLimit | undefined {
  if (err instanceof BoundExceeded) return new EvaluationLimit('LB_ERR_RULE_LIMIT', err.message)
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'D1011') return new EvaluationLimit('LB_ERR_RULE_DEPTH', `evaluation deeper than ${budget.maxDepth} levels (runaway recursion?)`)
  if (code === 'D1012') return new EvaluationLimit('LB_ERR_RULE_TIMEOUT', 'evaluation took longer than its time budget (infinite loop?)')
  if (code === 'D2014' || code === 'D2015') return new EvaluationLimit('LB_ERR_RULE_LIMIT', `a range or sequence of more than ${grouped(MAX_ITEMS)} entries`)
  // A string past the engine's own maximum length (about 2^29 characters).
  if (err instanceof RangeError) return new EvaluationLimit('LB_ERR_RULE_LIMIT', err.message)
  return undefined
}

/** JSONata's options: its time and depth guardrails, its sequence cap and the regex engine. */
interface Limits { timeout: number, stack: number, sequence: number, RegexEngine: typeof LinearRegExp }

export interface JsonataError { code?: string, position?: number, token?: string, message: string }

export type Compiled = { ok: true, expression: Expression } | { ok: false, error: JsonataError }

/** Compiled evaluations that failed with something other than BAIL, and were run again on the reference (a defect to report). */
let unexpected = 0
export const compiledFailures = (): number => unexpected

export class Expression {
  /** Read by JSONata at each evaluation's start; set from the budget just before (one budget per daemon). */
  private readonly limits: Limits

  /** The synchronous compilation, or why the expression runs on the reference evaluator. */
  private readonly compiled: CompileResult

  private constructor (readonly source: string, private readonly expr: jsonata.Expression, limits: Limits) {
    this.limits = limits
    this.compiled = compileTree(expr.ast(), FUNCTIONS)
  }

  /** `compiled`, or `reference` with the reason (`rules check` reports it). */
  get engine (): { kind: 'compiled' } | { kind: 'reference', reason: string } {
    return this.compiled.ok ? { kind: 'compiled' } : { kind: 'reference', reason: this.compiled.reason }
  }

  static compile (source: string): Compiled {
    let expr: jsonata.Expression
    const limits: Limits = { timeout: 0, stack: 0, sequence: MAX_ITEMS, RegexEngine: LinearRegExp }
    try {
      expr = jsonata(source, limits as unknown as jsonata.JsonataOptions)
    } catch (err) {
      const e = err as JsonataError
      return { ok: false, error: { code: e.code, position: e.position, token: e.token, message: e.message } }
    }
    let refused: JsonataError | undefined
    rewriteTree(expr.ast(), (re, position) => {
      const why = regexRefusal(re)
      // JSONata gives a literal the position of its end; point at its opening slash instead.
      const start = position === undefined ? undefined : position - (re.source.length + 2 + re.flags.replace('g', '').length) + 1
      if (why !== undefined && refused === undefined) refused = { message: why, token: `/${re.source}/`, ...(start !== undefined ? { position: start } : {}) }
    })
    if (refused !== undefined) return { ok: false, error: refused }
    for (const h of HELPERS) expr.registerFunction(h.name, h.fn as (...args: unknown[]) => unknown, h.signature)
    for (const b of BOUNDED_FUNCTIONS) expr.registerFunction(b.name, b.fn, b.signature)
    return { ok: true, expression: new Expression(source, expr, limits) }
  }

  /** Resolves with the result (undefined for JSONata's "nothing"); rejects with the JSONata error or an EvaluationLimit. */
  async evaluate (input: unknown, budget: Budget): Promise<unknown> {
    const c = this.compiled
    // Deeper than the depth budget: only the reference counts depth node by node.
    if (c.ok && c.height < budget.maxDepth) {
      const now = Date.now()
      try {
        return c.run(input, now + budget.timeoutMs, now, MAX_ITEMS)
      } catch (err) {
        if ((err as { code?: unknown } | null)?.code === 'D1012') throw limitOf(err, budget)!
        // BAIL (or anything unexpected): this evaluation is the reference's, result or error.
        if (err !== BAIL) unexpected++
      }
    }
    return this.reference(input, budget)
  }

  /**
   * The compiled code alone (tests compare it with the reference): its result, or `bailed` when it
   * handed the evaluation to the reference (or is not compiled at all).
   */
  evaluateCompiled (input: unknown, budget: Budget): { bailed: false, result: unknown } | { bailed: true } {
    const c = this.compiled
    if (!c.ok) return { bailed: true }
    const now = Date.now()
    try {
      return { bailed: false, result: c.run(input, now + budget.timeoutMs, now, MAX_ITEMS) }
    } catch (err) {
      if (err === BAIL) return { bailed: true }
      throw err
    }
  }

  /** The reference evaluator alone (tests compare it with the compiled code). */
  async reference (input: unknown, budget: Budget): Promise<unknown> {
    this.limits.timeout = budget.timeoutMs
    this.limits.stack = budget.maxDepth
    try {
      return await this.expr.evaluate(input)
    } catch (err) {
      throw limitOf(err, budget) ?? err
    }
  }
}
