/**
 * Rule-file validation errors that name the key or value at fault. A schema validator reports a
 * wrong value of a union (`on: uplink`) as every branch's failure (`must be equal to constant`,
 * `must be array`, `must match a schema in anyOf`); this walks the same schema along the value and
 * says what is wrong in the user's terms: `unknown event kind "uplink" (did you mean "up"?); one of
 * up, join, …`, `unknown key "iff" (did you mean "if"?)`, `must be true or false (got "yes")`.
 *
 * It understands the subset of JSON Schema the rule-file schema uses (objects, arrays, unions,
 * literals, strings, integers, booleans). Schemas may carry `noun` (what a value or an object is
 * called in messages) and `description` (what a pattern means).
 */
import { didYouMean } from './suggest.js'

export interface Schema {
  anyOf?: Schema[]
  const?: unknown
  type?: string
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean
  items?: Schema
  minItems?: number
  minLength?: number
  maxLength?: number
  pattern?: string
  minimum?: number
  maximum?: number
  noun?: string
  description?: string
}

export interface SchemaIssue {
  path: Array<string | number>
  message: string
  /** Set for an unknown key: the issue is at the key itself, not at its value. */
  key?: string
}

/** How a value reads in a message. */
export function shown (v: unknown): string {
  if (v === null || v === undefined) return 'nothing'
  // A value is echoed into logs and the status: a long one only by its start.
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return 'a list'
  return 'a mapping'
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

function range (s: Schema): string {
  if (s.minimum !== undefined && s.maximum !== undefined) return ` from ${s.minimum} to ${s.maximum}`
  if (s.minimum !== undefined) return ` of at least ${s.minimum}`
  if (s.maximum !== undefined) return ` of at most ${s.maximum}`
  return ''
}

export function explain (s: Schema, v: unknown, path: Array<string | number> = []): SchemaIssue[] {
  if (s.anyOf !== undefined) return union(s, v, path)
  if ('const' in s) return v === s.const ? [] : [{ path, message: `must be ${shown(s.const)} (got ${shown(v)})` }]
  switch (s.type) {
    case 'object': {
      const noun = s.noun ?? 'this mapping'
      if (!isMapping(v)) return [{ path, message: `must be a mapping of keys (${noun}; got ${shown(v)})` }]
      const known = Object.keys(s.properties ?? {})
      const issues: SchemaIssue[] = []
      for (const k of s.required ?? []) if (!(k in v)) issues.push({ path, message: `${noun} needs "${k}"` })
      for (const [k, x] of Object.entries(v)) {
        const p = s.properties?.[k]
        if (p !== undefined) issues.push(...explain(p, x, [...path, k]))
        else if (s.additionalProperties === false) issues.push({ path: [...path, k], key: k, message: `unknown key ${shown(k)}${didYouMean(k, known)}; ${noun} has ${known.join(', ')}` })
      }
      return issues
    }
    case 'array':
      if (!Array.isArray(v)) return [{ path, message: `must be a list (got ${shown(v)})` }]
      if (s.minItems !== undefined && v.length < s.minItems) return [{ path, message: s.minItems === 1 ? 'must not be an empty list' : `must list at least ${s.minItems}` }]
      return s.items === undefined ? [] : v.flatMap((x, i) => explain(s.items!, x, [...path, i]))
    case 'string':
      // `downlink: { "fPort": 1 }` is YAML's mapping, not the JSONata object it looks like.
      if (typeof v !== 'string') return [{ path, message: `must be ${s.description ?? 'a string'} (got ${shown(v)}${v !== null && typeof v === 'object' ? '; write an expression in quotes or after |' : ''})` }]
      if (s.minLength !== undefined && v.length < s.minLength) return [{ path, message: 'must not be empty' }]
      if (s.maxLength !== undefined && v.length > s.maxLength) return [{ path, message: `must be at most ${s.maxLength} characters long (${v.length})` }]
      if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v)) return [{ path, message: `${shown(v)} is not ${s.description ?? `of the form ${s.pattern}`}` }]
      return []
    case 'integer':
    case 'number':
      if (typeof v !== 'number' || (s.type === 'integer' && !Number.isInteger(v))) return [{ path, message: `must be ${s.type === 'integer' ? 'an integer' : 'a number'}${range(s)} (got ${shown(v)})` }]
      if ((s.minimum !== undefined && v < s.minimum) || (s.maximum !== undefined && v > s.maximum)) return [{ path, message: `${v} is out of range: must be${range(s)}` }]
      return []
    case 'boolean':
      return typeof v === 'boolean' ? [] : [{ path, message: `must be true or false (got ${shown(v)})` }]
    default:
      return []
  }
}

/** A union: a value or a list of them, or one of a few literals. */
function union (s: Schema, v: unknown, path: Array<string | number>): SchemaIssue[] {
  const branches = s.anyOf ?? []
  const list = branches.find(b => b.type === 'array')
  const literals = branches.filter(b => 'const' in b)
  const others = branches.filter(b => b !== list && !('const' in b))
  if (Array.isArray(v) && list !== undefined) return explain(list, v, path)
  const orList = list !== undefined ? ' (or a list of them)' : ''
  if (literals.length > 0 && others.length === 0) {
    if (literals.some(l => l.const === v)) return []
    const allowed = literals.map(l => String(l.const))
    const noun = s.noun ?? list?.items?.noun
    if (typeof v === 'string' && noun !== undefined) return [{ path, message: `unknown ${noun} ${shown(v)}${didYouMean(v, allowed)}; one of ${allowed.join(', ')}${orList}` }]
    return [{ path, message: `must be one of ${allowed.join(', ')}${orList} (got ${shown(v)})` }]
  }
  if (literals.length === 0 && others.length === 1) {
    const issues = explain(others[0]!, v, path)
    // A scalar of the wrong type may have been meant as a list: say both are allowed.
    return list !== undefined ? issues.map(i => i.message.startsWith('must be ') && i.path === path ? { ...i, message: i.message.replace(/ \(got /, `${orList} (got `) } : i) : issues
  }
  return []
}
