/**
 * Size bounds that keep every single step of a rule evaluation short. JSONata checks its time
 * budget between evaluation steps only, so one step that builds a 50-million-character string, a
 * 10-million-entry range or sorts a huge array holds the event loop for as long as it takes (and a
 * string of 2^27 characters turned into an array of characters aborts the process). With strings
 * at most MAX_STRING characters and sequences at most MAX_ITEMS entries, and the few built-ins
 * whose cost is worse than linear given a faster equivalent, no step costs more than a few tens of
 * milliseconds (docs/rules.md, "Limits": measured 20–40 ms at the bounds).
 *
 * String concatenation (`&`) is an operator, not a function, so it is rewritten in the syntax tree
 * into a call of a bounded equivalent; the string-building built-ins are re-registered with a size
 * check before (when the size is known from the arguments) or after (when the output is at most a
 * small multiple of inputs that are already bounded).
 */
import jsonata from 'jsonata'

/** Longest string an expression may build (characters). */
export const MAX_STRING = 100_000
/** Longest sequence or range an expression may build (JSONata's `sequence` option; its own cap is 10 million). */
export const MAX_ITEMS = 100_000
/** $distinct compares every pair of objects (about 0.6 µs a pair): at most this many values when objects are among them. */
export const MAX_DISTINCT_OBJECTS = 200
/** One use of a regex ($match, $replace, $split …) finds at most this many matches (each costs about 2 µs). */
export const MAX_MATCHES = 10_000

/** An evaluation that asked for more than a bound allows; reported as LB_ERR_RULE_LIMIT. */
export class BoundExceeded extends Error {
  readonly code = 'LB_ERR_RULE_LIMIT'
}

/** 1234567 → "1,234,567" (toLocaleString loads locale data on first use, slowly). */
export const grouped = (n: number): string => String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')

const tooLong = (what: string, n: number): BoundExceeded =>
  new BoundExceeded(`${what} would be ${grouped(n)} characters long; rules may build strings of at most ${grouped(MAX_STRING)}`)

interface JsonataFunction { implementation: (...args: unknown[]) => unknown }

/** JSONata's own implementations of the built-ins wrapped below (a fresh expression sees only the built-ins). */
const ORIGINAL = await jsonata('{ "pad": $pad, "string": $string, "sort": $sort, "distinct": $distinct, "replace": $replace, "formatNumber": $formatNumber, "formatInteger": $formatInteger, "encodeUrl": $encodeUrl, "encodeUrlComponent": $encodeUrlComponent, "base64encode": $base64encode }').evaluate({}) as Record<string, JsonataFunction>

function original (name: string): JsonataFunction['implementation'] {
  const f = ORIGINAL[name]
  if (f === undefined) throw new Error(`JSONata has no $${name}`)
  return f.implementation
}

/** Rough length of a value written as JSON, counting shared parts every time they appear; stops once past `limit`. */
export function jsonSize (value: unknown, limit: number): number {
  let size = 0
  const stack: unknown[] = [value]
  while (stack.length > 0 && size <= limit) {
    const v = stack.pop()
    if (typeof v === 'string') size += v.length + 2
    else if (v === null || typeof v !== 'object') size += 8
    // Functions are written as "" (JSONata's lambdas are objects holding their environment).
    else if ('_jsonata_lambda' in v || '_jsonata_function' in v) size += 2
    else if (Array.isArray(v)) { size += 2 + v.length; for (const x of v) stack.push(x) }
    else for (const [k, x] of Object.entries(v)) { size += k.length + 4; stack.push(x) }
  }
  return size
}

function checked (what: string, s: unknown): unknown {
  if (typeof s === 'string' && s.length > MAX_STRING) throw tooLong(what, s.length)
  return s
}

/** Builds a value's string as $string does, refusing values whose JSON would be too long. */
function boundedString (this: unknown, arg: unknown, prettify: unknown = false): unknown {
  if (arg !== null && typeof arg === 'object') {
    const size = jsonSize(arg, MAX_STRING)
    if (size > MAX_STRING) throw tooLong('$string\'s result', size)
  }
  return checked('$string\'s result', original('string').call(this, arg, prettify))
}

const isNumbers = (a: unknown[]): boolean => a.every(x => typeof x === 'number')
const isStrings = (a: unknown[]): boolean => a.every(x => typeof x === 'string')

interface Bounded { name: string, signature: string, fn: (this: unknown, ...args: unknown[]) => unknown }

/** Built-ins re-registered on every rule expression. Signatures are JSONata's own. */
export const BOUNDED_FUNCTIONS: Bounded[] = [
  {
    name: '__lbConcat', // what `a & b` is rewritten to; see rewriteConcatenation
    signature: '<x?x?:s>',
    fn (lhs, rhs) {
      const l = lhs === undefined ? '' : boundedString.call(this, lhs) as string
      const r = rhs === undefined ? '' : boundedString.call(this, rhs) as string
      if (l.length + r.length > MAX_STRING) throw tooLong('a string built with &', l.length + r.length)
      return l.concat(r)
    },
  },
  {
    name: 'pad',
    signature: '<s-ns?:s>',
    fn (str, width, char) {
      if (typeof width === 'number' && Math.abs(width) > MAX_STRING) throw tooLong('$pad\'s result', Math.abs(width))
      return original('pad').call(this, str, width, char)
    },
  },
  {
    name: 'join',
    signature: '<a<s>s?:s>',
    fn (strs, separator) {
      if (strs === undefined) return undefined
      const list = strs as string[]
      const sep = typeof separator === 'string' ? separator : ''
      let n = Math.max(0, list.length - 1) * sep.length
      for (const s of list) n += s.length
      if (n > MAX_STRING) throw tooLong('$join\'s result', n)
      return list.join(sep)
    },
  },
  { name: 'string', signature: '<x-b?:s>', fn: boundedString },
  {
    name: 'clone',
    signature: '<(oa)-:o>',
    fn (arg) {
      if (arg === undefined) return undefined
      const size = jsonSize(arg, MAX_STRING)
      if (size > MAX_STRING) throw tooLong('the JSON $clone goes through', size)
      return JSON.parse(boundedString.call(this, arg) as string) as unknown
    },
  },
  // Outputs at most a small multiple of bounded inputs: checked after.
  ...(['replace', 'formatNumber', 'formatInteger', 'encodeUrl', 'encodeUrlComponent', 'base64encode'] as const).map((name): Bounded => ({
    name,
    signature: { replace: '<s-(sf)(sf)n?:s>', formatNumber: '<n-so?:s>', formatInteger: '<n-s:s>', encodeUrl: '<s-:s>', encodeUrlComponent: '<s-:s>', base64encode: '<s-:s>' }[name],
    // Synchronous where JSONata's own is ($replace is asynchronous: its replacement may be a function).
    fn (...args) {
      const out = original(name).apply(this, args)
      return out instanceof Promise ? out.then(v => checked(`$${name}'s result`, v)) : checked(`$${name}'s result`, out)
    },
  })),
  {
    name: 'sort',
    signature: '<af?:a>',
    fn (arr, comparator) {
      // JSONata's default-order sort copies the rest of the array at every comparison, outside
      // the time checks; for numbers or strings alone the native stable sort gives the same order.
      if (comparator === undefined && Array.isArray(arr) && arr.length > 1 && (isNumbers(arr) || isStrings(arr))) {
        return [...arr].sort((a, b) => (a as number) > (b as number) ? 1 : (b as number) > (a as number) ? -1 : 0)
      }
      return original('sort').call(this, arr, comparator)
    },
  },
  {
    name: 'distinct',
    signature: '<x:x>',
    fn (arr) {
      // JSONata compares every pair; for values without structure a set gives the same result.
      if (!Array.isArray(arr) || arr.length <= 1) return original('distinct').call(this, arr)
      if (arr.every(v => v === null || typeof v !== 'object')) {
        const out = (arr as { sequence?: boolean }).sequence === true ? (this as { createSequence: () => unknown[] }).createSequence() : []
        for (const v of new Set(arr)) out.push(v)
        return out
      }
      if (arr.length > MAX_DISTINCT_OBJECTS) throw new BoundExceeded(`$distinct on ${grouped(arr.length)} values with objects or arrays among them; at most ${grouped(MAX_DISTINCT_OBJECTS)}`)
      return original('distinct').call(this, arr)
    },
  },
  {
    name: 'eval',
    signature: '<sx?:x>',
    fn () {
      // Text evaluated at run time would escape the compile-time rewriting and regex checks.
      throw new BoundExceeded('$eval is not available in rules')
    },
  },
]

// JSONata passes a higher-order function's callback as many arguments as the callback declares
// (`$map(a, $string)` gives $string the value only): keep each built-in's own arity.
for (const b of BOUNDED_FUNCTIONS) {
  const o = ORIGINAL[b.name]
  if (o !== undefined) Object.defineProperty(b.fn, 'length', { value: o.implementation.length })
}

interface Node { type?: string, value?: unknown, position?: number, [k: string]: unknown }

/**
 * Rewrites every `lhs & rhs` of a compiled expression into `$__lbConcat(lhs, rhs)` (same
 * semantics, bounded), and gives every regex literal to `onRegex`. JSONata evaluates the very tree
 * it returns from `ast()`, so the rewrite is done in place.
 */
export function rewriteTree (root: unknown, onRegex: (re: RegExp, position: number | undefined) => void): void {
  const seen = new Set<unknown>()
  const visit = (n: unknown): void => {
    if (n === null || typeof n !== 'object' || seen.has(n) || n instanceof RegExp) return
    seen.add(n)
    if (Array.isArray(n)) { for (const x of n) visit(x); return }
    const node = n as Node
    if (node.type === 'regex' && node.value instanceof RegExp) onRegex(node.value, node.position)
    for (const v of Object.values(node)) visit(v)
    if (node.type === 'binary' && node.value === '&') {
      const { lhs, rhs, position } = node
      for (const k of Object.keys(node)) delete node[k]
      Object.assign(node, { type: 'function', value: '(', position, arguments: [lhs, rhs], procedure: { type: 'variable', value: '__lbConcat', position } })
    }
  }
  visit(root)
}
