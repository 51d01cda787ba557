/**
 * Rule files in `rules.dir`, loaded on start and reloaded when they change (debounced). A file
 * that fails keeps its last good version running; the loaded set, its errors and every rule's
 * counters are published retained on `{root}/_bridge/rules`, and each evaluation error on
 * `{root}/_bridge/rules/errors`.
 */
import { readdir } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { Component } from '../component.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics.js'
import type { EventBus } from '../core/bus.js'
import type { EventKind } from '../model/events.js'
import { carryCodecCounters, compileRuleFile, disposeCodecs, formatRuleError, type CompiledFile, type RuleError } from './compile.js'
import { RulesEngine, type DeadLetter, type RuleSink } from './engine.js'
import type { Cooldowns } from '../store/cluster-state.js'
import type { DownlinkHandler, EncodeResult } from '../core/adapter.js'
import type { RuleRunner } from '../core/pipeline.js'

const RULE_FILE = /\.ya?ml$/i
const CODEC_FILE = /\.[cm]?js$/i
const DEBOUNCE_MS = 100
const STATUS_INTERVAL_MS = 5000

/** `codecFiles`: what the latest version names (absolute paths), whether or not it compiled. */
interface FileState { good: CompiledFile | undefined, errors: RuleError[], loadedAt: string, codecFiles: string[] }

export class RulesComponent implements Component, RuleRunner {
  readonly name = 'rules'
  readonly engine: RulesEngine
  private readonly files = new Map<string, FileState>()
  private watcher: FSWatcher | undefined
  private readonly debounce = new Map<string, NodeJS.Timeout>()
  private statusTimer: NodeJS.Timeout | undefined
  private dirty = false
  private started = false
  private stopped = false

  constructor (private readonly deps: { config: Config, bus: EventBus, log: Logger, metrics: Metrics, cooldowns: Cooldowns }) {
    const { config, bus, metrics } = deps
    const root = config.topics.root
    // Downlinks are handed to the pipeline's router by the pipeline itself (react).
    const sink: RuleSink = {
      publish: p => bus.publish(p.topic, p.payload, { qos: p.qos, retain: p.retain }),
      deadLetter: async (d: DeadLetter) => {
        metrics.ruleDeadLetters.inc({ stage: d.stage })
        deps.log.warn({ code: d.code, rule: d.rule, file: d.file, line: d.line, column: d.column, path: d.path, function: d.function, operator: d.operator, stage: d.stage, eventId: d.eventId, devEui: d.devEui, reason: d.message }, 'rule evaluation failed')
        await bus.publish(`${root}/_bridge/rules/errors`, d, { qos: 1 })
      },
    }
    this.engine = new RulesEngine({
      topicRoot: root,
      budget: { timeoutMs: config.rules.timeoutMs, maxDepth: config.rules.maxDepth },
      maxChainDepth: config.rules.maxChainDepth,
      sink,
      cooldowns: deps.cooldowns,
      onCount: (rule, counter) => {
        this.dirty = true
        metrics.ruleEvents.inc({ rule, counter })
      },
      onCodecCall: (codec, operation, result) => {
        this.dirty = true
        metrics.codecCalls.inc({ codec, operation, result })
      },
    })
  }

  private get codecLimits (): { timeoutMs: number, memoryBytes: number } {
    const c = this.deps.config.rules.codecs
    return { timeoutMs: c.timeoutMs, memoryBytes: c.memoryMiB * 1024 * 1024 }
  }

  async start (): Promise<void> {
    const dir = this.deps.config.rules.dir
    let names: string[] = []
    let exists = true
    try {
      names = (await readdir(dir)).filter(n => RULE_FILE.test(n)).sort()
    } catch (err) {
      exists = false
      this.deps.log.warn({ dir, reason: (err as Error).message }, 'no rules directory; running without rules')
    }
    for (const n of names) await this.load(join(dir, n), false)
    this.started = true
    await this.publishStatus()
    this.statusTimer = setInterval(() => { if (this.dirty) void this.publishStatus() }, STATUS_INTERVAL_MS)
    this.statusTimer.unref()
    if (this.deps.config.rules.watch && exists) {
      // Codec files may sit in subdirectories (codecs/…); rule files only at the top.
      this.watcher = watch(dir, { ignoreInitial: true, depth: 3, persistent: false })
      this.watcher.on('all', (event, path) => {
        if (!['add', 'change', 'unlink'].includes(event)) return
        const ruleFile = RULE_FILE.test(path) && resolve(join(dir, basename(path))) === resolve(path)
        if (ruleFile) {
          this.later(path, () => event === 'unlink' ? this.unload(path) : this.load(path, true))
        } else if (CODEC_FILE.test(path)) {
          // A codec changed: reload the rule files that name it (their decoders get the new version, or keep the last good one).
          for (const [file, state] of this.files) {
            if (state.codecFiles.includes(resolve(path))) this.later(join(dir, file), () => this.load(join(dir, file), true))
          }
        }
      })
    }
    const { rules, decoders } = this.engine.loaded()
    this.deps.log.info({ dir, files: names.length, rules: rules.length, decoders: decoders.length }, 'rules loaded')
  }

  /** Editors write in several steps (truncate, write, rename): act on the last one. */
  private later (path: string, action: () => Promise<void>): void {
    clearTimeout(this.debounce.get(path))
    this.debounce.set(path, setTimeout(() => {
      this.debounce.delete(path)
      action().catch((err: unknown) => { this.deps.log.error({ err, path }, 'rule reload failed') })
    }, DEBOUNCE_MS))
  }

  /** The pipeline's encoder (RuleRunner): a downlink request's `object`, through the device's codec. */
  async encode (device: { app: string, devEui: string, network: string }, object: Record<string, unknown>, fPort: number | undefined): Promise<EncodeResult> {
    return this.engine.encode(device, object, fPort)
  }

  /** The pipeline's decoders (RuleRunner): before an uplink is published, once the rules are loaded. */
  async decode (event: Record<string, unknown>): Promise<void> {
    if (this.started) await this.engine.decode(event)
  }

  /** The pipeline's rules (RuleRunner): after an event is published, off its path. */
  react (kind: EventKind, event: Record<string, unknown>, downlink: DownlinkHandler): void {
    if (!this.started) return
    this.engine.evaluate(kind, event, undefined, downlink).catch((err: unknown) => { this.deps.log.error({ err, kind }, 'rules evaluation crashed') })
  }

  private async load (path: string, publish: boolean): Promise<void> {
    const file = basename(path)
    const result = await compileRuleFile(path, { codecLimits: this.codecLimits })
    const prev = this.files.get(file)
    if (!this.started && this.stopped) {
      // Stopped while this file compiled: its codecs' engines must not outlive the daemon.
      if (result.ok) disposeCodecs(result.compiled)
      return
    }
    if (result.ok) {
      this.engine.setFile(result.compiled)
      // The replaced version's codec engines are freed once nothing can call them (calls are
      // synchronous); their counters go on in the new engines, as rules' counters do.
      if (prev?.good !== undefined) {
        carryCodecCounters(prev.good, result.compiled)
        disposeCodecs(prev.good)
      }
      this.files.set(file, { good: result.compiled, errors: [], loadedAt: new Date().toISOString(), codecFiles: result.codecFiles })
      this.deps.log.info({ file, rules: result.compiled.rules.length, decoders: result.compiled.decoders.length }, 'rule file loaded')
    } else {
      // Keep the last good version running; report where the problem is.
      this.files.set(file, { good: prev?.good, errors: result.errors, loadedAt: prev?.loadedAt ?? new Date().toISOString(), codecFiles: result.codecFiles })
      for (const e of result.errors) this.deps.log.error({ code: e.code, file: e.file, line: e.line, column: e.column, path: e.path, reason: e.message }, formatRuleError(e))
    }
    if (publish) await this.publishStatus()
  }

  private async unload (path: string): Promise<void> {
    const file = basename(path)
    this.engine.removeFile(file)
    const good = this.files.get(file)?.good
    if (good !== undefined) disposeCodecs(good)
    this.files.delete(file)
    this.deps.log.info({ file }, 'rule file removed')
    await this.publishStatus()
  }

  status (): Record<string, unknown> {
    const { rules, decoders } = this.engine.loaded()
    return {
      files: [...this.files].sort(([a], [b]) => a.localeCompare(b)).map(([file, s]) => ({
        file,
        ok: s.errors.length === 0,
        loadedAt: s.loadedAt,
        rules: s.good?.rules.map(r => r.name) ?? [],
        decoders: s.good?.decoders.map(d => d.name) ?? [],
        ...(s.errors.length > 0 ? { errors: s.errors } : {}),
      })),
      rules: rules.map(r => ({ name: r.name, file: r.file, on: [...r.on], counters: { ...this.engine.counters(r.id) } })),
      decoders: decoders.map(d => {
        const c = d.codec?.codec
        if (d.codec === undefined || c === undefined) return { name: d.name, file: d.file }
        const k = c.counters
        return { name: d.name, file: d.file, codec: { path: d.codec.path, forms: c.forms.forms, encodes: c.forms.encodeDownlink, calls: k.calls, ok: k.ok, failed: k.failed, failures: { ...k.byCode }, restarts: c.rebuilds } }
      }),
    }
  }

  async publishStatus (): Promise<void> {
    if (!this.started) return
    this.dirty = false
    await this.deps.bus.publish(`${this.deps.config.topics.root}/_bridge/rules`, this.status(), { qos: 1, retain: true }).catch((err: unknown) => {
      this.deps.log.warn({ err }, 'could not publish the rules status')
    })
  }

  async stop (): Promise<void> {
    this.started = false
    this.stopped = true
    clearInterval(this.statusTimer)
    for (const t of this.debounce.values()) clearTimeout(t)
    await this.watcher?.close()
    for (const s of this.files.values()) if (s.good !== undefined) disposeCodecs(s.good)
  }
}
