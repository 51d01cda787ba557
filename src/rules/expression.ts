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
import { BAIL, ENVIRONMENT_FUNCTIONS, compileTree, functionTable, type CompileResult, type JsonataFunction } from './sync-jsonata.js'
import { boundAnywhere, unknownFunction } from './function-check.js'

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

/** Every function name a rule expression may call without binding it: JSONata's and lorabridge's. */
export const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set([...ENVIRONMENT_FUNCTIONS, ...HELPERS.map(h => h.name), ...BOUNDED_FUNCTIONS.map(b => b.name)])

export interface Budget { timeoutMs: number, maxDepth: number }

export class EvaluationLimit extends Error {
  /** Where JSONata met a size bound: the call of the function that refused (position and name). */
  position: number | undefined
  token: string | undefined
  constructor (readonly code: 'LB_ERR_RULE_TIMEOUT' | 'LB_ERR_RULE_DEPTH' | 'LB_ERR_RULE_LIMIT', message: string, at?: { position?: unknown, token?: unknown }) {
    super(message)
    this.position = typeof at?.position === 'number' ? at.position : undefined
    this.token = typeof at?.token === 'string' ? at.token : undefined
  }
}

/** JSONata's guardrail errors (stack D1011, timeout D1012, range and sequence sizes D2014/D2015) and our size bounds as ours. */
function limitOf (err: unknown, budget: Budget): EvaluationLimit | undefined {
  if (err instanceof BoundExceeded) return new EvaluationLimit('LB_ERR_RULE_LIMIT', err.message, err as { position?: unknown, token?: unknown })
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'D1011') return new EvaluationLimit('LB_ERR_RULE_DEPTH', `evaluation deeper than ${budget.maxDepth} levels (runaway recursion?)`)
  if (code === 'D1012') return new EvaluationLimit('LB_ERR_RULE_TIMEOUT', 'evaluation took longer than its time budget (infinite loop?)')
  if (code === 'D2014' || code === 'D2015') return new EvaluationLimit('LB_ERR_RULE_LIMIT', `a range or sequence of more than ${grouped(MAX_ITEMS)} entries`, err as { position?: unknown, token?: unknown })
  // A string past the engine's own maximum length (about 2^29 characters).
  if (err instanceof RangeError) return new EvaluationLimit('LB_ERR_RULE_LIMIT', err.message)
  return undefined
}

/** JSONata's options: its time and depth guardrails, its sequence cap and the regex engine. */
interface Limits { timeout: number, stack: number, sequence: number, RegexEngine: typeof LinearRegExp }

export interface JsonataError { code?: string, position?: number, token?: string, message: string }

/** Where an expression sits in its rule file (set by compile.ts): runtime errors name the place. */
export interface ExpressionSite {
  file: string
  /** e.g. `rules[0].downlink` */
  path: string
  /** e.g. `rule "close-valve"`, `decoder "tank"` */
  owner: string
  /** The file's line and column of a position in the expression (JSONata's, 1-based); of the expression's start without one. */
  locate (position: number | undefined): { line: number, column: number }
}

/**
 * A runtime failure with its place, attached to the thrown error as `located` (evaluate). `text`
 * is the one line users see: `file:line:column: path (rule "x"): $function: message`.
 */
export interface LocatedFailure {
  text: string
  detail: string
  position?: number
  line?: number
  column?: number
  path?: string
  /** The function that failed, as written (`$substring`), or the operator (`+`, `&`). */
  function?: string
  operator?: string
}

export const locatedFailure = (err: unknown): LocatedFailure | undefined =>
  err !== null && typeof err === 'object' ? (err as { located?: LocatedFailure }).located : undefined

const OPERATOR = /^(?:[-+*/%=!<>&.~|?:^]+|and|or|in)$/
const escaped = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')

export type Compiled = { ok: true, expression: Expression } | { ok: false, error: JsonataError }

/** Compiled evaluations that failed with something other than BAIL, and were run again on the reference (a defect to report). */
let unexpected = 0
export const compiledFailures = (): number => unexpected

export class Expression {
  /** Read by JSONata at each evaluation's start; set from the budget just before (one budget per daemon). */
  private readonly limits: Limits

  /** The synchronous compilation, or why the expression runs on the reference evaluator. */
  private readonly compiled: CompileResult

  /** Where the expression is in its rule file; runtime errors name it (compile.ts sets it). */
  site: ExpressionSite | undefined

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
    // Before rewriteTree: what the user wrote, at the positions JSONata gave.
    const unknown = unknownFunction(expr.ast(), KNOWN_FUNCTIONS)
    if (unknown !== undefined) {
      return { ok: false, error: { code: unknown.partial ? 'T1008' : 'T1006', token: `$${unknown.name}`, message: unknown.message, ...(unknown.position !== undefined ? { position: unknown.position } : {}) } }
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
        if ((err as { code?: unknown } | null)?.code === 'D1012') throw this.located(limitOf(err, budget)!)
        // BAIL (or anything unexpected): this evaluation is the reference's, result or error.
        if (err !== BAIL) unexpected++
      }
    }
    try {
      return await this.reference(input, budget)
    } catch (err) {
      throw this.located(err)
    }
  }

  /**
   * A failure inside a function passed to another (`$map(a, function($v){ $bytes($v) })`) carries
   * the position of the outer call (JSONata overwrites it on the way out) but the inner token: the
   * token's first occurrence from that position on (in the arguments), else its first at all.
   */
  private nextOccurrence (token: RegExp, position: number): number {
    const all = [...this.source.matchAll(token)].map(m => m.index + 1)
    return all.find(p => p >= position) ?? all[0] ?? position
  }

  /**
   * Names the failure's place: the function or operator (JSONata's `token`) and the line and
   * column of the rule file (from JSONata's `position`, an offset in the expression). Both
   * evaluators' errors come through here: compiled code hands every failing evaluation to the
   * reference, and its own time-budget error, like the reference's, names the whole expression.
   */
  private located (err: unknown): unknown {
    if (err === null || typeof err !== 'object' || !Object.isExtensible(err)) return err
    const e = err as { position?: unknown, token?: unknown, message?: unknown }
    // Time and depth are the whole expression's, wherever the evaluation happened to be.
    const whole = err instanceof EvaluationLimit && err.code !== 'LB_ERR_RULE_LIMIT'
    let position = !whole && typeof e.position === 'number' ? e.position : undefined
    const token = !whole && typeof e.token === 'string' ? e.token : undefined
    let fn: string | undefined
    let operator: string | undefined
    if (token === '__lbConcat') {
      operator = '&'
    } else if (token !== undefined && (KNOWN_FUNCTIONS.has(token) || boundAnywhere(this.expr.ast()).has(token))) {
      fn = `$${token}`
      // JSONata gives a call the position of its `(`: point at the `$` of its name.
      if (position !== undefined) {
        const before = this.source.slice(0, position - 1).trimEnd()
        position = before.endsWith(fn) ? before.length - fn.length + 1 : this.nextOccurrence(new RegExp(`\\$${escaped(token)}\\s*\\(`, 'g'), position)
      }
    } else if (token !== undefined && OPERATOR.test(token)) {
      operator = token
      // …and an operator the position of its last character: point at its first.
      if (position !== undefined) {
        position = this.source.slice(position - token.length, position) === token
          ? position - token.length + 1
          : this.nextOccurrence(new RegExp(/^\w+$/.test(token) ? `\\b${token}\\b` : escaped(token), 'g'), position)
      }
    }
    const detail = typeof e.message === 'string' ? e.message : String(err)
    const subject = fn ?? (operator !== undefined ? `operator ${operator}` : undefined)
    const what = subject !== undefined ? `${subject}: ${detail}` : detail
    const site = this.site
    const at = site?.locate(position)
    const located: LocatedFailure = {
      text: site !== undefined && at !== undefined ? `${site.file}:${at.line}:${at.column}: ${site.path} (${site.owner}): ${what}` : position !== undefined ? `${what} (at position ${position} of the expression)` : what,
      detail,
    }
    if (position !== undefined) located.position = position
    if (at !== undefined) { located.line = at.line; located.column = at.column }
    if (site !== undefined) located.path = site.path
    if (fn !== undefined) located.function = fn
    if (operator !== undefined) located.operator = operator
    Object.defineProperty(err, 'located', { value: located, configurable: true, enumerable: false })
    return err
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
