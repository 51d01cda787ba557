/**
 * Regular expressions in rules run on RE2 (re2js, a pure-JavaScript port): matching takes time
 * linear in the input, so a pattern like `/(a+)+$/` cannot backtrack for seconds on an uplink's
 * text. JSONata lets the host choose its regex engine (`RegexEngine`); it constructs one per regex
 * literal per evaluation and then only sets `lastIndex` and calls `exec`, which is what this class
 * provides. Patterns RE2 cannot run in linear time (backreferences, lookaround) are refused when
 * the rule file is compiled, with the place of the literal.
 */
import { RE2JS } from 're2js'
import { BoundExceeded, MAX_MATCHES, MAX_STRING, grouped } from './bounds.js'

/** Compiled patterns by source and flags: JSONata builds a new engine object at every evaluation. */
const cache = new Map<string, RE2JS>()
const CACHE_MAX = 1000

/** Compiles a JavaScript RegExp for RE2; throws RE2's syntax error when the pattern is not supported. */
export function toRe2 (re: RegExp): RE2JS {
  const key = `${re.flags}/${re.source}`
  let compiled = cache.get(key)
  if (compiled === undefined) {
    // JSONata adds `g` to every literal; RE2 has no such flag (the scan position is ours).
    compiled = RE2JS.compile(RE2JS.translateRegExp(new RegExp(re.source, re.flags.replace('g', ''))))
    if (cache.size >= CACHE_MAX) cache.clear()
    cache.set(key, compiled)
  }
  return compiled
}

/** Why a regex literal cannot be used in a rule, or undefined when RE2 runs it. */
export function regexRefusal (re: RegExp): string | undefined {
  try {
    toRe2(re)
    return undefined
  } catch (err) {
    return `regular expression /${re.source}/ is not supported (rules use a linear-time engine, RE2: no backreferences or lookaround): ${(err as Error).message}`
  }
}

type ExecResult = string[] & { index: number, input: string }

/** The part of RegExp that JSONata uses: `lastIndex` and a global `exec`. */
export class LinearRegExp {
  lastIndex = 0
  private readonly re2: RE2JS
  /** JSONata makes one engine object per evaluation of the literal, so this counts one use's matches. */
  private matches = 0

  constructor (re: RegExp) {
    this.re2 = toRe2(re)
  }

  exec (input: string): ExecResult | null {
    // RE2 is linear, but in JavaScript about 0.2 µs a character: bound the text and the matches too.
    if (input.length > MAX_STRING) throw new BoundExceeded(`a regular expression on ${grouped(input.length)} characters; at most ${grouped(MAX_STRING)}`)
    if (++this.matches > MAX_MATCHES) throw new BoundExceeded(`a regular expression that finds more than ${grouped(MAX_MATCHES)} matches in one use`)
    const m = this.re2.matcher(input)
    if (this.lastIndex > input.length || !m.find(this.lastIndex)) {
      this.lastIndex = 0
      return null
    }
    const groups: string[] = []
    for (let i = 0; i <= m.groupCount(); i++) groups.push(m.group(i) ?? (undefined as unknown as string))
    const result = Object.assign(groups, { index: m.start(), input })
    this.lastIndex = m.end()
    return result
  }
}
