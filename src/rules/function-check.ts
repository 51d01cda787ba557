/**
 * Unknown functions are compile errors (`$hexx(bytes)` would otherwise pass `rules check` and fail
 * at run time with "Attempted to invoke a non-function"). A call or partial application whose
 * procedure is a `$name` is refused when the name is none of JSONata's functions, none of the
 * payload helpers, and bound nowhere in the expression.
 *
 * Deliberately conservative: a name bound anywhere (`$f := …`, a lambda parameter, a focus `@$x`
 * or index `#$i` binding) counts as bound everywhere in the expression, whatever the scope, so a
 * valid expression is never refused; only names that can never be a function are. Calls of
 * computed procedures (`$f.g()`, `(expr)()`) and functions used as values (`$map(a, $nope)`) are
 * not judged.
 */
import { didYouMean } from './suggest.js'

interface Node { type?: string, value?: unknown, position?: number, procedure?: Node, arguments?: Node[], lhs?: unknown, focus?: unknown, index?: unknown, [k: string]: unknown }

export interface UnknownFunction {
  /** As written (its first 60 characters). */
  name: string
  /** 1-based offset of the `$` of the call in the expression (as JSONata counts positions). */
  position: number | undefined
  partial: boolean
  message: string
}

function visit (root: unknown, each: (n: Node) => void): void {
  const seen = new Set<unknown>()
  const walk = (n: unknown): void => {
    if (n === null || typeof n !== 'object' || n instanceof RegExp || seen.has(n)) return
    seen.add(n)
    if (Array.isArray(n)) { for (const x of n) walk(x); return }
    each(n as Node)
    for (const v of Object.values(n)) walk(v)
  }
  walk(root)
}

/** Every variable name the expression binds anywhere. */
export function boundAnywhere (ast: unknown): Set<string> {
  const bound = new Set<string>()
  visit(ast, n => {
    if (n.type === 'bind' && (n.lhs as Node | undefined)?.type === 'variable') bound.add(String((n.lhs as Node).value))
    if (n.type === 'lambda') for (const a of n.arguments ?? []) if (a.type === 'variable') bound.add(String(a.value))
    if (typeof n.focus === 'string') bound.add(n.focus)
    if (typeof n.index === 'string') bound.add(n.index)
  })
  return bound
}

/** The first call of a function the expression cannot have, in source order; `known`: every function name it may call. */
export function unknownFunction (ast: unknown, known: ReadonlySet<string>): UnknownFunction | undefined {
  const bound = boundAnywhere(ast)
  const found: UnknownFunction[] = []
  visit(ast, n => {
    if (n.type !== 'function' && n.type !== 'partial') return
    const proc = n.procedure
    if (proc?.type !== 'variable' || typeof proc.value !== 'string') return
    const name = proc.value
    // `$` and `$$` (the context and the root) are not function names.
    if (name === '' || name === '$' || known.has(name) || bound.has(name)) return
    const candidates = [...known, ...bound].filter(k => !k.startsWith('__')).map(k => `$${k}`)
    // JSONata gives the position of the name's last character.
    const position = typeof proc.position === 'number' ? proc.position - name.length : undefined
    // Echoed into logs and the status: a long name only by its start.
    const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name
    found.push({ name: shown, position, partial: n.type === 'partial', message: `unknown function $${shown}${didYouMean(`$${name}`, candidates, false)}` })
  })
  return found.sort((a, b) => (a.position ?? 0) - (b.position ?? 0))[0]
}
