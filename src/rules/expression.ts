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

export class Expression {
  /** Read by JSONata at each evaluation's start; set from the budget just before (one budget per daemon). */
  private readonly limits: Limits

  private constructor (readonly source: string, private readonly expr: jsonata.Expression, limits: Limits) {
    this.limits = limits
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
    this.limits.timeout = budget.timeoutMs
    this.limits.stack = budget.maxDepth
    try {
      return await this.expr.evaluate(input)
    } catch (err) {
      throw limitOf(err, budget) ?? err
    }
  }
}
