/**
 * The admin pages, used as an admin would: docs/multitech.md and docs/thingpark.md.
 *
 * Each fenced `yaml` or `sh` block of these pages carries, on the line before its fence, an HTML
 * comment `<!-- docs-test: … -->` that says what the block is and how it is checked:
 * - `file=NAME` (yaml): a ready-to-paste configuration. It is written verbatim as NAME and
 *   `lorabridge config check` must accept it (with `env=VAR` set, as the page says, for an AS key).
 * - `run`: run with bash, on "the lorabridge host" (a temp directory), in page order; it must exit 0.
 * - `daemon`: `lorabridge start`, run in the background with every listener's port overridden to 0
 *   (LORABRIDGE_…_PORT) — the page's fixed ports are swapped for the bound ones in later blocks.
 * - `background`: a long-running command (mosquitto_sub); its output is checked afterwards.
 * - `on-conduit`, `on-thingpark`: a command the page says runs on the Conduit or in ThingPark's
 *   platform; not run here, and the page must say so in its text.
 * - `choice=X`: one of the page's alternatives ("pick one way"): the page is run once per choice,
 *   on a fresh host, with the blocks of the other choices left out.
 * `npx lorabridge` is this checkout's bin/lorabridge.js (a shim on PATH, built dist/); the page's
 * example host names and addresses lead to 127.0.0.1 (curl through its config file, Node through
 * the substituted URL) with the test's certificates trusted.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BIN, runCli, run } from './helpers/cli.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const WAIT_MS = 30_000
const RUN_MS = 60_000

type Attrs = Record<string, string | true>
interface Block { lang: string, code: string, attrs: Attrs | undefined, line: number, before: string }

/** Fenced blocks, each with the `<!-- docs-test: … -->` comment on the line before its fence. */
function parseBlocks (markdown: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] as string)
    if (open === null) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] as string); i++) body.push(lines[i] as string)
    const note = /^<!-- docs-test: (.*) -->$/.exec(lines[start - 1] ?? '')
    // The prose right before the block (its paragraph), where the page tells where a command runs.
    const before = lines.slice(Math.max(0, start - 6), start).join('\n')
    blocks.push({ lang: open[1] as string, code: body.join('\n'), attrs: note === null ? undefined : parseAttrs(note[1] as string), line: start + 1, before })
  }
  return blocks
}

function parseAttrs (text: string): Attrs {
  const attrs: Attrs = {}
  for (const m of text.matchAll(/([\w-]+)(?:=(\S+))?/g)) attrs[m[1] as string] = m[2] ?? true
  return attrs
}

const KINDS = ['file', 'run', 'daemon', 'background', 'on-conduit', 'on-thingpark'] as const
const kindOf = (b: Block): string | undefined => KINDS.find(k => b.attrs?.[k] !== undefined)

function sleep (ms: number): Promise<void> { return new Promise(resolve => setTimeout(resolve, ms)) }

async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

interface Background { child: ChildProcess, output: () => string, exited: Promise<unknown> }

/** Starts `code` with bash in its own process group (ended with the group at the end). */
function startBash (code: string, cwd: string, env: NodeJS.ProcessEnv): Background {
  const child = spawn('bash', ['-c', code], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  return { child, output: () => out, exited: once(child, 'exit') }
}

async function endGroup (b: Background): Promise<void> {
  const { child } = b
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const kill = (signal: NodeJS.Signals): void => { try { process.kill(-(child.pid as number), signal) } catch { /* gone */ } }
  kill('SIGTERM')
  const done = await Promise.race([b.exited.then(() => true), sleep(10_000).then(() => false)])
  if (!done) { kill('SIGKILL'); await b.exited }
}

/** Runs `code` with bash (`set -e`): exit status and what it printed. */
async function runBash (code: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null, output: string }> {
  const b = startBash(`set -e\n${code}`, cwd, env)
  const timer = setTimeout(() => { void endGroup(b) }, RUN_MS)
  const [status] = await b.exited as [number | null]
  clearTimeout(timer)
  return { code: status, output: b.output() }
}

/** `topic payload` lines of `mosquitto_sub -v`, payloads parsed. */
function messages (output: string): Array<{ topic: string, payload: Record<string, unknown> }> {
  return output.split('\n').flatMap(l => {
    const i = l.indexOf(' ')
    if (i < 0) return []
    try { return [{ topic: l.slice(0, i), payload: JSON.parse(l.slice(i + 1)) as Record<string, unknown> }] } catch { return [] }
  })
}

/** The daemon's JSON log lines. */
function logLines (output: string): Array<Record<string, unknown>> {
  return output.split('\n').flatMap(l => { try { return [JSON.parse(l) as Record<string, unknown>] } catch { return [] } })
}

/** One lorabridge host: a temp directory, `lorabridge` on PATH, and what the page started. */
class Host {
  root = ''
  work = ''
  env: NodeJS.ProcessEnv = {}
  background: Background[] = []
  ports = { mqtt: 0, mqtts: 0, http: 0, https: 0 }
  outputs = new Map<string, () => string>()

  async create (name: string): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), `lorabridge-${name}-`))
    this.work = join(this.root, 'host')
    await mkdir(this.work)
    await mkdir(join(this.root, 'bin'))
    const shim = join(this.root, 'bin', 'lorabridge')
    await writeFile(shim, `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`)
    await chmod(shim, 0o755)
    // The reader's shell, without this test runner's own LORABRIDGE_… settings.
    this.env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LORABRIDGE_')))
    this.env.PATH = `${join(this.root, 'bin')}:${process.env.PATH ?? ''}`
    this.env.HOME = this.root
  }

  async destroy (): Promise<void> {
    for (const b of this.background.reverse()) await endGroup(b)
    if (this.root !== '') await rm(this.root, { recursive: true, force: true })
  }

  killAll = (): void => {
    for (const b of this.background) if (b.child.pid !== undefined && b.child.exitCode === null) { try { process.kill(-b.child.pid, 'SIGKILL') } catch { /* gone */ } }
  }

  output (name: string): string {
    const o = this.outputs.get(name)
    if (o === undefined) throw new Error(`no block named ${name}`)
    return o()
  }

  async metric (name: string): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${this.ports.http}/metrics`)
    const text = await res.text()
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
    return m === null ? 0 : Number(m[1])
  }

  /** Runs the page's blocks in order; `substitute` maps the page's hosts and ports to this host's. */
  async runPage (page: string, blocks: Block[], choice: string | undefined, substitute: (code: string) => string, daemonEnv: NodeJS.ProcessEnv): Promise<void> {
    for (const b of blocks) {
      if (b.attrs?.choice !== undefined && b.attrs.choice !== choice) continue
      const kind = kindOf(b)
      const where = `${page}:${b.line}`
      const name = typeof b.attrs?.name === 'string' ? b.attrs.name : `block-${b.line}`
      if (kind === 'file') {
        const file = b.attrs?.file as string
        await writeFile(join(this.work, file), `${b.code}\n`)
        const env = { ...this.env, ...(typeof b.attrs?.env === 'string' ? { [b.attrs.env]: '0123456789abcdef0123456789abcdef' } : {}) }
        const check = await runCli(['-c', file, 'config', 'check'], { cwd: this.work, env })
        expect(check.code, `${where}: config check of ${file}: ${check.stdout}${check.stderr}`).toBe(0)
        continue
      }
      if (b.lang !== 'sh' || kind === 'on-conduit' || kind === 'on-thingpark') continue
      const code = substitute(b.code.replace(/\bnpx lorabridge\b/g, 'lorabridge'))
      if (kind === 'run') {
        const result = await runBash(code, this.work, this.env)
        this.outputs.set(name, () => result.output)
        expect(result.code, `${where} exited ${String(result.code)}:\n${code}\n${result.output}`).toBe(0)
      } else if (kind === 'daemon') {
        const daemon = startBash(code, this.work, { ...this.env, ...daemonEnv })
        this.background.push(daemon)
        this.outputs.set(name, daemon.output)
        await until(`${where}: the daemon's start line`, () => {
          if (daemon.child.exitCode !== null) throw new Error(`${where}: the daemon exited: ${daemon.output()}`)
          return logLines(daemon.output()).some(l => l.msg === 'lorabridge started')
        })
        for (const l of logLines(daemon.output())) {
          if (l.msg === 'listening' && typeof l.protocol === 'string' && l.protocol in this.ports) this.ports[l.protocol as keyof Host['ports']] = l.port as number
        }
      } else if (kind === 'background') {
        // Started once the daemon counts its subscriptions, so that nothing published after is missed.
        const before = await this.metric('lorabridge_mqtt_subscriptions')
        const sub = startBash(code, this.work, this.env)
        this.background.push(sub)
        this.outputs.set(name, sub.output)
        await until(`${where}: the subscriptions of the background command`, async () => {
          if (sub.child.exitCode !== null) throw new Error(`${where}: exited: ${sub.output()}`)
          return await this.metric('lorabridge_mqtt_subscriptions') > before
        })
      } else {
        throw new Error(`${where}: an sh block without a <!-- docs-test: … --> kind`)
      }
    }
  }
}

/** What every admin page must hold to: each block says how it is checked, nothing is left unchecked. */
function checkAnnotations (page: string, blocks: Block[]): void {
  expect(blocks.length).toBeGreaterThan(0)
  for (const b of blocks.filter(b => b.lang === 'sh' || b.lang === 'yaml')) {
    const where = `${page}:${b.line}`
    expect(kindOf(b), `${where}: a ${b.lang} block needs a <!-- docs-test: … --> comment saying how it is checked`).toBeDefined()
    if (b.lang === 'yaml') expect(typeof b.attrs?.file, `${where}: a yaml block is a file=NAME to check`).toBe('string')
    if (kindOf(b) === 'on-conduit') expect(b.before, `${where}: the page says the command runs on the Conduit`).toMatch(/on the Conduit/i)
    if (kindOf(b) === 'on-thingpark') expect(b.before, `${where}: the page says the step is done in ThingPark`).toMatch(/ThingPark/)
    // Only public tools and this checkout's command.
    expect(b.code, where).not.toMatch(/\bnode\s|dist\//)
  }
}

describe('docs/multitech.md: a Conduit set up as the page says', () => {
  const page = 'docs/multitech.md'
  const gw = '029998e0-6156-cdd4-4523-264b523115c1'
  let blocks: Block[]

  beforeAll(async () => {
    blocks = parseBlocks(await readFile(join(ROOT, page), 'utf8'))
  })

  it('says of every block how it is checked, and marks what runs on the Conduit', () => {
    checkAnnotations(page, blocks)
    expect(blocks.filter(b => b.attrs?.file === 'lorabridge.yaml')).toHaveLength(1)
    expect(blocks.some(b => kindOf(b) === 'on-conduit' && b.code.includes('/sys/devices/platform/mts-io/uuid'))).toBe(true)
    expect(new Set(blocks.map(b => b.attrs?.choice).filter(c => c !== undefined))).toEqual(new Set(['A', 'B']))
  })

  for (const [choice, login] of [['A', 'a password'], ['B', 'a client certificate']] as const) {
    describe(`login ${choice}: ${login}`, () => {
      const host = new Host()
      beforeAll(async () => {
        await host.create(`multitech-${choice}`)
        process.once('exit', host.killAll)
      })
      afterAll(async () => {
        process.off('exit', host.killAll)
        await host.destroy()
      })

      it('runs every block in order: the configuration passes config check, and the Conduit comes online with its uplinks', async () => {
        await host.runPage(page, blocks, choice, code => code
          .replace(/192\.168\.2\.10:8883/g, `127.0.0.1:${host.ports.mqtts}`)
          .replace(/ -p 1883\b/g, ` -p ${host.ports.mqtt}`)
          .replace(/127\.0\.0\.1:8080\b/g, `127.0.0.1:${host.ports.http}`), {
          // The page's 1883, 8883 and 8080 are fixed; here the system picks free ones.
          LORABRIDGE_MQTT_LISTENERS_0_PORT: '0',
          LORABRIDGE_MQTT_LISTENERS_1_PORT: '0',
          LORABRIDGE_HTTP_LISTENERS_0_PORT: '0',
        })

        const daemon = logLines(host.output(`block-${blocks.find(b => kindOf(b) === 'daemon')?.line ?? 0}`))
        // The MQTTS listener is on every address, as the page's Conduit needs.
        expect(daemon.find(l => l.msg === 'listening' && l.protocol === 'mqtts')?.address).toBe('0.0.0.0')
        // The server certificate names the address of the Conduit's Server URL (certs init --host).
        const san = await run('openssl', ['x509', '-in', join(host.work, 'data', 'server.crt'), '-noout', '-ext', 'subjectAltName'])
        expect(san.stdout).toContain('IP Address:192.168.2.10')
        // What the page tells the admin to paste as the server certificate.
        expect(host.output('ca-pem')).toBe(await readFile(join(host.work, 'data', 'ca.crt'), 'utf8'))

        expect(host.output('simulate')).toMatch(/"event":"summary","uplinks":3/)
        await until('the Conduit online and its three uplinks in farm on the subscriber', () => {
          const seen = messages(host.output('subscriber'))
          return seen.some(m => m.topic === `lorabridge/gateways/${gw}/status` && m.payload.online === true && m.payload.transport === 'mqtt') &&
            seen.filter(m => /^lorabridge\/farm\/devices\/[0-9a-f]{16}\/up$/.test(m.topic)).length >= 3
        })
        // It logged in as its own user, bound to its GW-UUID, the way the page chose.
        const logins = logLines(host.output(`block-${blocks.find(b => kindOf(b) === 'daemon')?.line ?? 0}`)).filter(l => l.msg === 'client authenticated' && l.role === 'gateway')
        expect(logins.map(l => [l.user, l.via, l.clientId])).toEqual([['conduit-7', choice === 'A' ? 'password' : 'certificate', `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${gw}`]])
      }, 180_000)
    })
  }
})
