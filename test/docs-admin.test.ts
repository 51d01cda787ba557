/**
 * The admin pages, used as an admin would: docs/multitech.md and docs/thingpark.md.
 *
 * Each fenced `yaml` or `sh` block of these pages carries, on the line before its fence, an HTML
 * comment `<!-- docs-test: … -->` that says what the block is and how it is checked:
 * - `file=NAME`: a file the page has the reader save, written verbatim as NAME. A yaml one is a
 *   ready-to-paste configuration that `lorabridge config check` must accept (with `env=VAR` set, as
 *   the page says, for an AS key; `needs=A,B`: files the reader brings, which must exist by then).
 * - `run`: run with bash, on "the lorabridge host" (a temp directory), in page order; it must exit 0.
 * - `daemon`: `lorabridge start`, run in the background with every listener's port overridden to 0
 *   (LORABRIDGE_…_PORT) — the page's fixed ports are swapped for the bound ones in later blocks.
 * - `background`: a long-running command (mosquitto_sub); its output is checked afterwards.
 * - `flags`: a lorabridge command shown as an example of another setup: not run, but every option it
 *   uses must be one that command's `--help` lists.
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

const KINDS = ['file', 'run', 'daemon', 'background', 'flags', 'on-conduit', 'on-thingpark'] as const
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
  async runPage (page: string, blocks: Block[], choice: string | undefined, substitute: (code: string) => string, daemonEnv: NodeJS.ProcessEnv, onStarted: () => Promise<void> = async () => {}): Promise<void> {
    for (const b of blocks) {
      if (b.attrs?.choice !== undefined && b.attrs.choice !== choice) continue
      const kind = kindOf(b)
      const where = `${page}:${b.line}`
      const name = typeof b.attrs?.name === 'string' ? b.attrs.name : `block-${b.line}`
      if (kind === 'file') {
        const file = b.attrs?.file as string
        await writeFile(join(this.work, file), `${b.code}\n`)
        if (b.lang !== 'yaml') continue
        for (const needed of typeof b.attrs?.needs === 'string' ? b.attrs.needs.split(',') : []) {
          expect(await readFile(join(this.work, needed), 'utf8').then(() => true, () => false), `${where}: ${needed}, which the page has the reader bring`).toBe(true)
        }
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
        await onStarted()
      } else if (kind === 'flags') {
        await checkFlags(where, code, this.work, this.env)
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

/** Every `--option` of each `lorabridge …` command in `code` is one its `--help` lists. */
async function checkFlags (where: string, code: string, cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  const commands = [...code.replace(/\\\n/g, ' ').matchAll(/\blorabridge((?: [a-z]+)+)([^\n]*)/g)]
  expect(commands.length, `${where}: a lorabridge command`).toBeGreaterThan(0)
  for (const [, words, rest] of commands) {
    const help = await runCli([...(words as string).trim().split(' '), '--help'], { cwd, env })
    expect(help.code, `${where}: lorabridge${words as string} --help`).toBe(0)
    for (const [option] of (rest as string).matchAll(/--[a-z][a-z-]*/g)) expect(help.stdout, `${where}: lorabridge${words as string} has no ${option}`).toContain(option)
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

      if (choice === 'A') {
        it('shows in the log what the page\'s troubleshooting says: the GW-UUID of a Conduit without a user, and a Conduit bound to another GW-UUID', async () => {
          expect(host.ports.mqtts, 'the daemon the page started (the test before)').toBeGreaterThan(0)
          const other = '11111111-2222-3333-4444-555555555555'
          const url = `mqtts://127.0.0.1:${host.ports.mqtts}`
          // A Conduit whose user does not exist yet: refused (CONNACK 4), its GW-UUID in the log's clientId.
          const unknown = await runCli(['simulate', 'conduit', '--url', url, '--ca', 'data/ca.crt', '--username', 'conduit-9', '--password-stdin', '--gw-uuid', other, '--count', '1'], { cwd: host.work, env: host.env, input: 'not-a-user-password\n' })
          expect(unknown.code).not.toBe(0)
          // The page's Conduit user, presented by a Conduit with another GW-UUID (CONNACK 5).
          const password = await readFile(join(host.work, 'conduit-7.pw'), 'utf8')
          const wrongGw = await runCli(['simulate', 'conduit', '--url', url, '--ca', 'data/ca.crt', '--username', 'conduit-7', '--password-stdin', '--gw-uuid', other, '--count', '1'], { cwd: host.work, env: host.env, input: password })
          expect(wrongGw.code).not.toBe(0)
          const daemon = (): Array<Record<string, unknown>> => logLines(host.output(`block-${blocks.find(b => kindOf(b) === 'daemon')?.line ?? 0}`)).filter(l => l.msg === 'authentication refused')
          await until('both refusals in the log', () => daemon().length >= 2)
          expect(daemon().map(l => [l.code, l.user, l.clientId])).toEqual([
            ['LB_ERR_AUTH_BAD_CREDENTIALS', 'conduit-9', `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${other}`],
            ['LB_ERR_AUTH_CLIENT_ID', 'conduit-7', `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${other}`],
          ])
        }, 60_000)
      }
    })
  }
})

describe('docs/thingpark.md: a ThingPark connection set up as the page says', () => {
  const page = 'docs/thingpark.md'
  const host = new Host()
  let blocks: Block[]
  let lrc: Background
  let publicCa = ''

  beforeAll(async () => {
    blocks = parseBlocks(await readFile(join(ROOT, page), 'utf8'))
    await host.create('thingpark')
    process.once('exit', host.killAll)
    // What the reader brings: a certificate for lorabridge.example.com from a CA that ThingPark
    // (here curl and Node) trusts. Made with the development CA, in a directory of its own.
    const ca = join(host.root, 'public-ca')
    const made = await runCli(['certs', 'init', '--dir', ca, '--host', 'lorabridge.example.com'], { cwd: host.root })
    expect(made.code, made.stderr).toBe(0)
    await mkdir(join(host.work, 'data'))
    await writeFile(join(host.work, 'data', 'public.crt'), await readFile(join(ca, 'server.crt')))
    await writeFile(join(host.work, 'data', 'public.key'), await readFile(join(ca, 'server.key')))
    publicCa = join(ca, 'ca.crt')
    host.env.NODE_EXTRA_CA_CERTS = publicCa
    // ThingPark's LRC: the simulator's downlink endpoint, checking each downlink's token with the
    // key the page puts in thingpark.env.
    const key = /TP_EU_KEY=([0-9a-f]{32})/.exec(blocks.find(b => b.attrs?.file === 'thingpark.env')?.code ?? '')?.[1]
    expect(key).toBeDefined()
    lrc = startBash('lorabridge simulate thingpark --url https://127.0.0.1:9/none --as-id TWA_100000001.1.AS --as-key-env LRC_KEY --count 0 --lrc-port 0', host.root, { ...host.env, LRC_KEY: key })
    host.background.push(lrc)
    await until('the simulated LRC', () => /"event":"lrc"/.test(lrc.output()))
  })

  afterAll(async () => {
    process.off('exit', host.killAll)
    await host.destroy()
  })

  it('says of every block how it is checked, and names the AS routing profile before devices are routed', async () => {
    checkAnnotations(page, blocks)
    expect(blocks.filter(b => b.attrs?.file === 'lorabridge.yaml')).toHaveLength(1)
    const doc = await readFile(join(ROOT, page), 'utf8')
    const setup = doc.slice(doc.indexOf('## Setting up ThingPark'), doc.indexOf('## Uplink endpoint'))
    for (const step of ['AS routing profile', 'Application Servers', 'AS Routing Profiles', 'Basic HTTPS', 'HTTPS – Generic Application', 'Route the devices']) expect(setup).toContain(step)
  })

  it('runs every block in order: config check, the signed uplink published, the downlink signed and queued by the LRC', async () => {
    const lrcUrl = (JSON.parse(lrc.output().split('\n')[0] as string) as { url: string }).url
    await host.runPage(page, blocks, undefined, code => code
      // Node reaches the page's host through its address; the certificate names both.
      .replace(/(lorabridge simulate thingpark --url )https:\/\/lorabridge\.example\.com:8443/g, `$1https://127.0.0.1:${host.ports.https}`)
      .replace(/ -p 1883\b/g, ` -p ${host.ports.mqtt}`), {
      LORABRIDGE_MQTT_LISTENERS_0_PORT: '0',
      LORABRIDGE_HTTP_LISTENERS_0_PORT: '0',
      LORABRIDGE_HTTP_LISTENERS_1_PORT: '0',
      // The platform's LRC is the simulated one.
      LORABRIDGE_THINGPARK_CONNECTIONS_0_DOWNLINK_URL: lrcUrl,
    }, async () => {
      // curl, as the page runs it, reaches lorabridge.example.com:8443 here and trusts its CA.
      await writeFile(join(host.root, '.curlrc'), `connect-to = lorabridge.example.com:8443:127.0.0.1:${host.ports.https}\ncacert = ${publicCa}\n`)
    })

    // The answers the page shows.
    const unsigned = blocks.find(b => b.attrs?.name === 'unsigned')
    const shown = /^# (\{.*\})$/m.exec(unsigned?.code ?? '')?.[1]
    expect(shown).toBeDefined()
    expect(host.output('unsigned').trim()).toBe(shown)
    expect(host.output('signed').trim()).toBe('204')
    expect(host.output('simulate')).toMatch(/"event":"summary","posts":1,"failed":0/)

    await until('the signed uplink and the downlink queued by the LRC on the subscriber', () => {
      const seen = messages(host.output('subscriber'))
      return seen.some(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/up' && m.payload.fPort === 1 && m.payload.hex === '01') &&
        seen.some(m => m.topic === 'lorabridge/farm/devices/0018b20000000b20/down/queued')
    })
    // The LRC checked the downlink's token with the page's key and AS ID.
    const received = lrc.output().split('\n').flatMap(l => { try { return [JSON.parse(l) as Record<string, unknown>] } catch { return [] } }).filter(l => l.event === 'downlink')
    expect(received.map(l => [String(l.devEui).toLowerCase(), l.fPort, String(l.payload).toLowerCase(), l.tokenValid, l.status])).toEqual([['0018b20000000b20', 1, '01', true, 200]])
  }, 180_000)

  it('logs the AS_ID ThingPark sent when it is not the connection\'s, cut to 100 characters', async () => {
    const post = (asId: string): Promise<{ code: number | null, stdout: string }> => run('curl', ['-s', '-w', '\n%{http_code}', '--cacert', publicCa,
      '--connect-to', `lorabridge.example.com:8443:127.0.0.1:${host.ports.https}`, '-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{}',
      `https://lorabridge.example.com:8443/thingpark/tp-eu?LrnDevEui=0018B20000000B20&AS_ID=${encodeURIComponent(asId)}&Token=${'0'.repeat(64)}`])
    expect(host.ports.https, 'the daemon the page started (the test before)').toBeGreaterThan(0)
    const long = `TWA_${'9'.repeat(5000)}.1.AS`
    for (const asId of ['TWA_100000002.7.AS', long, '<script>"\n']) {
      const answer = await post(asId)
      expect(answer.stdout).toMatch(/"error":"LB_ERR_THINGPARK_TOKEN"[^\n]*\n401$/)
    }
    const daemon = host.output(`block-${blocks.find(b => kindOf(b) === 'daemon')?.line ?? 0}`)
    await until('the three refusals in the log', () => logLines(daemon).filter(l => l.msg === 'ThingPark report refused' && l.receivedAsId !== undefined).length >= 3)
    const refused = logLines(host.output(`block-${blocks.find(b => kindOf(b) === 'daemon')?.line ?? 0}`)).filter(l => l.msg === 'ThingPark report refused' && l.receivedAsId !== undefined)
    expect(refused.map(l => [l.code, l.status, l.receivedAsId])).toEqual([
      ['LB_ERR_THINGPARK_TOKEN', 401, 'TWA_100000002.7.AS'],
      ['LB_ERR_THINGPARK_TOKEN', 401, long.slice(0, 100)],
      ['LB_ERR_THINGPARK_TOKEN', 401, '<script>"\n'],
    ])
    // The daemon is still up, and a report with the right AS_ID is not logged with one.
    expect(logLines(daemon).filter(l => l.msg === 'ThingPark report refused' && l.receivedAsId === undefined).every(l => l.reason !== 'AS_ID is not this connection\'s')).toBe(true)
  }, 60_000)
})
