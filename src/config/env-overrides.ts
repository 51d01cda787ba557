/**
 * `LORABRIDGE_…` environment overrides, guided by the schema so that camelCase keys need no
 * special spelling: `LORABRIDGE_LOG_LEVEL=debug` sets `log.level`,
 * `LORABRIDGE_MQTT_TLS_CLIENT_CERTIFICATES=required` sets `mqtt.tls.clientCertificates`,
 * `LORABRIDGE_MQTT_LISTENERS_0_PORT=0` sets one listener's port, and
 * `LORABRIDGE_MQTT_LISTENERS='[…]'` (JSON) replaces the whole list.
 */
import type { TSchema } from '@sinclair/typebox'
import type { ConfigIssue } from './issues.js'
import { closest } from '../util/suggest.js'

export const ENV_PREFIX = 'LORABRIDGE_'
/** Variables with the prefix that are not configuration keys. */
const RESERVED = new Set(['LORABRIDGE_CONFIG'])

type Json = Record<string, unknown>
type Segment = string | number

interface Resolved { path: Segment[], leaf: TSchema }

function fold (s: string): string {
  return s.toLowerCase().replace(/_/g, '')
}

/** The object or array schema under unions/optionals, if any. */
function branches (schema: TSchema): TSchema[] {
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf
  return Array.isArray(anyOf) ? anyOf : [schema]
}

function resolve (schema: TSchema, tokens: string[]): Resolved | undefined {
  if (tokens.length === 0) return { path: [], leaf: schema }
  for (const branch of branches(schema)) {
    if (branch.type === 'object' && branch.properties !== undefined) {
      const props = branch.properties as Record<string, TSchema>
      // Longest match first, so `CLIENT_CERTIFICATES` finds `clientCertificates`.
      for (let take = tokens.length; take >= 1; take--) {
        const wanted = fold(tokens.slice(0, take).join('_'))
        const key = Object.keys(props).find(k => k.toLowerCase() === wanted)
        if (key === undefined) continue
        const rest = resolve(props[key] as TSchema, tokens.slice(take))
        if (rest !== undefined) return { path: [key, ...rest.path], leaf: rest.leaf }
      }
    }
    if (branch.type === 'array' && /^\d+$/.test(tokens[0] ?? '')) {
      const rest = resolve(branch.items as TSchema, tokens.slice(1))
      if (rest !== undefined) return { path: [Number(tokens[0]), ...rest.path], leaf: rest.leaf }
    }
  }
  return undefined
}

function leafTypes (schema: TSchema): Set<string> {
  const types = new Set<string>()
  for (const b of branches(schema)) {
    if (typeof b.type === 'string') types.add(b.type)
    if (b.const !== undefined) types.add(typeof b.const)
  }
  return types
}

function parseValue (raw: string, schema: TSchema): { value: unknown } | { error: string } {
  const types = leafTypes(schema)
  if (types.has('object') || types.has('array')) {
    try { return { value: JSON.parse(raw) } } catch { return { error: 'expected JSON for an object or list' } }
  }
  if (types.has('integer') || types.has('number')) {
    const n = Number(raw)
    return raw.trim() !== '' && Number.isFinite(n) ? { value: n } : { error: `expected a number, got "${raw}"` }
  }
  if (types.has('boolean')) {
    if (/^(true|1|yes|on)$/i.test(raw)) return { value: true }
    if (/^(false|0|no|off)$/i.test(raw)) return { value: false }
    return { error: `expected true or false, got "${raw}"` }
  }
  return { value: raw }
}

function setAt (target: Json, path: Segment[], value: unknown): void {
  let node: Record<string | number, unknown> = target
  path.forEach((seg, i) => {
    if (i === path.length - 1) { node[seg] = value; return }
    const next = node[seg]
    if (next === null || typeof next !== 'object') node[seg] = typeof path[i + 1] === 'number' ? [] : {}
    node = node[seg] as Record<string | number, unknown>
  })
}

/** Every variable name the schema answers to (objects and lists too, as JSON; no list indexes). */
function variableNames (schema: TSchema, prefix: string, out: string[] = []): string[] {
  for (const branch of branches(schema)) {
    if (branch.type !== 'object' || branch.properties === undefined) continue
    for (const [key, sub] of Object.entries(branch.properties as Record<string, TSchema>)) {
      const name = `${prefix}${prefix === '' ? '' : '_'}${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`
      out.push(name)
      variableNames(sub, name, out)
    }
  }
  return out
}

/** Applies every `LORABRIDGE_…` variable onto `raw` (mutated); returns the problems found. */
export function applyEnvOverrides (raw: Json, schema: TSchema, env: NodeJS.ProcessEnv): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const names = Object.keys(env).filter(n => n.startsWith(ENV_PREFIX) && !RESERVED.has(n)).sort()
  for (const name of names) {
    const value = env[name]
    if (value === undefined) continue
    const tokens = name.slice(ENV_PREFIX.length).split('_').filter(t => t !== '')
    const found = resolve(schema, tokens)
    if (found === undefined) {
      // Compared without the prefix they all share, so that it does not make any name look close.
      const near = closest(name.slice(ENV_PREFIX.length), variableNames(schema, ''))
      issues.push({ path: `env:${name}`, message: `names no configuration option${near === undefined ? '' : `; did you mean ${ENV_PREFIX}${near}?`}`, code: 'LB_ERR_CONFIG_ENV' })
      continue
    }
    const parsed = parseValue(value, found.leaf)
    if ('error' in parsed) {
      issues.push({ path: `env:${name}`, message: parsed.error, code: 'LB_ERR_CONFIG_ENV' })
      continue
    }
    setAt(raw, found.path, parsed.value)
  }
  return issues
}
