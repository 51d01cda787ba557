/**
 * JSONata compiled to synchronous JavaScript closures (issue 14). The reference evaluator
 * (jsonata 2.x) is asynchronous — a promise per node — and was the largest cost per uplink; this
 * compiler turns the reference's own syntax tree into closures that do what its `evaluate*`
 * functions do, node for node, without promises.
 *
 * Correctness by construction, not by cleverness:
 * - Each closure mirrors one function of jsonata.js 2.2.2 (named in its comment): the same
 *   sequence flags (`sequence`, `keepSingleton`, `cons`), the same singleton unwrapping and
 *   flattening, the same `undefined` propagation.
 * - Only the happy path is compiled. Wherever the reference would raise an error, or the value is
 *   of a shape the compiled code does not handle (a function value, a tuple stream, an infinite
 *   number, a sequence past the size cap), the closure throws BAIL and the caller evaluates the
 *   whole expression again on the reference, which gives its own result or error — same code,
 *   position and token, by definition.
 * - What is not compiled at all (lambdas, partial application, `~>`, transforms, sorting, parent
 *   and tuple steps, regular expressions, higher-order and environment-bound functions) is decided
 *   at compile time, for the whole expression, with the reason (`rules check` reports it).
 */
import jsonata from 'jsonata'
import { MAX_STRING } from './bounds.js'

/** A string `&` may build (bounds.ts MAX_STRING): past it, the reference's bounded error. */
const MAX_CONCAT = MAX_STRING

/** Thrown inside compiled code: evaluate this input on the reference instead. */
export const BAIL: unique symbol = Symbol('evaluate on the reference')

/** A JSONata built-in or registered function, as its environment holds it (defineFunction). */
export interface JsonataFunction {
  _jsonata_function: true
  implementation: (...args: unknown[]) => unknown
  signature?: { definition?: string, validate: (args: unknown[], context: unknown) => unknown[] }
}

/** getSymbol in jsonata.js (functions never reach it here). */
function symbolOf (v: unknown): string {
  switch (typeof v) {
    case 'string': return 's'
    case 'number': return 'n'
    case 'boolean': return 'b'
    case 'object': return v === null ? 'l' : Array.isArray(v) ? 'a' : 'o'
    default: return 'm'
  }
}

/** What a compiled expression needs at run time. */
export interface RunContext {
  /** Date.now() past which the evaluation has run too long (the reference's D1012). */
  deadline: number
  /** The evaluation's timestamp for $now() and $millis(). */
  timestamp: number
  /** The size cap of a sequence (the reference's `sequence` option, our MAX_ITEMS). */
  maxItems: number
  /** The root input, `$$`. */
  root: unknown
}

type Seq = unknown[] & { sequence?: boolean, keepSingleton?: boolean, cons?: boolean, tupleStream?: boolean, outerWrapper?: boolean }
interface Frame { vars: Map<string, unknown> | undefined, parent: Frame | undefined }
type Closure = (input: unknown, env: Frame, rc: RunContext) => unknown

export type CompileResult = { ok: true, run: (input: unknown, deadline: number, timestamp: number, maxItems: number) => unknown, height: number } | { ok: false, reason: string }

interface Node {
  type: string
  value?: unknown
  position?: number
  steps?: Node[]
  stages?: Array<{ type: string, expr?: Node, value?: unknown }>
  predicate?: Array<{ type: string, expr: Node }>
  group?: { lhs: Array<[Node, Node]>, position?: number }
  lhs?: Node | Array<[Node, Node]>
  rhs?: Node
  expression?: Node
  expressions?: Node[]
  condition?: Node
  then?: Node
  else?: Node
  procedure?: Node
  arguments?: Node[]
  keepArray?: boolean
  keepSingletonArray?: boolean
  consarray?: boolean
  tuple?: boolean
  focus?: string
  index?: string
  ancestor?: unknown
  seekingParent?: unknown
  [k: string]: unknown
}

class NotCompiled extends Error {}
const refuse = (reason: string): never => { throw new NotCompiled(reason) }

// ------------------------------------------------------------------ values (jsonata.js utils)

function createSequence (...items: unknown[]): Seq {
  const s: Seq = []
  s.sequence = true
  if (items.length === 1) s.push(items[0])
  return s
}

const isSequence = (v: unknown): v is Seq => Array.isArray(v) && (v as Seq).sequence === true

/** utils.isFunction: such values are never handled here. */
function isFunctionValue (v: unknown): boolean {
  return typeof v === 'function' || (v !== null && typeof v === 'object' && ((v as { _jsonata_function?: unknown })._jsonata_function === true || (v as { _jsonata_lambda?: unknown })._jsonata_lambda === true))
}

/** utils.isNumeric; the reference throws D1001 for an infinite number: BAIL. */
function isNumeric (n: unknown): n is number {
  if (typeof n !== 'number') return false
  if (Number.isNaN(n)) return false
  if (!Number.isFinite(n)) throw BAIL
  return true
}

function isArrayOfNumbers (v: unknown): boolean {
  if (!Array.isArray(v)) return false
  for (const x of v) if (!isNumeric(x)) return false
  return true
}

/** functions.boolean */
function toBoolean (arg: unknown): boolean | undefined {
  if (arg === undefined) return undefined
  if (Array.isArray(arg)) {
    if (arg.length === 1) return toBoolean(arg[0])
    if (arg.length > 1) return arg.some(v => toBoolean(v) === true)
    return false
  }
  if (typeof arg === 'string') return arg.length > 0
  if (isNumeric(arg)) return arg !== 0
  if (typeof arg === 'boolean') return arg
  if (isFunctionValue(arg)) throw BAIL
  if (arg !== null && typeof arg === 'object') return Object.keys(arg).length > 0
  return false
}

const boolize = (v: unknown): boolean => toBoolean(v) ?? false

/** functions.lookup */
function lookup (input: unknown, key: string): unknown {
  if (Array.isArray(input)) {
    const result = createSequence()
    for (const item of input) {
      const res = lookup(item, key)
      if (res !== undefined) {
        if (Array.isArray(res)) for (const v of res) result.push(v)
        else result.push(res)
      }
    }
    return result
  }
  if (input !== null && typeof input === 'object' && Object.prototype.hasOwnProperty.call(input, key)) {
    if (isFunctionValue(input)) throw BAIL
    return (input as Record<string, unknown>)[key]
  }
  return undefined
}

/** functions.append */
function append (a: unknown, b: unknown, rc: RunContext): unknown {
  if (a === undefined) return b
  if (b === undefined) return a
  const l = Array.isArray(a) ? a : createSequence(a)
  const r = Array.isArray(b) ? b : [b]
  if (l.length + r.length > rc.maxItems) throw BAIL
  return l.concat(r)
}

/** utils.isDeepEqual */
function isDeepEqual (l: unknown, r: unknown): boolean {
  if (l === r) return true
  if (typeof l === 'object' && typeof r === 'object' && l !== null && r !== null) {
    if (Array.isArray(l) && Array.isArray(r)) {
      if (l.length !== r.length) return false
      for (let i = 0; i < l.length; i++) if (!isDeepEqual(l[i], r[i])) return false
      return true
    }
    const lk = Object.getOwnPropertyNames(l).sort()
    const rk = Object.getOwnPropertyNames(r).sort()
    if (lk.length !== rk.length) return false
    for (let i = 0; i < lk.length; i++) if (lk[i] !== rk[i]) return false
    for (const k of lk) if (!isDeepEqual((l as Record<string, unknown>)[k], (r as Record<string, unknown>)[k])) return false
    return true
  }
  return false
}

function flatten (arg: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(arg)) for (const x of arg) flatten(x, out)
  else out.push(arg)
  return out
}

let ticks = 0
/** The reference checks its clock at every step; here every 16 loop iterations. */
function tick (rc: RunContext): void {
  if ((++ticks & 15) === 0 && Date.now() > rc.deadline) throw Object.assign(new Error('evaluation timed out'), { code: 'D1012' })
}

function checkSize (s: unknown[], rc: RunContext): void {
  if (s.length > rc.maxItems) throw BAIL
}

// ------------------------------------------------------------------ compiler

/** Functions that are synchronous, pure and need no evaluation environment: called as the reference calls them. */
const SYNC_BUILTINS = [
  'sum', 'count', 'max', 'min', 'average', 'string', 'substring', 'substringBefore', 'substringAfter', 'lowercase', 'uppercase',
  'length', 'trim', 'pad', 'contains', 'split', 'join', 'formatNumber', 'formatBase', 'formatInteger', 'parseInteger', 'number',
  'floor', 'ceil', 'round', 'abs', 'sqrt', 'power', 'boolean', 'not', 'zip', 'keys', 'lookup', 'append', 'exists', 'spread', 'merge',
  'reverse', 'error', 'assert', 'type', 'distinct', 'base64encode', 'base64decode', 'encodeUrlComponent', 'encodeUrl',
  'decodeUrlComponent', 'decodeUrl', 'toMillis', 'fromMillis', 'clone',
]

/** The reference's own function objects of the built-ins above (signatures included). */
const BUILTINS = await jsonata(`{ ${SYNC_BUILTINS.map(n => `"${n}": $${n}`).join(', ')} }`).evaluate({}) as Record<string, JsonataFunction>

/** Every function name of JSONata's environment (jsonata.js staticFrame, and $now, $millis). */
export const ENVIRONMENT_FUNCTIONS: readonly string[] = [...SYNC_BUILTINS, 'match', 'replace', 'random', 'map', 'filter', 'single', 'reduce', 'sift', 'each', 'sort', 'shuffle', 'eval', 'now', 'millis']

/** What an expression may call: the functions compiled code calls, and every name that is a function. */
export interface FunctionTable { callable: Map<string, JsonataFunction>, names: Set<string> }

/** The built-ins above, overridden and extended by what every rule expression registers. */
export function functionTable (registered: Record<string, JsonataFunction>): FunctionTable {
  const callable = new Map<string, JsonataFunction>(Object.entries(BUILTINS))
  for (const [name, f] of Object.entries(registered)) {
    const ctor = (f.implementation as { constructor?: { name?: string } }).constructor?.name
    // An async or generator implementation cannot be called synchronously: left to the reference.
    if (ctor === 'AsyncFunction' || ctor === 'GeneratorFunction' || ctor === 'AsyncGeneratorFunction') callable.delete(name)
    else callable.set(name, f)
  }
  return { callable, names: new Set([...ENVIRONMENT_FUNCTIONS, ...Object.keys(registered)]) }
}

/** Names bound with `:=` anywhere in the tree. */
function boundNames (node: unknown, out = new Set<string>()): Set<string> {
  if (node === null || typeof node !== 'object') return out
  if (Array.isArray(node)) { for (const x of node) boundNames(x, out); return out }
  const n = node as Node
  if (n.type === 'bind' && (n.lhs as Node | undefined)?.type === 'variable') out.add(String((n.lhs as Node).value))
  for (const v of Object.values(n)) if (v !== null && typeof v === 'object' && !(v instanceof RegExp)) boundNames(v, out)
  return out
}

function height (node: unknown): number {
  if (node === null || typeof node !== 'object' || node instanceof RegExp) return 0
  if (Array.isArray(node)) return node.reduce((m: number, x) => Math.max(m, height(x)), 0)
  let h = 0
  for (const v of Object.values(node as Record<string, unknown>)) h = Math.max(h, height(v))
  return h + 1
}

class Compiler {
  private readonly functions: Map<string, JsonataFunction>
  constructor (private readonly table: FunctionTable, private readonly bound: Set<string>) {
    this.functions = table.callable
    // A name both bound and a function is the function until the binding runs: left to the reference.
    for (const name of bound) if (table.names.has(name)) refuse(`$${name} is bound with := and is also a function`)
  }

  /** `evaluate` in jsonata.js: the node, then its predicates and group, then the sequence post-processing. */
  node (n: Node): Closure {
    const core = this.core(n)
    const predicates = n.predicate?.map(p => p.type === 'filter' ? this.filter(p.expr) : refuse(`a ${p.type} predicate`))
    const group = n.type !== 'path' && n.group !== undefined ? this.group(n.group.lhs) : undefined
    const keepArray = n.keepArray === true
    if (predicates === undefined && group === undefined) {
      return (input, env, rc) => post(core(input, env, rc), keepArray)
    }
    return (input, env, rc) => {
      let r = core(input, env, rc)
      if (predicates !== undefined) for (const p of predicates) r = p(r, env, rc)
      if (group !== undefined) r = group(r, env, rc)
      return post(r, keepArray)
    }
  }

  private core (n: Node): Closure {
    if (n.focus !== undefined || n.index !== undefined || n.tuple === true || n.ancestor !== undefined || n.seekingParent !== undefined) refuse('focus, index or parent bindings (@, #, %)')
    switch (n.type) {
      case 'path': return this.path(n)
      case 'binary': return this.binary(n)
      case 'unary': return this.unary(n)
      case 'name': { const key = String(n.value); return input => lookup(input, key) }
      case 'string': case 'number': case 'value': { const v = n.value; return () => v }
      case 'wildcard': return (input, _env, rc) => wildcard(input, rc)
      case 'descendant': return input => descendants(input)
      case 'condition': return this.condition(n)
      case 'block': return this.block(n)
      case 'bind': return this.bind(n)
      case 'function': return this.call(n)
      case 'variable': return this.variable(n)
      // evaluateApplyExpression: `lhs ~> $f(args)` calls $f(lhs, args); `~> $f` (a function value) is not compiled.
      case 'apply': return n.rhs?.type === 'function' ? this.call(n.rhs, this.node(n.lhs as Node)) : refuse('~> to a function value')
      default: return refuse(`${n.type} expressions`)
    }
  }

  /** evaluatePath + evaluateStep */
  private path (n: Node): Closure {
    const steps = n.steps ?? refuse('a path without steps')
    const first = steps[0]?.type
    const compiled = steps.map((s, i) => {
      if (s.type === 'sort') refuse('sorting (^)')
      if (s.tuple === true || s.focus !== undefined || s.index !== undefined) refuse('focus or index bindings (@, #)')
      const stages = s.stages?.map(st => st.type === 'filter' && st.expr !== undefined ? this.filter(st.expr) : refuse(`a ${st.type} stage`))
      return { eval: this.node(s), stages, cons: i === 0 && s.consarray === true }
    })
    const last = compiled.length - 1
    const keepSingletonArray = n.keepSingletonArray === true
    const group = n.group !== undefined ? this.group(n.group.lhs) : undefined
    // `a.b.c` over objects (the common case): field by field, without sequences. What it does not
    // cover — an array on the way, keepArray, stages, predicates, grouping — takes the general path.
    const names = steps.every(s => s.type === 'name' && s.stages === undefined && s.predicate === undefined && s.group === undefined && s.keepArray !== true) && !keepSingletonArray && group === undefined
      ? steps.map(s => String(s.value))
      : undefined
    const general = this.generalPath(compiled, first, last, keepSingletonArray, group)
    if (names === undefined) return general
    return (input, env, rc) => {
      let cur = input
      for (let i = 0; i < names.length; i++) {
        if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || isFunctionValue(cur)) return general(input, env, rc)
        if (!Object.prototype.hasOwnProperty.call(cur, names[i]!)) return undefined
        cur = (cur as Record<string, unknown>)[names[i]!]
        if (cur === undefined) return undefined
      }
      // The last field's array is the result itself, unless it is a sequence (evaluateStep's lastStep rule).
      return Array.isArray(cur) && isSequence(cur) ? general(input, env, rc) : cur
    }
  }

  private generalPath (compiled: Array<{ eval: Closure, stages: Array<(input: unknown, env: Frame, rc: RunContext) => unknown> | undefined, cons: boolean }>, first: string | undefined, last: number,
    keepSingletonArray: boolean, group: Closure | undefined): Closure {
    return (input, env, rc) => {
      let inputSeq: unknown = Array.isArray(input) && first !== 'variable' ? input : createSequence(input)
      let result: unknown
      for (let i = 0; i <= last; i++) {
        const step = compiled[i]!
        if (step.cons) {
          result = step.eval(inputSeq, env, rc)
        } else {
          if (!Array.isArray(inputSeq)) throw BAIL
          const out = createSequence()
          // Items the flattened result will hold: past the cap, the reference's error (D2015) is due.
          let total = 0
          for (const item of inputSeq) {
            tick(rc)
            let res = step.eval(item, env, rc)
            if (step.stages !== undefined) for (const st of step.stages) res = st(res, env, rc)
            if (res !== undefined) {
              out.push(res)
              total += Array.isArray(res) ? res.length : 1
              if (total > rc.maxItems) throw BAIL
            }
          }
          if (i === last && out.length === 1 && Array.isArray(out[0]) && !isSequence(out[0])) {
            result = out[0]
          } else {
            const flat = createSequence()
            for (const res of out) {
              if (!Array.isArray(res) || (res as Seq).cons === true) flat.push(res)
              else for (const v of res) flat.push(v)
            }
            checkSize(flat, rc)
            result = flat
          }
        }
        if (result === undefined || (result as { length?: number }).length === 0) break
        inputSeq = result
      }
      if (keepSingletonArray) {
        if (!Array.isArray(result)) throw BAIL
        let r = result as Seq
        if (r.cons === true && r.sequence !== true) r = createSequence(r)
        r.keepSingleton = true
        result = r
      }
      if (group !== undefined) result = group(result, env, rc)
      return result
    }
  }

  /** evaluateFilter */
  private filter (pred: Node): (input: unknown, env: Frame, rc: RunContext) => unknown {
    if (pred.type === 'number') {
      const at = Math.floor(Number(pred.value))
      return input => {
        if ((input as Seq | undefined)?.tupleStream === true) throw BAIL
        const seq = Array.isArray(input) ? input : createSequence(input)
        const item = seq[at < 0 ? seq.length + at : at]
        if (item === undefined) return createSequence()
        if (Array.isArray(item)) return item
        return createSequence(item)
      }
    }
    const test = this.node(pred)
    return (input, env, rc) => {
      if ((input as Seq | undefined)?.tupleStream === true) throw BAIL
      const seq = Array.isArray(input) ? input : createSequence(input)
      const results = createSequence()
      for (let index = 0; index < seq.length; index++) {
        tick(rc)
        const item = seq[index]
        let res = test(item, env, rc)
        if (isNumeric(res)) res = [res]
        if (isArrayOfNumbers(res)) {
          for (const ires of res as number[]) {
            let ii = Math.floor(ires)
            if (ii < 0) ii = seq.length + ii
            if (ii === index) results.push(item)
          }
        } else if (toBoolean(res) === true) {
          results.push(item)
        }
      }
      return results
    }
  }

  /** evaluateGroupExpression (no tuple streams) */
  private group (pairs: Array<[Node, Node]>): Closure {
    const compiled = pairs.map(([k, v]) => [this.node(k), this.node(v)] as const)
    const general = this.generalGroup(compiled)
    // `{ "a": …, "b": … }` on one context value (the common case): literal, distinct keys need no
    // grouping; the values are evaluated in the reference's key order (Object.keys of its groups).
    const literal = pairs.every(([k]) => k.type === 'string' && k.predicate === undefined && k.group === undefined) && new Set(pairs.map(([k]) => k.value)).size === pairs.length &&
      // JSONata refuses these keys (D1013): the general path hands that to the reference.
      !pairs.some(([k]) => k.value === '_jsonata_lambda' || k.value === '_jsonata_function')
    if (!literal) return general
    const order = Object.keys(Object.fromEntries(pairs.map(([k], i) => [String(k.value), i])))
      .map(key => ({ key, value: compiled[pairs.findIndex(([k]) => String(k.value) === key)]![1] }))
    return (input, env, rc) => {
      if (Array.isArray(input)) return general(input, env, rc)
      const result = Object.create(null) as Record<string, unknown>
      for (const { key, value } of order) {
        const v = value(input, env, rc)
        if (v !== undefined) result[key] = v
      }
      return result
    }
  }

  private generalGroup (compiled: ReadonlyArray<readonly [Closure, Closure]>): Closure {
    return (input, env, rc) => {
      if ((input as Seq | undefined)?.tupleStream === true) throw BAIL
      const seq = Array.isArray(input) ? input : createSequence(input)
      if (seq.length === 0) seq.push(undefined)
      const groups = Object.create(null) as Record<string, { data: unknown, exprIndex: number }>
      for (const item of seq) {
        tick(rc)
        for (let p = 0; p < compiled.length; p++) {
          const key = compiled[p]![0](item, env, rc)
          if (key === undefined) continue
          if (typeof key !== 'string' || key === '_jsonata_lambda' || key === '_jsonata_function') throw BAIL
          const g = groups[key]
          if (g !== undefined) {
            if (g.exprIndex !== p) throw BAIL
            g.data = append(g.data, item, rc)
          } else {
            groups[key] = { data: item, exprIndex: p }
          }
        }
      }
      // Object.keys: the reference's order (integer-like keys first).
      const result = Object.create(null) as Record<string, unknown>
      for (const key of Object.keys(groups)) {
        const g = groups[key]!
        const value = compiled[g.exprIndex]![1](g.data, env, rc)
        if (value !== undefined) result[key] = value
      }
      return result
    }
  }

  /** evaluateBinary */
  private binary (n: Node): Closure {
    const op = String(n.value)
    const lhs = this.node(n.lhs as Node)
    const rhs = this.node(n.rhs as Node)
    switch (op) {
      case 'and': return (i, e, rc) => boolize(lhs(i, e, rc)) && boolize(rhs(i, e, rc))
      case 'or': return (i, e, rc) => boolize(lhs(i, e, rc)) || boolize(rhs(i, e, rc))
      case '+': case '-': case '*': case '/': case '%':
        return (i, e, rc) => {
          const l = lhs(i, e, rc)
          const r = rhs(i, e, rc)
          if ((l !== undefined && !isNumeric(l)) || (r !== undefined && !isNumeric(r))) throw BAIL
          if (l === undefined || r === undefined) return undefined
          const v = op === '+' ? l + r : op === '-' ? l - r : op === '*' ? l * r : op === '/' ? l / r : l % r
          // An infinite result is the reference's D1001 wherever it is used next.
          if (!Number.isFinite(v) && !Number.isNaN(v)) throw BAIL
          return v
        }
      case '=': case '!=':
        return (i, e, rc) => {
          const l = lhs(i, e, rc)
          const r = rhs(i, e, rc)
          if (l === undefined || r === undefined) return false
          return op === '=' ? isDeepEqual(l, r) : !isDeepEqual(l, r)
        }
      case '<': case '<=': case '>': case '>=':
        return (i, e, rc) => {
          const l = lhs(i, e, rc)
          const r = rhs(i, e, rc)
          const lt = typeof l
          const rt = typeof r
          if (!(lt === 'undefined' || lt === 'string' || lt === 'number') || !(rt === 'undefined' || rt === 'string' || rt === 'number')) throw BAIL
          if (l === undefined || r === undefined) return undefined
          if (lt !== rt) throw BAIL
          const a = l as number
          const b = r as number
          return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b
        }
      case 'in':
        return (i, e, rc) => {
          const l = lhs(i, e, rc)
          const r = rhs(i, e, rc)
          if (l === undefined || r === undefined) return false
          const list = Array.isArray(r) ? r : [r]
          for (const x of list) if (x === l) return true
          return false
        }
      case '..':
        return (i, e, rc) => {
          const l = lhs(i, e, rc)
          const r = rhs(i, e, rc)
          if ((l !== undefined && !Number.isInteger(l)) || (r !== undefined && !Number.isInteger(r))) throw BAIL
          if (l === undefined || r === undefined) return undefined
          const a = l as number
          const b = r as number
          if (a > b) return undefined
          if (b - a + 1 > rc.maxItems) throw BAIL
          const out: Seq = new Array(b - a + 1)
          for (let v = a, k = 0; v <= b; v++, k++) out[k] = v
          out.sequence = true
          return out
        }
      default: return refuse(`the ${op} operator`)
    }
  }

  /** evaluateUnary */
  private unary (n: Node): Closure {
    switch (n.value) {
      case '-': {
        const operand = this.node(n.expression!)
        return (i, e, rc) => {
          const v = operand(i, e, rc)
          if (v === undefined) return undefined
          if (!isNumeric(v)) throw BAIL
          return -v
        }
      }
      case '[': {
        const items = (n.expressions ?? []).map(x => ({ eval: this.node(x), nested: x.value === '[' }))
        const cons = n.consarray === true
        return (i, e, rc) => {
          let result: unknown[] = []
          for (const item of items) {
            const v = item.eval(i, e, rc)
            if (v === undefined) continue
            if (item.nested) result.push(v)
            else result = append(result, v, rc) as unknown[]
          }
          if (cons) Object.defineProperty(result, 'cons', { enumerable: false, configurable: false, value: true })
          return result
        }
      }
      case '{': return this.group((n.lhs as Array<[Node, Node]>) ?? [])
      default: return refuse(`the unary ${String(n.value)} operator`)
    }
  }

  /** evaluateCondition */
  private condition (n: Node): Closure {
    const cond = this.node(n.condition!)
    const then = this.node(n.then!)
    const otherwise = n.else !== undefined ? this.node(n.else) : undefined
    return (i, e, rc) => {
      if (toBoolean(cond(i, e, rc)) === true) return then(i, e, rc)
      return otherwise?.(i, e, rc)
    }
  }

  /** evaluateBlock: a new frame for what the block binds. */
  private block (n: Node): Closure {
    const exprs = (n.expressions ?? []).map(x => this.node(x))
    return (i, e, rc) => {
      const frame: Frame = { vars: undefined, parent: e }
      let result: unknown
      for (const x of exprs) result = x(i, frame, rc)
      return result
    }
  }

  /** evaluateBindExpression */
  private bind (n: Node): Closure {
    const name = String((n.lhs as Node).value)
    const value = this.node(n.rhs!)
    return (i, e, rc) => {
      const v = value(i, e, rc)
      ;(e.vars ??= new Map()).set(name, v)
      return v
    }
  }

  /** evaluateVariable */
  private variable (n: Node): Closure {
    const name = String(n.value)
    if (name === '') return input => (input as Seq | undefined)?.outerWrapper === true ? (input as Seq)[0] : input
    if (name === '$') return (_i, _e, rc) => rc.root
    if (!this.bound.has(name)) {
      // Not bound in the expression: a function of the environment (as a value: not compiled) or nothing.
      if (this.table.names.has(name)) refuse(`$${name} used as a value`)
      return () => undefined
    }
    return (_i, e) => {
      for (let f: Frame | undefined = e; f !== undefined; f = f.parent) {
        if (f.vars?.has(name) === true) {
          const v = f.vars.get(name)
          if (isFunctionValue(v)) throw BAIL
          return v
        }
      }
      return undefined
    }
  }

  /** evaluateFunction + applyInner, for the functions of the table ($now and $millis: the evaluation's timestamp). */
  private call (n: Node, applyTo?: Closure): Closure {
    const proc = n.procedure!
    if (proc.type !== 'variable') refuse('calling the result of an expression')
    const name = String(proc.value)
    if (this.bound.has(name)) refuse(`$${name}, bound in the expression`)
    const args = (n.arguments ?? []).map(a => this.node(a))
    if (name === 'millis' && args.length === 0 && applyTo === undefined) return (_i, _e, rc) => rc.timestamp
    if (name === 'now' && args.length === 0 && applyTo === undefined) return (_i, _e, rc) => new Date(rc.timestamp).toISOString()
    const f = this.functions.get(name) ?? refuse(this.table.names.has(name) ? `$${name}` : `$${name} (not a known function)`)
    const impl = f.implementation
    const signature = f.signature
    // `&` (rewritten to $__lbConcat, bounds.ts): two strings, or nothing, are joined here.
    const concat = name === '__lbConcat' && args.length === 2 && applyTo === undefined
    // Validation gives back its arguments unchanged for most calls. Without array subtypes (whose
    // contents it checks), that depends only on the arguments' types: remembered per type string.
    const memo = signature?.definition !== undefined && !signature.definition.slice(1, -1).includes('<') ? new Map<string, true>() : undefined
    return (input, env, rc) => {
      // evaluateApplyExpression evaluates the left-hand side first; it is the first argument.
      const first = applyTo !== undefined ? [applyTo(input, env, rc)] : []
      const values = new Array<unknown>(first.length + args.length)
      if (first.length > 0) { if (isFunctionValue(first[0])) throw BAIL; values[0] = first[0] }
      for (let k = 0; k < args.length; k++) {
        const v = args[k]!(input, env, rc)
        if (isFunctionValue(v)) throw BAIL
        values[first.length + k] = v
      }
      if (concat) {
        const l = values[0]
        const r = values[1]
        if ((typeof l === 'string' || l === undefined) && (typeof r === 'string' || r === undefined)) {
          const joined = (l ?? '') + (r ?? '')
          if (joined.length > MAX_CONCAT) throw BAIL
          return joined
        }
      }
      let result: unknown
      try {
        let validated = values
        if (signature !== undefined) {
          let types = ''
          if (memo !== undefined) for (const v of values) types += symbolOf(v)
          if (memo === undefined || !memo.has(types)) {
            validated = signature.validate(values, input)
            if (memo !== undefined && validated.length === values.length && validated.every((v, k) => v === values[k])) memo.set(types, true)
          }
        }
        result = impl.apply({ environment: undefined, input, options: { sequence: rc.maxItems }, createSequence }, validated)
      } catch {
        throw BAIL
      }
      if (result !== null && typeof result === 'object') {
        // An asynchronous result (a wrapper that delegated to an asynchronous built-in): the
        // reference evaluates this input; the abandoned promise's outcome is not ours to report.
        if (typeof (result as { then?: unknown }).then === 'function') { (result as Promise<unknown>).then(undefined, () => {}); throw BAIL }
        if (typeof (result as { next?: unknown }).next === 'function') throw BAIL
      }
      if (isFunctionValue(result)) throw BAIL
      return result
    }
  }
}

/** The reference's post-processing of every node's result. */
function post (r: unknown, keepArray: boolean): unknown {
  if (r !== undefined && r !== null && Array.isArray(r) && (r as Seq).sequence === true && (r as Seq).tupleStream !== true) {
    const s = r as Seq
    if (keepArray) s.keepSingleton = true
    if (s.length === 0) return undefined
    if (s.length === 1) return s.keepSingleton === true ? s : s[0]
  }
  return r
}

/** evaluateWildcard */
function wildcard (input: unknown, rc: RunContext): unknown {
  let results: unknown = createSequence()
  let v = input
  if (Array.isArray(v) && (v as Seq).outerWrapper === true && v.length > 0) v = v[0]
  if (v !== null && typeof v === 'object') {
    if (isFunctionValue(v)) throw BAIL
    for (const key of Object.keys(v)) {
      const value = (v as Record<string, unknown>)[key]
      if (Array.isArray(value)) results = append(results, flatten(value), rc)
      else (results as unknown[]).push(value)
    }
  }
  return results
}

/** evaluateDescendants */
function descendants (input: unknown): unknown {
  if (input === undefined) return undefined
  const out = createSequence()
  const recurse = (v: unknown): void => {
    if (!Array.isArray(v)) out.push(v)
    if (Array.isArray(v)) for (const m of v) recurse(m)
    else if (v !== null && typeof v === 'object') {
      if (isFunctionValue(v)) throw BAIL
      for (const k of Object.keys(v)) recurse((v as Record<string, unknown>)[k])
    }
  }
  recurse(input)
  return out.length === 1 ? out[0] : out
}

/**
 * Compiles a (post-processed) JSONata syntax tree. `functions`: what the expression may call
 * (functionTable). Returns the reason when the expression is left to the reference.
 */
export function compileTree (ast: unknown, functions: FunctionTable): CompileResult {
  let body: Closure
  try {
    body = new Compiler(functions, boundNames(ast)).node(ast as Node)
  } catch (err) {
    if (err instanceof NotCompiled) return { ok: false, reason: err.message }
    throw err
  }
  const h = height(ast)
  return {
    ok: true,
    height: h,
    run: (input, deadline, timestamp, maxItems) => {
      // jsonata.evaluate: `$$` is the input as given; an array input is wrapped as a sequence.
      let i = input
      if (Array.isArray(input) && !isSequence(input)) {
        const s = createSequence(input)
        s.outerWrapper = true
        i = s
      }
      return body(i, { vars: undefined, parent: undefined }, { deadline, timestamp, maxItems, root: input })
    },
  }
}
