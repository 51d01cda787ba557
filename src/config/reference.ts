/**
 * The configuration reference (docs/configuration.md), generated from the schema so that it cannot
 * drift: `npm run docs:config` writes it, and a test fails when the committed file differs.
 */
import type { TSchema } from '@sinclair/typebox'
import { ConfigSchema } from './schema.js'

interface Row { path: string, type: string, defaultValue: string, description: string }

function typeOf (s: TSchema): string {
  if (Array.isArray(s.anyOf)) {
    const consts = (s.anyOf as TSchema[]).map(b => b.const)
    if (consts.every(c => c !== undefined)) return consts.map(c => `\`${String(c)}\``).join(' | ')
    return (s.anyOf as TSchema[]).map(typeOf).join(' | ')
  }
  if (s.type === 'array') return `list of ${typeOf(s.items as TSchema)}`
  if (s.type === 'object' && s.properties === undefined) return 'map'
  const base = String(s.type ?? 'any')
  const bounds: string[] = []
  if (s.minimum !== undefined) bounds.push(`≥ ${String(s.minimum)}`)
  if (s.exclusiveMinimum !== undefined) bounds.push(`> ${String(s.exclusiveMinimum)}`)
  if (s.maximum !== undefined) bounds.push(`≤ ${String(s.maximum)}`)
  if (s.pattern !== undefined) bounds.push(`pattern \`${String(s.pattern)}\``)
  return bounds.length > 0 ? `${base} (${bounds.join(', ')})` : base
}

function walk (s: TSchema, path: string, rows: Row[], required: boolean): void {
  const isObject = s.type === 'object' && s.properties !== undefined
  const isObjectList = s.type === 'array' && (s.items as TSchema).type === 'object'
  if (path !== '') {
    const showDefault = s.default !== undefined && !(isObject && JSON.stringify(s.default) === '{}')
    rows.push({
      path,
      type: isObject ? 'object' : typeOf(s),
      defaultValue: showDefault ? `\`${JSON.stringify(s.default)}\`` : required && !isObject ? '(required)' : '',
      description: String(s.description ?? ''),
    })
  }
  if (isObject) {
    const req = new Set((s.required as string[] | undefined) ?? [])
    for (const [key, child] of Object.entries(s.properties as Record<string, TSchema>)) {
      walk(child, path === '' ? key : `${path}.${key}`, rows, req.has(key) && child.default === undefined)
    }
  } else if (isObjectList) {
    const items = s.items as TSchema
    const req = new Set((items.required as string[] | undefined) ?? [])
    for (const [key, child] of Object.entries(items.properties as Record<string, TSchema>)) {
      walk(child, `${path}[].${key}`, rows, req.has(key) && child.default === undefined)
    }
  }
}

export function configurationReference (): string {
  const rows: Row[] = []
  walk(ConfigSchema, '', rows, false)
  const esc = (t: string): string => t.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`; do not edit by hand. -->',
    '',
    'lorabridge reads one YAML file: `-c FILE`, else `$LORABRIDGE_CONFIG`, else `./lorabridge.yaml` when present,',
    'else built-in defaults. Every key is optional. `lorabridge config check` validates a file and prints each',
    'problem with its path.',
    '',
    '**Environment overrides.** `LORABRIDGE_` followed by the path in upper case with `_` between words sets',
    'one option: `LORABRIDGE_LOG_LEVEL=debug`, `LORABRIDGE_REDIS_URL=redis://redis:6379`,',
    '`LORABRIDGE_MQTT_TLS_CLIENT_CERTIFICATES=required`. List items are addressed by index',
    '(`LORABRIDGE_MQTT_LISTENERS_0_PORT=0`); a list or object can be given whole as JSON',
    "(`LORABRIDGE_MQTT_LISTENERS='[{\"protocol\":\"mqtt\",\"host\":\"127.0.0.1\",\"port\":1883}]'`). Overrides apply",
    'on top of the file and the defaults; an unknown `LORABRIDGE_…` variable is an error.',
    '',
    '**Paths.** `dataDir`, `auth.usersFile` and `rules.dir` are relative to the configuration file (or the',
    'working directory without one); the certificate files of `mqtt.tls` and `http.listeners[].tls` are',
    'relative to `dataDir`, where the development certificates are generated.',
    '',
    '| option | type | default | description |',
    '|---|---|---|---|',
    ...rows.map(r => `| \`${r.path}\` | ${esc(r.type)} | ${esc(r.defaultValue)} | ${esc(r.description)} |`),
    '',
  ].join('\n')
}
