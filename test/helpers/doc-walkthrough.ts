/**
 * Runs a document's shell walkthrough as a reader would: every annotated `sh` block in order, with
 * bash, in a fresh directory holding a copy of `rules/`, `npx lorabridge` being this checkout's
 * bin/lorabridge.js and the document's ports swapped for free ones. The HTML comment on the line
 * before each block (`<!-- PREFIX: … -->`) says how to run it; docs/quickstart.md's "How this page
 * is tested" describes the annotations:
 *
 *   skip (reason)               not run
 *   terminal=N                  run in terminal N (exports carry over to later blocks of N)
 *   background                  keep it running; wait-for="text" waits for that text in its output
 *   expect="text"               (foreground) its output must contain the text; it must exit 0
 *   name=NAME                   labels the block's output
 *   interrupt=NAME[,NAME…]      first press Ctrl-C in those background blocks' terminals (SIGINT to
 *                               their process groups) and wait for each to end
 *   output=NAME (text blocks)   each line must appear, in order, in NAME's output; `…` = any text
 *   file=PATH (yaml blocks)     the block must equal that file of the checkout
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BIN } from './cli.js'
import { freePort } from './redis-server.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const WAIT_MS = 30_000
const COMMAND_MS = 60_000

export type Attrs = Record<string, string | true>

export interface Block {
  lang: string
  code: string
  /** the `<!-- PREFIX: … -->` comment on the line before the fence, parsed; undefined without one */
  attrs: Attrs | undefined
  /** 1-based line of the opening fence */
  line: number
}

/** Fenced blocks with the annotation on the line right before each fence. */
export function parseBlocks (markdown: string, prefix: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  const noteRe = new RegExp(`^<!-- ${prefix}: (.*) -->$`)
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] as string)
    if (open === null) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] as string); i++) body.push(lines[i] as string)
    const note = noteRe.exec(lines[start - 1] ?? '')
    blocks.push({ lang: open[1] as string, code: body.join('\n'), attrs: note === null ? undefined : parseAttrs(note[1] as string), line: start + 1 })
  }
  return blocks
}

export function parseAttrs (text: string): Attrs {
  if (/^skip\b/.test(text)) return { skip: true }
  const attrs: Attrs = {}
  for (const m of text.matchAll(/([\w-]+)(?:=(?:"([^"]*)"|'([^']*)'|(\S+)))?/g)) {
    attrs[m[1] as string] = m[2] ?? m[3] ?? m[4] ?? true
  }
  return attrs
}

/** A doc line with `…` as a wildcard, as a whole-line pattern. */
export function linePattern (docLine: string): RegExp {
  return new RegExp(`^${docLine.split('…').map(s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`)
}

/** Index of the first doc line that is not found, in order, in the output (-1 when all are). */
export function firstMissing (docLines: string[], output: string): number {
  const out = output.split('\n')
  let at = 0
  for (let k = 0; k < docLines.length; k++) {
    const line = docLines[k] as string
    if (line.trim() === '…') continue
    const re = linePattern(line)
    while (at < out.length && !re.test(out[at] as string)) at++
    if (at === out.length) return k
    at++
  }
  return -1
}

/** `output`: stdout and stderr as a terminal shows them; `stdout` alone (the daemon's JSON log lines, whole). */
export interface Background {
  name: string
  child: ChildProcess
  output: () => string
  stdout: () => string
  /** after its output is read to the end */
  exited: Promise<unknown>
  /** when bash itself ended: [code, signal] (a job it left running may hold the output open) */
  ended: Promise<[number | null, NodeJS.Signals | null]>
}

export function sleep (ms: number): Promise<void> { return new Promise(resolve => setTimeout(resolve, ms)) }

export async function until (what: string, check: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

/** Ends a process group started with `detached: true`: SIGTERM, then SIGKILL if it lingers. */
async function endGroup (child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.pid === undefined) return
  const kill = (signal: NodeJS.Signals): boolean => { try { process.kill(-(child.pid as number), signal); return true } catch { return false } }
  if (!kill('SIGTERM')) return // the whole group is gone
  const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])
  if (!done) { kill('SIGKILL'); await Promise.race([exited, sleep(5_000)]) }
}

/** NUL-separated `env -0` output back into an environment. */
function parseEnv (dump: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const entry of dump.split('\0')) {
    const i = entry.indexOf('=')
    if (i > 0) env[entry.slice(0, i)] = entry.slice(i + 1)
  }
  return env
}

export interface WalkthroughOptions {
  /** the document, absolute */
  doc: string
  /** the annotation prefix: `<!-- PREFIX: … -->` */
  prefix: string
  /** the ports the document uses; each is swapped for a free one in commands and expected output */
  ports: readonly number[]
  /** extra environment of every block, given the swapped ports (e.g. LORABRIDGE_… listener overrides) */
  env?: (ports: ReadonlyMap<number, number>) => NodeJS.ProcessEnv
}

export class DocWalkthrough {
  root = ''
  work = ''
  doc = ''
  blocks: Block[] = []
  readonly ports = new Map<number, number>()
  readonly outputs = new Map<string, () => string>()
  readonly background: Background[] = []
  /** foreground blocks' process groups: a job a block left running (`cmd &`) ends with the test */
  private readonly foreground: Array<{ child: ChildProcess, exited: Promise<unknown> }> = []
  /** terminal → the environment its blocks exported so far */
  readonly terminals = new Map<string, NodeJS.ProcessEnv>()
  /** exit status of each interrupted background block, by name (code, or the signal's name) */
  readonly interrupted = new Map<string, number | string | null>()
  private readonly killAll = (): void => {
    for (const b of [...this.background, ...this.foreground]) if (b.child.pid !== undefined) { try { process.kill(-b.child.pid, 'SIGKILL') } catch { /* gone */ } }
  }

  constructor (readonly opts: WalkthroughOptions) {}

  async setup (): Promise<void> {
    this.doc = await readFile(this.opts.doc, 'utf8')
    this.blocks = parseBlocks(this.doc, this.opts.prefix)
    this.root = await mkdtemp(join(tmpdir(), `lorabridge-${this.opts.prefix}-`))
    this.work = join(this.root, 'lorabridge')
    await mkdir(join(this.root, 'bin'))
    await cp(join(ROOT, 'rules'), join(this.work, 'rules'), { recursive: true })
    // `npx lorabridge` from the clone runs its bin; here the same file, through a shim on PATH.
    const shim = join(this.root, 'bin', 'lorabridge')
    await writeFile(shim, `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`)
    await chmod(shim, 0o755)
    const seen = new Set<number>()
    for (const p of this.opts.ports) {
      let free = await freePort()
      while (seen.has(free)) free = await freePort()
      seen.add(free)
      this.ports.set(p, free)
    }
    // Should the test process die first, its process groups must not outlive it.
    process.once('exit', this.killAll)
  }

  async cleanup (): Promise<void> {
    process.off('exit', this.killAll)
    for (const b of [...this.background].reverse()) await endGroup(b.child, b.exited)
    for (const f of this.foreground) await endGroup(f.child, f.exited)
    if (this.root !== '') await rm(this.root, { recursive: true, force: true })
  }

  substitute (text: string): string {
    const ports = this.opts.ports
    return text
      .replace(/\bnpx lorabridge\b/g, 'lorabridge')
      .replace(new RegExp(`\\b(${ports.join('|')})\\b`, 'g'), p => String(this.ports.get(Number(p))))
  }

  out (name: string): string {
    const o = this.outputs.get(name)
    if (o === undefined) throw new Error(`no block named ${name}`)
    return o()
  }

  jsonLines (name: string): Array<Record<string, unknown>> {
    return this.out(name).split('\n').flatMap(l => {
      try { const v: unknown = JSON.parse(l); return typeof v === 'object' && v !== null ? [v as Record<string, unknown>] : [] } catch { return [] }
    })
  }

  /** `topic payload` lines of mosquitto_sub -v, payloads parsed. */
  messages (name = 'subscriber'): Array<{ topic: string, payload: Record<string, unknown> }> {
    return this.out(name).split('\n').flatMap(l => {
      const i = l.indexOf(' ')
      if (i < 0) return []
      try { return [{ topic: l.slice(0, i), payload: JSON.parse(l.slice(i + 1)) as Record<string, unknown> }] } catch { return [] }
    })
  }

  /** Ctrl-C in a background block's terminal: SIGINT to its group, then wait for bash to end. */
  async interrupt (name: string): Promise<number | string | null> {
    const b = this.background.find(x => x.name === name)
    if (b?.child.pid === undefined) throw new Error(`no background block named ${name}`)
    try { process.kill(-b.child.pid, 'SIGINT') } catch { /* already gone */ }
    const [code, signal] = await Promise.race([b.ended, sleep(15_000).then(() => ['timeout', null] as const)])
    // Its last output read too, unless a job it left running holds the pipe open.
    await Promise.race([b.exited, sleep(5_000)])
    const status = code ?? signal
    this.interrupted.set(name, status)
    return status
  }

  /** Runs every annotated, not skipped `sh` block in order; a foreground block must exit 0. */
  async runAll (check: (ok: boolean, message: string) => void): Promise<void> {
    const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LORABRIDGE_') && k !== 'TP_KEY'))
    baseEnv.PATH = `${join(this.root, 'bin')}:${process.env.PATH ?? ''}`
    Object.assign(baseEnv, this.opts.env?.(this.ports))
    let step = 0
    for (const b of this.blocks) {
      if (b.lang !== 'sh' || b.attrs === undefined || b.attrs.skip === true) continue
      if (typeof b.attrs.interrupt === 'string') {
        for (const name of b.attrs.interrupt.split(',')) await this.interrupt(name.trim())
      }
      const terminal = String(b.attrs.terminal)
      const env = this.terminals.get(terminal) ?? { ...baseEnv }
      const code = this.substitute(b.code)
      const name = typeof b.attrs.name === 'string' ? b.attrs.name : `block-${b.line}`
      let output = ''
      if (b.attrs.background === true) {
        const child = spawn('bash', ['-c', code], { cwd: this.work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        child.stdout?.on('data', (d: Buffer) => { output += d.toString(); stdout += d.toString() })
        child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
        const exited = once(child, 'close') // after its output is read to the end
        const ended = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
        this.background.push({ name, child, output: () => output, stdout: () => stdout, exited, ended })
        this.outputs.set(name, () => output)
        const waitFor = b.attrs['wait-for']
        if (typeof waitFor === 'string') {
          await until(`"${waitFor}" from the block at line ${b.line}`, () => {
            if (child.exitCode !== null || child.signalCode !== null) throw new Error(`background block at line ${b.line} ended (${child.exitCode ?? child.signalCode}): ${output}`)
            return output.includes(this.substitute(waitFor))
          })
        }
        continue
      }
      const state = join(this.root, `env-${step++}`)
      const child = spawn('bash', ['-c', `set -eo pipefail\n${code}\nenv -0 > '${state}'`], { cwd: this.work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout.on('data', (d: Buffer) => { output += d.toString() })
      child.stderr.on('data', (d: Buffer) => { output += d.toString() })
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
      this.foreground.push({ child, exited: once(child, 'close') })
      const timer = setTimeout(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch { /* gone */ } }, COMMAND_MS)
      const [exitCode, signal] = await exited
      clearTimeout(timer)
      check(exitCode === 0 && signal === null, `block at line ${b.line} ended with ${exitCode ?? signal}:\n${output}`)
      if (typeof b.attrs.expect === 'string') {
        const expected = this.substitute(b.attrs.expect)
        check(output.includes(expected), `block at line ${b.line}: expected ${JSON.stringify(expected)} in:\n${output}`)
      }
      this.outputs.set(name, () => output)
      // What the block exported stays for the later blocks of its terminal.
      this.terminals.set(terminal, parseEnv(await readFile(state, 'utf8')))
    }
  }

  /** Every `text` block with output=NAME: its lines, in order, in NAME's output (waits for late output). */
  async unmatchedTextBlocks (): Promise<string[]> {
    const problems: string[] = []
    for (const b of this.blocks.filter(x => x.lang === 'text' && typeof x.attrs?.output === 'string')) {
      const name = b.attrs?.output as string
      const docLines = this.substitute(b.code).split('\n')
      try {
        await until(`the text block at line ${b.line}`, () => firstMissing(docLines, this.out(name)) === -1)
      } catch {
        const k = firstMissing(docLines, this.out(name))
        problems.push(`${this.opts.doc}:${b.line + 1 + k}: not in the output of "${name}":\n  ${docLines[k]}\noutput:\n${this.out(name)}`)
      }
    }
    return problems
  }
}
