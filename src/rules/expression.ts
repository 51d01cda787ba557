/**
 * A compiled JSONata expression with the payload helpers bound, evaluated within a time and depth
 * budget. JSONata's evaluate-entry/exit hooks are set on the compiled expression, so they are
 * shared by concurrent evaluations; each evaluation's own budget travels in AsyncLocalStorage.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import jsonata from 'jsonata'
import { HELPERS } from './helpers.js'

export interface Budget { timeoutMs: number, maxDepth: number }

interface Run { depth: number, deadline: number, maxDepth: number }

const runs = new AsyncLocalStorage<Run>()

export class EvaluationLimit extends Error {
  constructor (readonly code: 'LB_ERR_RULE_TIMEOUT' | 'LB_ERR_RULE_DEPTH', message: string) { super(message) }
}

function onEntry (): void {
  const run = runs.getStore()
  if (run === undefined) return
  run.depth++
  if (run.depth > run.maxDepth) throw new EvaluationLimit('LB_ERR_RULE_DEPTH', `evaluation deeper than ${run.maxDepth} levels (runaway recursion?)`)
  if (Date.now() > run.deadline) throw new EvaluationLimit('LB_ERR_RULE_TIMEOUT', 'evaluation took longer than its time budget (infinite loop or huge range?)')
}

function onExit (): void {
  const run = runs.getStore()
  if (run !== undefined) run.depth--
}

export interface JsonataError { code?: string, position?: number, token?: string, message: string }

export type Compiled = { ok: true, expression: Expression } | { ok: false, error: JsonataError }

export class Expression {
  private constructor (readonly source: string, private readonly expr: jsonata.Expression) {}

  static compile (source: string): Compiled {
    let expr: jsonata.Expression
    try {
      expr = jsonata(source)
    } catch (err) {
      const e = err as JsonataError
      return { ok: false, error: { code: e.code, position: e.position, token: e.token, message: e.message } }
    }
    for (const h of HELPERS) expr.registerFunction(h.name, h.fn as (...args: unknown[]) => unknown, h.signature)
    expr.assign(Symbol.for('jsonata.__evaluate_entry') as unknown as string, onEntry)
    expr.assign(Symbol.for('jsonata.__evaluate_exit') as unknown as string, onExit)
    return { ok: true, expression: new Expression(source, expr) }
  }

  /** Resolves with the result (undefined for JSONata's "nothing"); rejects with the JSONata error or an EvaluationLimit. */
  evaluate (input: unknown, budget: Budget): Promise<unknown> {
    return runs.run({ depth: 0, deadline: Date.now() + budget.timeoutMs, maxDepth: budget.maxDepth }, () => this.expr.evaluate(input))
  }
}
