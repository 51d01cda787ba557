/**
 * docs/quickstart.md, run as a newcomer would: every `sh` block in order, with bash, in a fresh
 * directory holding a copy of `rules/`, `npx lorabridge` being this checkout's bin/lorabridge.js
 * and the page's ports (1883, 8883, 8080, 9090) swapped for free ones. The HTML comment before each
 * block says how to run it (the page's "How this page is tested" section); the `text` blocks that
 * show what the reader sees are matched against what the commands printed, and the outcomes the
 * page promises are checked on top: normalized uplinks on the subscriber, the rule's downlinks at
 * the simulated Conduit and, signed, at the simulated LRC, then down/queued and down/sent; and
 * Ctrl-C (SIGINT to each process group) stops the daemon with status 0.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BIN } from './helpers/cli.js'
import { freePort } from './helpers/redis-server.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DOC = join(ROOT, 'docs', 'quickstart.md')
const DOC_PORTS = [1883, 8883, 8080, 9090] as const
const WAIT_MS = 30_000
const COMMAND_MS = 60_000

type Attrs = Record<string, string | true>

interface Block {
  lang: string
  code: string
  /** the `<!-- quickstart: … -->` comment on the line before the fence, parsed; undefined without one */
  attrs: Attrs | undefined
  line: number
}

/** Fenced blocks with the annotation on the line right before each fence. */
function parseBlocks (markdown: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] as string)
    if (open === null) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] as string); i++) body.push(lines[i] as string)
    const note = /^<!-- quickstart: (.*) -->$/.exec(lines[start - 1] ?? '')
    blocks.push({ lang: open[1] as string, code: body.join('\n'), attrs: note === null ? undefined : parseAttrs(note[1] as string), line: start + 1 })
  }
  return blocks
}

function parseAttrs (text: string): Attrs {
  if (/^skip\b/.test(text)) return { skip: true }
  const attrs: Attrs = {}
  for (const m of text.matchAll(/([\w-]+)(?:=(?:"([^"]*)"|'([^']*)'|(\S+)))?/g)) {
    attrs[m[1] as string] = m[2] ?? m[3] ?? m[4] ?? true
  }
  return attrs
}

/** A doc line with `…` as a wildcard, as a whole-line pattern. */
function linePattern (docLine: string): RegExp {
  return new RegExp(`^${docLine.split('…').map(s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`)
}

/** Index of the first doc line that is not found, in order, in the output (-1 when all are). */
function firstMissing (docLines: string[], output: string): number {
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
interface Background { name: string, child: ChildProcess, output: () => string, stdout: () => string, exited: Promise<unknown> }

function sleep (ms: number): Promise<void> { return new Promise(resolve => setTimeout(resolve, ms)) }

async function until (what: string, check: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

/** Ends a process group started with `detached: true`: SIGTERM, then SIGKILL if it lingers. */
async function endGroup (child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const kill = (signal: NodeJS.Signals): void => { try { process.kill(-(child.pid as number), signal) } catch { /* already gone */ } }
  kill('SIGTERM')
  const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])
  if (!done) { kill('SIGKILL'); await exited }
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

describe('docs/quickstart.md, run as written', () => {
  let root: string
  let work: string
  const ports = new Map<number, number>()
  const outputs = new Map<string, () => string>()
  const background: Background[] = []
  let blocks: Block[]
  let doc: string

  const substitute = (text: string): string => text
    .replace(/\bnpx lorabridge\b/g, 'lorabridge')
    .replace(new RegExp(`\\b(${DOC_PORTS.join('|')})\\b`, 'g'), p => String(ports.get(Number(p))))
  const out = (name: string): string => {
    const o = outputs.get(name)
    if (o === undefined) throw new Error(`no block named ${name}`)
    return o()
  }
  const jsonLines = (name: string): Array<Record<string, unknown>> => out(name).split('\n').flatMap(l => {
    try { const v: unknown = JSON.parse(l); return typeof v === 'object' && v !== null ? [v as Record<string, unknown>] : [] } catch { return [] }
  })
  /** `topic payload` lines of mosquitto_sub -v, payloads parsed. */
  const messages = (): Array<{ topic: string, payload: Record<string, unknown> }> => out('subscriber').split('\n').flatMap(l => {
    const i = l.indexOf(' ')
    if (i < 0) return []
    try { return [{ topic: l.slice(0, i), payload: JSON.parse(l.slice(i + 1)) as Record<string, unknown> }] } catch { return [] }
  })

  beforeAll(async () => {
    doc = await readFile(DOC, 'utf8')
    blocks = parseBlocks(doc)
    root = await mkdtemp(join(tmpdir(), 'lorabridge-quickstart-'))
    work = join(root, 'lorabridge')
    await mkdir(join(root, 'bin'))
    await cp(join(ROOT, 'rules'), join(work, 'rules'), { recursive: true })
    // `npx lorabridge` from the clone runs its bin; here the same file, through a shim on PATH.
    const shim = join(root, 'bin', 'lorabridge')
    await writeFile(shim, `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`)
    await chmod(shim, 0o755)
    const seen = new Set<number>()
    for (const p of DOC_PORTS) {
      let free = await freePort()
      while (seen.has(free)) free = await freePort()
      seen.add(free)
      ports.set(p, free)
    }
  })

  // Should the test process die first, its background groups must not outlive it.
  const killAll = (): void => {
    for (const b of background) if (b.child.pid !== undefined && b.child.exitCode === null) { try { process.kill(-b.child.pid, 'SIGKILL') } catch { /* gone */ } }
  }
  process.once('exit', killAll)

  afterAll(async () => {
    process.off('exit', killAll)
    for (const b of background.reverse()) await endGroup(b.child, b.exited)
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('annotates every sh and text block, and shows rules/quickstart.yaml as it is', async () => {
    const shell = blocks.filter(b => b.lang === 'sh')
    expect(shell.length).toBeGreaterThan(8)
    for (const b of shell) {
      expect(b.attrs, `sh block at docs/quickstart.md:${b.line} has no <!-- quickstart: … --> comment`).toBeDefined()
      if (b.attrs?.skip === true) continue
      expect(typeof b.attrs?.terminal, `sh block at line ${b.line}: terminal=N`).toBe('string')
      // Only public tools and this checkout's command; every port is one the test can swap.
      expect(b.code, `line ${b.line}`).not.toMatch(/\bnode\s|dist\//)
      for (const m of b.code.matchAll(/\bmosquitto_(?:sub|pub)\b[^\n]*/g)) expect(m[0], `line ${b.line}: name the port`).toMatch(/ -p (1883|8883)\b/)
    }
    for (const b of blocks.filter(b => b.lang === 'text')) expect(typeof b.attrs?.output, `text block at line ${b.line}: output=NAME`).toBe('string')
    const files = blocks.filter(b => typeof b.attrs?.file === 'string')
    expect(files.length).toBeGreaterThan(0)
    for (const b of files) expect(`${b.code}\n`).toBe(await readFile(join(ROOT, b.attrs?.file as string), 'utf8'))
  })

  it('runs every block in order: each exits 0 and prints what the page expects', async () => {
    const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LORABRIDGE_') && k !== 'TP_KEY'))
    baseEnv.PATH = `${join(root, 'bin')}:${process.env.PATH ?? ''}`
    const terminals = new Map<string, NodeJS.ProcessEnv>()
    let step = 0
    for (const b of blocks) {
      if (b.lang !== 'sh' || b.attrs === undefined || b.attrs.skip === true) continue
      const terminal = String(b.attrs.terminal)
      const env = terminals.get(terminal) ?? { ...baseEnv }
      const code = substitute(b.code)
      const name = typeof b.attrs.name === 'string' ? b.attrs.name : `block-${b.line}`
      let output = ''
      if (b.attrs.background === true) {
        const child = spawn('bash', ['-c', code], { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        child.stdout?.on('data', (d: Buffer) => { output += d.toString(); stdout += d.toString() })
        child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
        const exited = once(child, 'close') // after its output is read to the end
        background.push({ name, child, output: () => output, stdout: () => stdout, exited })
        outputs.set(name, () => output)
        const waitFor = b.attrs['wait-for']
        if (typeof waitFor === 'string') {
          await until(`"${waitFor}" from the block at line ${b.line}`, () => {
            if (child.exitCode !== null || child.signalCode !== null) throw new Error(`background block at line ${b.line} ended (${child.exitCode ?? child.signalCode}): ${output}`)
            return output.includes(substitute(waitFor))
          })
        }
        continue
      }
      const state = join(root, `env-${step++}`)
      const child = spawn('bash', ['-c', `set -eo pipefail\n${code}\nenv -0 > '${state}'`], { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout.on('data', (d: Buffer) => { output += d.toString() })
      child.stderr.on('data', (d: Buffer) => { output += d.toString() })
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
      const timer = setTimeout(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch { /* gone */ } }, COMMAND_MS)
      const [exitCode, signal] = await exited
      clearTimeout(timer)
      expect({ line: b.line, code: exitCode, signal, output }).toMatchObject({ code: 0, signal: null })
      if (typeof b.attrs.expect === 'string') expect(output, `block at line ${b.line}`).toContain(substitute(b.attrs.expect))
      outputs.set(name, () => output)
      // What the block exported stays for the later blocks of its terminal.
      terminals.set(terminal, parseEnv(await readFile(state, 'utf8')))
    }
    expect(terminals.size).toBe(4)
  })

  it('every "you see" block matches, line by line and in order, what its command printed', async () => {
    for (const b of blocks.filter(b => b.lang === 'text')) {
      const name = b.attrs?.output as string
      const docLines = substitute(b.code).split('\n')
      try {
        await until(`the text block at line ${b.line}`, () => firstMissing(docLines, out(name)) === -1)
      } catch {
        const k = firstMissing(docLines, out(name))
        expect.fail(`docs/quickstart.md:${b.line + 1 + k}: not in the output of "${name}":\n  ${docLines[k]}\noutput:\n${out(name)}`)
      }
    }
  })

  it('the daemon listens on the ports of the page\'s lorabridge.yaml (swapped)', () => {
    const listening = jsonLines('daemon').filter(l => l.msg === 'listening').map(l => [l.protocol, l.port])
    expect(listening).toEqual(expect.arrayContaining([
      ['mqtt', ports.get(1883)], ['mqtts', ports.get(8883)], ['http', ports.get(8080)],
    ]))
  })

  it('the Conduit\'s uplinks appear normalized, and it receives the rule\'s downlink for each', async () => {
    const conduit = jsonLines('conduit')
    expect(conduit.filter(l => l.event === 'downlink')).toEqual(['ac0100', 'ac0101', 'ac0102'].map(data => ({
      event: 'downlink', devEui: '00-80-00-ff-00-00-00-01', port: 11, data, topic: 'lorawan/029998e0-6156-cdd4-4523-264b523115c1/down',
    })))
    expect(conduit.at(-1)).toEqual({ event: 'summary', uplinks: 3, downlinks: 3 })
    const dev = 'lorabridge/default/devices/008000ff00000001'
    await until('the Conduit device\'s three down/queued', () => messages().filter(m => m.topic === `${dev}/down/queued`).length === 3)
    const ups = messages().filter(m => m.topic === `${dev}/up`).map(m => m.payload)
    expect(ups.map(u => [u.fPort, u.fCnt, u.hex])).toEqual([[10, 0, '0100'], [10, 1, '0101'], [10, 2, '0102']])
    expect(ups[0]).toMatchObject({ app: 'default', devEui: '008000ff00000001', network: { type: 'multitech', transport: 'mqtt', protocol: '1.1.1', gateway: '029998e0-6156-cdd4-4523-264b523115c1' } })
    const downs = messages().filter(m => m.topic === `${dev}/down`).map(m => m.payload)
    expect(downs.map(d => d.hex)).toEqual(['ac0100', 'ac0101', 'ac0102'])
    expect(messages().filter(m => m.topic === `${dev}/down/queued`).map(m => m.payload.id)).toEqual(downs.map(d => d.id))
    const status = messages().filter(m => m.topic === 'lorabridge/gateways/029998e0-6156-cdd4-4523-264b523115c1/status').map(m => m.payload)
    expect(status.map(s => [s.online, s.reason])).toEqual([[true, undefined], [false, 'close']])
  })

  it('ThingPark\'s uplink gets the rule\'s downlink, signed at the LRC, then down/queued and down/sent', async () => {
    const dev = 'lorabridge/default/devices/0018b20000000b20'
    await until('down/sent for the rule\'s ThingPark downlink', () => messages().some(m => m.topic === `${dev}/down/sent` && m.payload.id !== 'hello'))
    const up = messages().find(m => m.topic === `${dev}/up`)?.payload
    expect(up).toMatchObject({ app: 'default', fPort: 10, hex: '010000', network: { type: 'thingpark', connection: 'quickstart', asId: 'TWA_100000001.1.AS' } })
    const down = messages().find(m => m.topic === `${dev}/down`)?.payload
    expect(down).toMatchObject({ fPort: 11, hex: 'ac010000' })
    for (const outcome of ['down/queued', 'down/sent']) expect(messages().filter(m => m.topic === `${dev}/${outcome}`).map(m => m.payload.id)).toContain(down?.id)
    expect(jsonLines('thingpark')).toEqual(expect.arrayContaining([
      { event: 'post', root: 'DevEUI_uplink', devEui: '0018B20000000B20', status: 204 },
      { event: 'downlink', devEui: '0018B20000000B20', fPort: 11, payload: 'ac010000', tokenValid: true, status: 200 },
      { event: 'post', root: 'DevEUI_downlink_Sent', devEui: '0018B20000000B20', status: 204 },
    ]))
  })

  it('the hand-made downlink "hello" reaches the LRC signed and ends in down/queued and down/sent', async () => {
    const dev = 'lorabridge/default/devices/0018b20000000b20'
    await until('down/sent with id hello', () => messages().some(m => m.topic === `${dev}/down/sent` && m.payload.id === 'hello'))
    expect(messages().some(m => m.topic === `${dev}/down/queued` && m.payload.id === 'hello')).toBe(true)
    expect(jsonLines('thingpark')).toContainEqual({ event: 'downlink', devEui: '0018B20000000B20', fPort: 2, payload: '01', tokenValid: true, status: 200 })
  })

  it('the admin logs in to the console', () => {
    expect(JSON.parse(out('login'))).toEqual({ user: 'admin' })
  })

  it('docs/operations.md documents every metric family of a real scrape', async () => {
    const res = await fetch(`http://127.0.0.1:${ports.get(8080)}/metrics`)
    const families = [...(await res.text()).matchAll(/^# TYPE (lorabridge_\w+) /gm)].map(m => m[1] as string)
      .filter(f => !f.startsWith('lorabridge_process_') && !f.startsWith('lorabridge_nodejs_'))
    expect(families.length).toBeGreaterThan(20)
    const ops = await readFile(join(ROOT, 'docs', 'operations.md'), 'utf8')
    expect(families.filter(f => !ops.includes(`\`${f}\``))).toEqual([])
  })

  it('Ctrl-C in terminals 3, 2 and 1 ends everything; the daemon logs "lorabridge stopped" and exits 0', async () => {
    const ended: Record<string, unknown> = {}
    for (const name of ['thingpark', 'subscriber', 'daemon']) {
      const b = background.find(x => x.name === name)
      expect(b?.child.pid).toBeDefined()
      process.kill(-(b?.child.pid as number), 'SIGINT') // what the terminal sends its foreground group
      const [code, signal] = await Promise.race([b?.exited, sleep(15_000).then(() => ['timeout', null])]) as [unknown, unknown]
      ended[name] = code ?? signal
    }
    expect(ended.daemon).toBe(0)
    expect(ended.thingpark).toBe(0)
    // Its stdout alone: merged with stderr, a chunk of stderr can land inside a log line (a
    // suspected cause of two failures seen under heavy parallel load; what it wrote is shown if so).
    const stdout = background.find(x => x.name === 'daemon')!.stdout()
    if (!/"msg":"stopping"[^\n]*\n(?:.*\n)*.*"msg":"lorabridge stopped"/.test(stdout)) console.log('daemon output:\n' + out('daemon').split('\n').map(l => l.slice(0, 300)).join('\n'))
    expect(stdout).toMatch(/"msg":"stopping"[^\n]*\n(?:.*\n)*.*"msg":"lorabridge stopped"/)
  })
})
