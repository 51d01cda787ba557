/**
 * Reads the configuration once: YAML file, then `LORABRIDGE_…` overrides, then one validation
 * against the schema (defaults filled, every problem collected with its path), then checks the
 * schema cannot express, then path resolution, then a deep freeze.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Ajv } from 'ajv'
import { parseDocument } from 'yaml'
import { ConfigSchema, type Config } from './schema.js'
import { applyEnvOverrides } from './env-overrides.js'
import { ConfigError, formatPointer, type ConfigIssue } from './issues.js'
import { deepFreeze } from '../util/freeze.js'
import { isLoopbackHost } from '../util/net.js'
import { closest } from '../util/suggest.js'
import { fileIssues } from './files.js'

export const DEFAULT_CONFIG_FILE = 'lorabridge.yaml'

export interface LoadOptions {
  /** `-c FILE`; when absent, `LORABRIDGE_CONFIG`, then `./lorabridge.yaml` if present, else defaults only. */
  file?: string | undefined
  env?: NodeJS.ProcessEnv
  cwd?: string
  /**
   * Check that the secrets the configuration names in environment variables are set (default
   * true). Commands that never use them (users, rules, certs) pass false, so that an operator
   * need not hold the ThingPark AS key to add a user.
   */
  secrets?: boolean
  /**
   * Check that the certificate, key, CA and CRL files the configuration names exist, are readable
   * and hold PEM of the right kind (default false). `config check` and `start` pass true; commands
   * such as `certs init`, which may be what creates them, do not.
   */
  files?: boolean
}

export interface LoadedConfig {
  config: Config
  /** The file read, if any. */
  file: string | undefined
}

// verbose: errors carry their schema, whose known properties give "did you mean …?" for a typo.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true })
const validate = ajv.compile(ConfigSchema)

function chooseFile (opts: LoadOptions, cwd: string): { file: string | undefined, explicit: boolean } {
  const named = opts.file ?? opts.env?.LORABRIDGE_CONFIG
  if (named !== undefined && named !== '') return { file: resolve(cwd, named), explicit: true }
  const implicit = resolve(cwd, DEFAULT_CONFIG_FILE)
  return { file: existsSync(implicit) ? implicit : undefined, explicit: false }
}

function readYaml (file: string): { raw: Record<string, unknown>, issues: ConfigIssue[] } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return { raw: {}, issues: [{ path: '(file)', message: `cannot read: ${(err as Error).message}`, code: 'LB_ERR_CONFIG_PARSE' }] }
  }
  const doc = parseDocument(text, { prettyErrors: true })
  if (doc.errors.length > 0) {
    return {
      raw: {},
      issues: doc.errors.map(e => ({
        path: e.linePos ? `(line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '(file)',
        message: e.message.split('\n')[0] ?? e.message,
        code: 'LB_ERR_CONFIG_PARSE' as const,
      })),
    }
  }
  let value: unknown
  try {
    // The YAML library reports some problems (an alias without its anchor) only here, by throwing.
    value = doc.toJS()
  } catch (err) {
    return { raw: {}, issues: [{ path: '(file)', message: (err as Error).message, code: 'LB_ERR_CONFIG_PARSE' }] }
  }
  if (value === null || value === undefined) return { raw: {}, issues: [] }
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { raw: {}, issues: [{ path: '(root)', message: 'must be a mapping of options', code: 'LB_ERR_CONFIG_INVALID' }] }
  }
  return { raw: value as Record<string, unknown>, issues: [] }
}

function schemaIssues (): ConfigIssue[] {
  return (validate.errors ?? []).map((e): ConfigIssue | undefined => {
    let path = formatPointer(e.instancePath)
    let message = e.message ?? 'is invalid'
    if (e.keyword === 'additionalProperties') {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty)
      path = path === '(root)' ? extra : `${path}.${extra}`
      const known = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {})
      const suggestion = closest(extra, known)
      message = suggestion !== undefined ? `is not a known option; did you mean ${suggestion}?` : 'is not a known option'
    } else if (e.keyword === 'anyOf' || e.keyword === 'const') {
      return undefined // the enum summary below says it once
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`
    }
    return { path, message, code: 'LB_ERR_CONFIG_INVALID' }
  }).filter((i): i is ConfigIssue => i !== undefined).concat(unionIssues())
}

/** Ajv reports a failed union of literals as one error per branch; say it once, with the choices. */
function unionIssues (): ConfigIssue[] {
  const byPath = new Map<string, Set<string>>()
  for (const e of validate.errors ?? []) {
    if (e.keyword !== 'const') continue
    const set = byPath.get(e.instancePath) ?? new Set<string>()
    set.add(String((e.params as { allowedValue: unknown }).allowedValue))
    byPath.set(e.instancePath, set)
  }
  return [...byPath].map(([pointer, allowed]) => ({
    path: formatPointer(pointer),
    message: `must be one of ${[...allowed].join(', ')}`,
    code: 'LB_ERR_CONFIG_INVALID' as const,
  }))
}

/** Rules the schema cannot state: cross-field and uniqueness checks. */
function semanticIssues (c: Config, env: NodeJS.ProcessEnv, secrets: boolean): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const add = (path: string, message: string): void => { issues.push({ path, message, code: 'LB_ERR_CONFIG_INVALID' }) }
  c.mqtt.listeners.forEach((l, i) => {
    // PRODUCT.md §6: anonymous access only on the loopback listener.
    if (l.anonymous && !isLoopbackHost(l.host)) add(`mqtt.listeners[${i}].anonymous`, `anonymous access is only allowed on a loopback host, not ${l.host}`)
  })
  const appNames = new Set<string>()
  c.applications.forEach((a, i) => {
    if (a.name === 'gateways' || a.name === '_bridge') add(`applications[${i}].name`, `"${a.name}" is reserved`)
    if (appNames.has(a.name)) add(`applications[${i}].name`, `duplicate application "${a.name}"`)
    appNames.add(a.name)
  })
  const tpNames = new Set<string>()
  const tpPaths = new Set<string>()
  c.thingpark.connections.forEach((t, i) => {
    if (tpNames.has(t.name)) add(`thingpark.connections[${i}].name`, `duplicate connection "${t.name}"`)
    if (tpPaths.has(t.path)) add(`thingpark.connections[${i}].path`, `duplicate path "${t.path}"`)
    tpNames.add(t.name); tpPaths.add(t.path)
    if ((t.asKey === undefined) === (t.asKeyEnv === undefined)) add(`thingpark.connections[${i}]`, 'needs exactly one of asKey or asKeyEnv')
    else if (secrets && t.asKeyEnv !== undefined && !/^[0-9a-fA-F]{32}$/.test(env[t.asKeyEnv] ?? '')) add(`thingpark.connections[${i}].asKeyEnv`, `environment variable ${t.asKeyEnv} must hold the AS key (32 hex digits)`)
  })
  return issues
}

function resolvePaths (c: Config, baseDir: string): void {
  const mutable = c as { dataDir: string, auth: { usersFile?: string, bansFile?: string }, rules: { dir: string } }
  mutable.dataDir = resolve(baseDir, c.dataDir)
  mutable.auth.usersFile = c.auth.usersFile === undefined
    ? resolve(mutable.dataDir, 'users.yaml')
    : resolve(baseDir, c.auth.usersFile)
  mutable.auth.bansFile = c.auth.bansFile === undefined
    ? resolve(mutable.dataDir, 'bans.yaml')
    : resolve(baseDir, c.auth.bansFile)
  mutable.rules.dir = resolve(baseDir, c.rules.dir)
  const redisTls = c.redis?.tls as Record<string, string | undefined> | undefined
  for (const k of ['ca', 'cert', 'key'] as const) {
    const p = redisTls?.[k]
    if (p !== undefined) redisTls![k] = resolve(mutable.dataDir, p)
  }
}

/** Returns every problem instead of throwing; `config check` prints them all. */
export function checkConfig (opts: LoadOptions = {}): { config?: Config, file: string | undefined, issues: ConfigIssue[] } {
  const cwd = opts.cwd ?? process.cwd()
  const env = opts.env ?? process.env
  const { file, explicit } = chooseFile({ ...opts, env }, cwd)
  const issues: ConfigIssue[] = []
  let raw: Record<string, unknown> = {}
  if (file !== undefined) {
    if (explicit && !existsSync(file)) return { file, issues: [{ path: '(file)', message: 'does not exist', code: 'LB_ERR_CONFIG_PARSE' }] }
    const read = readYaml(file)
    raw = read.raw
    issues.push(...read.issues)
  }
  // A first pass only fills defaults (its verdict is ignored), so that an override such as
  // LORABRIDGE_MQTT_LISTENERS_0_PORT changes the default listener instead of creating a listener
  // with nothing but a port. The verdict that counts comes after the overrides.
  validate(raw)
  issues.push(...applyEnvOverrides(raw, ConfigSchema, env))
  if (!validate(raw)) issues.push(...schemaIssues())
  if (issues.length > 0) return { file, issues }
  const config = raw as unknown as Config
  issues.push(...semanticIssues(config, env, opts.secrets ?? true))
  if (issues.length > 0) return { file, issues }
  resolvePaths(config, file !== undefined ? dirname(file) : cwd)
  if (opts.files === true) issues.push(...fileIssues(config))
  if (issues.length > 0) return { file, issues }
  return { config: deepFreeze(config), file, issues }
}

/** Loads and validates once; throws a ConfigError listing every problem. */
export function loadConfig (opts: LoadOptions = {}): LoadedConfig {
  const { config, file, issues } = checkConfig(opts)
  if (config === undefined) throw new ConfigError(issues, file)
  return { config, file }
}

/** Paths in `mqtt.tls` are relative to dataDir, where the development certificates live. */
export function dataPath (config: Config, p: string): string {
  return isAbsolute(p) ? p : resolve(config.dataDir, p)
}
