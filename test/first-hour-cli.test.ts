/**
 * Issue 17, frictions 3, 5 and 11 (CLI part), against the built `lorabridge` executable:
 *  - 3: `users add --password-stdin` asks twice without echo on a real pseudo-terminal, refuses a
 *    mismatch and passwords under 8 characters, and still reads a pipe for scripts;
 *  - 5: certificate/key/CA files named by the configuration are checked by `config check` and
 *    `start`; every start-up failure (missing or bad file, port in use, low port without the
 *    privilege, TLS settings, Redis credentials, bad configuration) ends in one line on stderr
 *    with its code and the fix, exit status 1, no stack;
 *  - 11: `--version`, "did you mean …?" for configuration typos, `--log-format pretty|json` and
 *    pretty by default on a terminal, and the started line naming the listeners (0.0.0.0 included).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile, readFile, mkdir, chmod } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, runCli, run, startDaemonProcess } from './helpers/cli.js'
import { runInPty } from './helpers/pty.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { readUsersFile } from '../src/auth/users-file.js'
import { verifyPassword } from '../src/auth/password.js'

const MQTT_ONLY = `
mqtt:
  listeners:
    - { protocol: mqtt, host: 127.0.0.1, port: 0, anonymous: true }
http:
  listeners:
    - { protocol: http, host: 127.0.0.1, port: 0 }
`

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lorabridge-first-hour-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

/** A fresh directory with this lorabridge.yaml; returns the directory. */
async function project (name: string, yaml: string): Promise<string> {
  const d = join(dir, name)
  await mkdir(d, { recursive: true })
  await writeFile(join(d, 'lorabridge.yaml'), yaml)
  return d
}

/** Runs `lorabridge start` expecting it to fail; returns its status, stderr and stdout. */
async function failedStart (cwd: string, args: string[] = []): Promise<{ code: number | null, stderr: string, stdout: string }> {
  const child = spawn(process.execPath, [BIN, 'start', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  // A start that does not fail would run until killed: stop it once it says it started.
  child.stdout.on('data', () => { if (stdout.includes('lorabridge started')) child.kill('SIGKILL') })
  const [code] = await once(child, 'close') as [number | null]
  return { code, stderr, stdout }
}

/** One human line on stderr: `lorabridge: CODE: …`, no stack trace anywhere. */
function expectOneLine (r: { stderr: string, stdout: string }, code: string): string {
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(new RegExp(`^lorabridge: ${code}: `))
  expect(lines[0]).toContain(' — ')
  expect(r.stderr + r.stdout).not.toMatch(/\n\s+at /)
  expect(r.stdout).not.toContain('"stack"')
  return lines[0]!
}

/** `lorabridge start` as an unprivileged user: as root, through setpriv as nobody; otherwise as is. */
function startUnprivileged (cwd: string): ReturnType<typeof spawn> {
  const argv = [process.execPath, BIN, 'start']
  return process.getuid?.() === 0
    ? spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
}

async function occupiedPort (): Promise<Server> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

/** A self-signed EC certificate and its key (openssl, fast), written as NAME.crt / NAME.key. */
async function selfSigned (d: string, name: string): Promise<void> {
  const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(d, `${name}.key`), '-out', join(d, `${name}.crt`), '-days', '2', '-subj', `/CN=${name}`])
  expect(r.code, r.stderr).toBe(0)
}

describe('users add --password-stdin (friction 3)', () => {
  let cwd: string
  const usersFile = (): string => join(cwd, 'data', 'users.yaml')
  beforeAll(async () => { cwd = await project('users', MQTT_ONLY) })

  it('on a terminal asks twice without echo, and the stored hash verifies the typed password', async () => {
    const r = await runInPty([process.execPath, BIN, 'users', 'add', 'alice', '--role', 'admin', '--password-stdin'], [
      { expect: 'Password: ', send: 'correct horse battery\r' },
      { expect: 'Repeat password: ', send: 'correct horse battery\r' },
      { expect: 'added admin "alice"' },
    ], { cwd })
    expect(r.timedOutAt, r.output).toBeUndefined()
    expect(r.code, r.output).toBe(0)
    expect(r.output).not.toContain('correct horse')
    const alice = (await readUsersFile(usersFile())).get('alice')
    expect(await verifyPassword('correct horse battery', alice!.passwordHash!)).toBe(true)
  })

  it('on a terminal refuses two different passwords and changes nothing', async () => {
    const r = await runInPty([process.execPath, BIN, 'users', 'add', 'bob', '--role', 'admin', '--password-stdin'], [
      { expect: 'Password: ', send: 'first password\r' },
      { expect: 'Repeat password: ', send: 'second password\r' },
    ], { cwd })
    expect(r.code, r.output).toBe(1)
    expect(r.output).toContain('do not match')
    expect(r.output).not.toMatch(/first password|second password/)
    expect((await readUsersFile(usersFile())).has('bob')).toBe(false)
  })

  it('on a terminal refuses a password under 8 characters', async () => {
    const r = await runInPty([process.execPath, BIN, 'users', 'add', 'carol', '--role', 'admin', '--password-stdin'], [
      { expect: 'Password: ', send: 'hello\r' },
      { expect: 'Repeat password: ', send: 'hello\r' },
    ], { cwd })
    expect(r.code, r.output).toBe(1)
    expect(r.output).toMatch(/at least 8/)
    expect((await readUsersFile(usersFile())).has('carol')).toBe(false)
  })

  it('on a terminal Ctrl-C at the prompt cancels (status 130) and changes nothing', async () => {
    const r = await runInPty([process.execPath, BIN, 'users', 'add', 'frank', '--role', 'admin', '--password-stdin'], [
      { expect: 'Password: ', send: 'half typed\u0003' },
    ], { cwd })
    expect(r.code, r.output).toBe(130)
    expect(r.output).toContain('cancelled; nothing was changed')
    expect(r.output).not.toContain('half typed')
    expect((await readUsersFile(usersFile())).has('frank')).toBe(false)
  })

  it('reads a pipe as before (scripts), with the same minimum; --password too', async () => {
    const ok = await runCli(['users', 'add', 'dave', '--role', 'admin', '--password-stdin'], { cwd, input: 'a long enough password\n' })
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stderr).not.toContain('Password:')
    expect(await verifyPassword('a long enough password', (await readUsersFile(usersFile())).get('dave')!.passwordHash!)).toBe(true)
    const short = await runCli(['users', 'add', 'erin', '--role', 'admin', '--password-stdin'], { cwd, input: 'abc12\n' })
    expect(short.code).toBe(1)
    expect(short.stderr).toMatch(/5 characters; at least 8/)
    const flag = await runCli(['users', 'add', 'erin', '--role', 'admin', '--password', 'seven77'], { cwd })
    expect(flag.code).toBe(1)
    expect(flag.stderr).toMatch(/at least 8/)
    expect((await readUsersFile(usersFile())).has('erin')).toBe(false)
  })
})

describe('files named by the configuration (friction 5)', () => {
  it('config check reports each missing, unreadable or wrong file with its option and path', async () => {
    const cwd = await project('files', '')
    // mqtt.tls for the certificate and key, an https listener's own CA: each problem with its option.
    await writeFile(join(cwd, 'lorabridge.yaml'), [
      'mqtt:',
      '  listeners:',
      '    - { protocol: mqtt, host: 127.0.0.1, port: 0, anonymous: true }',
      '  tls:',
      '    cert: missing.crt',
      '    key: not-a-key.pem',
      'http:',
      '  listeners:',
      '    - { protocol: https, host: 127.0.0.1, port: 0, tls: { ca: a-directory } }',
      '',
    ].join('\n'))
    await mkdir(join(cwd, 'data', 'a-directory'), { recursive: true })
    await writeFile(join(cwd, 'data', 'not-a-key.pem'), 'hello\n')
    const r = await runCli(['config', 'check'], { cwd })
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(r.stderr).toContain(`mqtt.tls.cert: certificate file ${join(cwd, 'data', 'missing.crt')} does not exist`)
    expect(r.stderr).toContain(`mqtt.tls.key: ${join(cwd, 'data', 'not-a-key.pem')} holds no PEM private key`)
    expect(r.stderr).toContain(`http.listeners[0].tls.ca: ${join(cwd, 'data', 'a-directory')} is a directory`)
  })

  it('start fails on a missing certificate with one line, and says nothing about development certificates', async () => {
    const cwd = await project('missing-cert', [
      'mqtt:',
      '  listeners:',
      '    - { protocol: mqtt, host: 127.0.0.1, port: 0, anonymous: true }',
      '    - { protocol: mqtts, host: 127.0.0.1, port: 0 }',
      '  tls:',
      '    cert: /nonexistent/server.crt',
      '    key: /nonexistent/server.key',
      'http:',
      '  listeners:',
      '    - { protocol: http, host: 127.0.0.1, port: 0 }',
      '',
    ].join('\n'))
    const r = await failedStart(cwd)
    expect(r.code).toBe(1)
    expect(r.stdout + r.stderr).not.toMatch(/(using|generated) development certificates/)
    await expect(readFile(join(cwd, 'data', 'ca.crt'))).rejects.toThrow(/ENOENT/)
    // One line per problem: the certificate and its key.
    const lines = r.stderr.trimEnd().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^lorabridge: LB_ERR_TLS_FILE: .*lorabridge\.yaml: mqtt\.tls\.cert: certificate file \/nonexistent\/server\.crt does not exist: fix the path/)
    expect(lines[1]).toMatch(/^lorabridge: LB_ERR_TLS_FILE: .*mqtt\.tls\.key: private key file \/nonexistent\/server\.key does not exist/)
  })

  it('config check and start refuse a certificate whose key is another one\'s', async () => {
    const cwd = await project('mismatch', '')
    await mkdir(join(cwd, 'data'), { recursive: true })
    await selfSigned(join(cwd, 'data'), 'one')
    await selfSigned(join(cwd, 'data'), 'two')
    await writeFile(join(cwd, 'lorabridge.yaml'), MQTT_ONLY.replace('http:', '  tls: { cert: one.crt, key: two.key, clientCertificates: "off" }\nhttp:'))
    const check = await runCli(['config', 'check'], { cwd })
    expect(check.code).toBe(1)
    expect(check.stderr).toContain(`mqtt.tls.key: ${join(cwd, 'data', 'two.key')} is not the private key of the certificate ${join(cwd, 'data', 'one.crt')}`)
    const r = await failedStart(cwd)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^lorabridge: LB_ERR_TLS_FILE: .*mqtt\.tls\.key: .*is not the private key/)
  })

  it('start: TLS settings OpenSSL refuses end in one line with LB_ERR_TLS_SETTINGS', async () => {
    const cwd = await project('ciphers', '')
    await mkdir(join(cwd, 'data'), { recursive: true })
    await selfSigned(join(cwd, 'data'), 'server')
    await writeFile(join(cwd, 'lorabridge.yaml'), MQTT_ONLY
      .replace('anonymous: true }\n', 'anonymous: true }\n    - { protocol: mqtts, host: 127.0.0.1, port: 0 }\n')
      .replace('http:', '  tls: { cert: server.crt, key: server.key, clientCertificates: "off", ciphers: "NO-SUCH-CIPHER" }\nhttp:'))
    expect((await runCli(['config', 'check'], { cwd })).code).toBe(0)
    const r = await failedStart(cwd)
    expect(r.code).toBe(1)
    const line = expectOneLine(r, 'LB_ERR_TLS_SETTINGS')
    expect(line).toMatch(/ciphers/)
    expect(r.stdout).not.toMatch(/(using|generated) development certificates/)
  })
})

describe('start-up failures: one line with the code and the fix (friction 5)', () => {
  let redis: RedisServer | undefined
  afterAll(async () => { await redis?.stop() })

  it('an MQTT port in use: LB_ERR_LISTEN_IN_USE naming the listener, exit 1', async () => {
    const taken = await occupiedPort()
    try {
      const port = (taken.address() as AddressInfo).port
      const cwd = await project('mqtt-in-use', MQTT_ONLY.replace('anonymous: true }\n', `anonymous: true }\n    - { protocol: mqtt, host: 127.0.0.1, port: ${port} }\n`))
      const r = await failedStart(cwd)
      expect(r.code).toBe(1)
      const line = expectOneLine(r, 'LB_ERR_LISTEN_IN_USE')
      expect(line).toBe(`lorabridge: LB_ERR_LISTEN_IN_USE: cannot listen on mqtt://127.0.0.1:${port} (mqtt.listeners[1]): the address is in use by another process — stop it or choose another port (mqtt.listeners[1].port)`)
      // The JSON log line keeps the code and the reason, once, without a stack.
      const logged = r.stdout.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>).find(l => l.code === 'LB_ERR_LISTEN_IN_USE')
      expect(logged).toMatchObject({ component: 'mqtt-listeners', fix: expect.stringContaining('another port') })
      expect(logged?.err).toBeUndefined()
    } finally {
      taken.close()
    }
  })

  it('an HTTP port in use: LB_ERR_LISTEN_IN_USE naming http.listeners[0]', async () => {
    const taken = await occupiedPort()
    try {
      const port = (taken.address() as AddressInfo).port
      const cwd = await project('http-in-use', MQTT_ONLY.replace('{ protocol: http, host: 127.0.0.1, port: 0 }', `{ protocol: http, host: 127.0.0.1, port: ${port} }`))
      const r = await failedStart(cwd)
      expect(r.code).toBe(1)
      expect(expectOneLine(r, 'LB_ERR_LISTEN_IN_USE')).toContain(`http://127.0.0.1:${port} (http.listeners[0])`)
    } finally {
      taken.close()
    }
  })

  it('a port below 1024 without the privilege: LB_ERR_LISTEN_DENIED with the fix', async () => {
    // Run as an unprivileged user (the tests run as root, who may bind any port).
    const cwd = await project('low-port', MQTT_ONLY.replace('anonymous: true }\n', 'anonymous: true }\n    - { protocol: mqtt, host: 127.0.0.1, port: 1 }\n'))
    await chmod(dir, 0o755)
    await chmod(cwd, 0o777)
    const child = startUnprivileged(cwd)
    let stderr = ''
    let stdout = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
    const [code] = await once(child, 'close') as [number | null]
    expect(code, stderr).toBe(1)
    const line = expectOneLine({ stderr, stdout }, 'LB_ERR_LISTEN_DENIED')
    expect(line).toContain('mqtt://127.0.0.1:1 (mqtt.listeners[1]): permission denied')
    expect(line).toMatch(/1024 or more|cap_net_bind_service/)
  })

  it('a dataDir the daemon\'s user cannot write: LB_ERR_FILE_ACCESS naming it, with the fix', async () => {
    // Development certificates must be written to ./data, in a directory nobody may write to (mode 555).
    const cwd = await project('read-only', 'mqtt:\n  listeners:\n    - { protocol: mqtts, host: 127.0.0.1, port: 0 }\nhttp:\n  listeners: []\n')
    await chmod(dir, 0o755)
    await chmod(cwd, 0o555)
    const child = startUnprivileged(cwd)
    let stderr = ''
    let stdout = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
    const [code] = await once(child, 'close') as [number | null]
    expect(code, stderr).toBe(1)
    const line = expectOneLine({ stderr, stdout }, 'LB_ERR_FILE_ACCESS')
    expect(line).toContain(`cannot write ${join(cwd, 'data')}: permission denied`)
    expect(line).toMatch(/chown/)
    await chmod(cwd, 0o755) // the clean-up may then remove it
  })

  it('Redis refusing the password: LB_ERR_REDIS_AUTH, the password not shown', async () => {
    redis = await startRedis({ args: ['--requirepass', 'the-right-one'] })
    const cwd = await project('redis-auth', `${MQTT_ONLY}redis:\n  url: redis://:a-wrong-one@127.0.0.1:${redis.port}\n`)
    const r = await failedStart(cwd)
    expect(r.code).toBe(1)
    expect(expectOneLine(r, 'LB_ERR_REDIS_AUTH')).toMatch(/redis\.url/)
    expect(r.stderr + r.stdout).not.toContain('a-wrong-one')
  })

  it('a configuration typo: each problem on one line with its code and "did you mean"', async () => {
    const cwd = await project('typo', MQTT_ONLY.replace('mqtt:\n  listeners:', 'mqtt:\n  listners:'))
    const r = await failedStart(cwd)
    expect(r.code).toBe(1)
    expect(r.stderr.trimEnd()).toBe(`lorabridge: LB_ERR_CONFIG_INVALID: ${join(cwd, 'lorabridge.yaml')}: mqtt.listners: is not a known option; did you mean listeners?`)
    expect(r.stdout).toBe('')
  })
})

describe('polish (friction 11)', () => {
  it('--version and -V print the package version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag])
      expect(r.code).toBe(0)
      expect(r.stdout).toBe(`${version}\n`)
    }
  })

  it('config check suggests the closest option for typos, at every level', async () => {
    const cwd = await project('typos', `${MQTT_ONLY}log:\n  levle: debug\nevents:\n  dedupWindowSecond: 10\nrulez:\n  dir: ./rules\n`)
    const r = await runCli(['config', 'check'], { cwd })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('log.levle: is not a known option; did you mean level?')
    expect(r.stderr).toContain('events.dedupWindowSecond: is not a known option; did you mean dedupWindowSeconds?')
    expect(r.stderr).toContain('rulez: is not a known option; did you mean rules?')
  })

  it('a misspelt LORABRIDGE_… variable gets the closest one; a name close to none gets no guess', async () => {
    const cwd = await project('env-typos', MQTT_ONLY)
    const r = await runCli(['config', 'check'], { cwd, env: { LORABRIDGE_LOG_LEVL: 'debug', LORABRIDGE_HTTP_CONSOLE_RULE_EDITNG: 'true', LORABRIDGE_FOO: '1' } })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('env:LORABRIDGE_LOG_LEVL: names no configuration option; did you mean LORABRIDGE_LOG_LEVEL?')
    expect(r.stderr).toContain('env:LORABRIDGE_HTTP_CONSOLE_RULE_EDITNG: names no configuration option; did you mean LORABRIDGE_HTTP_CONSOLE_RULE_EDITING?')
    expect(r.stderr).toMatch(/env:LORABRIDGE_FOO: names no configuration option\n/)
  })

  it('--log-format pretty prints readable lines; json prints JSON lines as before', async () => {
    const cwd = await project('pretty', MQTT_ONLY)
    for (const format of ['pretty', 'json'] as const) {
      const child = spawn(process.execPath, [BIN, 'start', '--log-format', format], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let stopped = false
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        // One SIGTERM: a second one while stopping exits at once with 1.
        if (!stopped && out.includes('lorabridge started') && out.endsWith('\n')) { stopped = true; child.kill('SIGTERM') }
      })
      const [code] = await once(child, 'close') as [number | null]
      expect(code, out).toBe(0)
      const lines = out.trimEnd().split('\n')
      if (format === 'pretty') {
        expect(lines.some(l => l.startsWith('{'))).toBe(false)
        expect(out).not.toContain('"msg"')
        expect(out).toMatch(/INFO.*\[mqtt\] listening/)
        expect(out).toMatch(/INFO.*lorabridge started/)
        expect(out).toMatch(/mqtt:\/\/127\.0\.0\.1:\d+/)
        expect(out).toMatch(/INFO.*lorabridge stopped/)
      } else {
        const parsed = lines.map(l => JSON.parse(l) as Record<string, unknown>)
        expect(parsed.find(l => l.msg === 'lorabridge started')).toMatchObject({ level: 30, listeners: [expect.stringMatching(/^mqtt:\/\/127\.0\.0\.1:\d+$/), expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/)] })
        expect(parsed.at(-1)?.msg).toBe('lorabridge stopped')
      }
    }
  })

  it('on a terminal the default log is pretty; piped it is JSON', async () => {
    const cwd = await project('tty-log', MQTT_ONLY)
    const r = await runInPty([process.execPath, BIN, 'start'], [
      { expect: 'lorabridge started' },
      { expect: '\n', signal: 'SIGTERM' },
      { expect: 'lorabridge stopped' },
    ], { cwd, env: { NO_COLOR: '1' } })
    expect(r.timedOutAt, r.output).toBeUndefined()
    expect(r.output).toMatch(/INFO: lorabridge started/)
    expect(r.output.split(/\r?\n/).some(l => l.startsWith('{'))).toBe(false)
  })

  it('the started line lists every listener, the default mqtts on 0.0.0.0 too, with a warning for it', async () => {
    const cwd = join(dir, 'defaults')
    await mkdir(cwd, { recursive: true })
    // The defaults, ports aside (tests never use fixed ports).
    const daemon = await startDaemonProcess([], { cwd, env: { LORABRIDGE_MQTT_LISTENERS_0_PORT: '0', LORABRIDGE_MQTT_LISTENERS_1_PORT: '0', LORABRIDGE_HTTP_LISTENERS_0_PORT: '0' } })
    try {
      const started = daemon.lines.find(l => l.msg === 'lorabridge started')
      expect(started?.listeners).toEqual([
        `mqtt://127.0.0.1:${daemon.port('mqtt')}`,
        `mqtts://0.0.0.0:${daemon.port('mqtts')}`,
        `http://127.0.0.1:${daemon.port('http')}`,
      ])
      const warning = daemon.lines.find(l => l.listener === `mqtts://0.0.0.0:${daemon.port('mqtts')}`)
      expect(warning).toMatchObject({ level: 40, config: 'mqtt.listeners[1]', msg: expect.stringContaining('reachable from other machines') })
      expect(daemon.lines.filter(l => l.level === 40 && typeof l.listener === 'string')).toHaveLength(1)
    } finally {
      await daemon.kill('SIGTERM')
    }
  })
})
