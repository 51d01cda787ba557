/**
 * `lorabridge rules check [DIR]` and `lorabridge rules test FILE|DIR --event EVENT.json`: the
 * daemon's own compiler and engine, without a daemon, so a dry run gives the daemon's result.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Config } from '../config/schema.js'
import type { EventKind } from '../model/events.js'
import { compileRuleFile, formatRuleError, EVENT_KINDS, type CompiledFile, type RuleError } from '../rules/compile.js'
import { RulesEngine, type DeadLetter, type Publication } from '../rules/engine.js'
import type { Expression } from '../rules/expression.js'

async function ruleFiles (path: string): Promise<string[]> {
  const st = await stat(path)
  if (!st.isDirectory()) return [path]
  return (await readdir(path)).filter(n => /\.ya?ml$/i.test(n)).sort().map(n => join(path, n))
}

async function compileAll (path: string): Promise<{ compiled: CompiledFile[], errors: RuleError[] }> {
  const compiled: CompiledFile[] = []
  const errors: RuleError[] = []
  for (const f of await ruleFiles(path)) {
    const r = await compileRuleFile(f)
    if (r.ok) compiled.push(r.compiled)
    else errors.push(...r.errors)
  }
  return { compiled, errors }
}

export async function rulesCheck (config: Config, dir: string | undefined): Promise<void> {
  const path = dir !== undefined ? resolve(dir) : config.rules.dir
  const { compiled, errors } = await compileAll(path)
  for (const e of errors) process.stderr.write(formatRuleError(e) + '\n')
  const rules = compiled.reduce((n, c) => n + c.rules.length, 0)
  const decoders = compiled.reduce((n, c) => n + c.decoders.length, 0)
  process.stdout.write(`${path}: ${compiled.length} file${compiled.length === 1 ? '' : 's'} ok, ${rules} rule${rules === 1 ? '' : 's'}, ${decoders} decoder${decoders === 1 ? '' : 's'}${errors.length > 0 ? `; ${errors.length} error${errors.length === 1 ? '' : 's'}` : ''}\n`)
  // Which expressions run compiled, and which on the reference evaluator (slower), and why.
  const onReference: string[] = []
  let expressions = 0
  const note = (file: string, where: string, e: Expression | undefined): void => {
    if (e === undefined) return
    expressions++
    const engine = e.engine
    if (engine.kind === 'reference') onReference.push(`  ${file}: ${where} runs on the reference evaluator: ${engine.reason}`)
  }
  const codecs = compiled.flatMap(c => c.decoders.filter(d => d.codec?.codec !== undefined).map(d => `  ${c.file}: decoder "${d.name}" runs codec ${d.codec!.path} (${d.codec!.codec!.forms.forms.join(', ')}${d.codec!.codec!.forms.encodeDownlink ? '; encodes downlinks' : ''})`))
  if (codecs.length > 0) process.stdout.write(`${codecs.length} codec${codecs.length === 1 ? '' : 's'} loaded:\n${codecs.join('\n')}\n`)
  for (const c of compiled) {
    for (const d of c.decoders) note(c.file, `decoder "${d.name}" decode`, d.decode)
    for (const r of c.rules) {
      note(c.file, `rule "${r.name}" if`, r.condition)
      note(c.file, `rule "${r.name}" downlink`, r.downlink)
      note(c.file, `rule "${r.name}" publish.topic`, r.publish?.topic)
      note(c.file, `rule "${r.name}" publish.payload`, r.publish?.payload)
    }
  }
  if (expressions > 0) process.stdout.write(`${expressions - onReference.length} of ${expressions} expression${expressions === 1 ? '' : 's'} compiled to synchronous code${onReference.length > 0 ? `; ${onReference.length} on the reference evaluator:\n${onReference.join('\n')}` : ''}\n`)
  if (errors.length > 0) process.exitCode = 1
}

export interface DryRun {
  on: EventKind
  decoder?: string
  /** The decoder's codec file, when it is one. */
  codec?: string
  decoded?: unknown
  decodeWarnings?: string[]
  decodeErrors?: string[]
  matched: string[]
  rules: Array<{ rule: string, file: string, passed: boolean, downlinks: unknown[], publications: Publication[], errors: unknown[] }>
  downlinks: Array<{ app: string, devEui: string, request: Record<string, unknown> }>
  publications: Publication[]
  deadLetters: DeadLetter[]
}

/** Evaluates the rules on one event as the daemon would; pure apart from reading the files. */
export async function dryRun (config: Config, compiled: CompiledFile[], on: EventKind, event: Record<string, unknown>): Promise<DryRun> {
  const downlinks: DryRun['downlinks'] = []
  const publications: Publication[] = []
  const deadLetters: DeadLetter[] = []
  const engine = new RulesEngine({
    topicRoot: config.topics.root,
    budget: { timeoutMs: config.rules.timeoutMs, maxDepth: config.rules.maxDepth },
    maxChainDepth: config.rules.maxChainDepth,
    sink: {
      downlink: async (app, devEui, _request, body) => { downlinks.push({ app, devEui, request: body }) },
      publish: async p => { publications.push(p) },
      deadLetter: async d => { deadLetters.push(d) },
    },
  })
  for (const c of compiled) engine.setFile(c)
  const e = { ...event }
  const decoding = on === 'up' ? await engine.decode(e) : {}
  const evaluation = await engine.evaluate(on, e, 0)
  return {
    on,
    ...(decoding.decoder !== undefined ? { decoder: decoding.decoder } : {}),
    ...('codec' in decoding && decoding.codec !== undefined ? { codec: decoding.codec } : {}),
    ...(e.decoded !== undefined ? { decoded: e.decoded } : {}),
    ...(Array.isArray(e.decodeWarnings) ? { decodeWarnings: e.decodeWarnings as string[] } : {}),
    ...(Array.isArray(e.decodeErrors) ? { decodeErrors: e.decodeErrors as string[] } : {}),
    matched: evaluation.matched,
    rules: evaluation.results,
    downlinks,
    publications,
    deadLetters,
  }
}

export async function rulesTest (config: Config, path: string, opts: { event: string, on: string }): Promise<void> {
  if (!(EVENT_KINDS as string[]).includes(opts.on)) throw new Error(`--on must be one of ${EVENT_KINDS.join(', ')}`)
  const { compiled, errors } = await compileAll(resolve(path))
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(formatRuleError(e) + '\n')
    process.exitCode = 1
    return
  }
  const event = JSON.parse(await readFile(resolve(opts.event), 'utf8')) as Record<string, unknown>
  process.stdout.write(JSON.stringify(await dryRun(config, compiled, opts.on as EventKind, event), null, 2) + '\n')
}
