/**
 * A compiled JSONata expression with the payload helpers bound, evaluated within a time and depth
 * budget. The budget uses JSONata's own guardrails (its per-evaluation depth counter and clock),
 * which cost one comparison per step; an evaluate-entry hook would cost an `await` per step, and
 * carrying each evaluation's budget in AsyncLocalStorage slowed every promise of the process.
 */
import jsonata from 'jsonata'
import { HELPERS } from './helpers.js'

export interface Budget { timeoutMs: number, maxDepth: number }

export class EvaluationLimit extends Error {
  constructor (readonly code: 'LB_ERR_RULE_TIMEOUT' | 'LB_ERR_RULE_DEPTH', message: string) { super(message) }
}

/** JSONata's guardrail errors (stack D1011, timeout D1012) as ours. */
function limitOf (err: unknown, budget: Budget): EvaluationLimit | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'D1011') return new EvaluationLimit('LB_ERR_RULE_DEPTH', `evaluation deeper than ${budget.maxDepth} levels (runaway recursion?)`)
  if (code === 'D1012') return new EvaluationLimit('LB_ERR_RULE_TIMEOUT', 'evaluation took longer than its time budget (infinite loop or huge range?)')
  return undefined
}

export interface JsonataError { code?: string, position?: number, token?: string, message: string }

export type Compiled = { ok: true, expression: Expression } | { ok: false, error: JsonataError }

export class Expression {
  /** Read by JSONata at each evaluation's start; set from the budget just before (one budget per daemon). */
  private readonly limits: { timeout: number, stack: number }

  private constructor (readonly source: string, private readonly expr: jsonata.Expression, limits: { timeout: number, stack: number }) {
    this.limits = limits
  }

  static compile (source: string): Compiled {
    let expr: jsonata.Expression
    const limits = { timeout: 0, stack: 0 }
    try {
      expr = jsonata(source, limits)
    } catch (err) {
      const e = err as JsonataError
      return { ok: false, error: { code: e.code, position: e.position, token: e.token, message: e.message } }
    }
    for (const h of HELPERS) expr.registerFunction(h.name, h.fn as (...args: unknown[]) => unknown, h.signature)
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
