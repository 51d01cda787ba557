/**
 * `lorabridge start` as a user runs it: a fresh directory, no configuration file. The only
 * deviation from the defaults is the ports (LORABRIDGE_… overrides to 0), because tests never use
 * fixed ports. Covers must-show 1 (dev certificates, mosquitto_sub/pub on the loopback listener),
 * 4 (mosquitto over mqtts with client certificates, TLS 1.2) and 8 (SIGTERM).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, access, readFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDaemonProcess, runCli, type DaemonProcess } from './helpers/cli.js'
import { sleep } from './helpers/mqtt.js'

const PORT_OVERRIDES = {
  LORABRIDGE_MQTT_LISTENERS_0_PORT: '0',
  LORABRIDGE_MQTT_LISTENERS_1_PORT: '0',
  LORABRIDGE_MQTT_LISTENERS_1_HOST: '127.0.0.1',
  LORABRIDGE_HTTP_LISTENERS_0_PORT: '0',
}

/** Starts mosquitto_sub, then publishes with mosquitto_pub until the subscriber has the message. */
async function exchange (subArgs: string[], pubArgs: string[], topic: string, message: string): Promise<string> {
  const sub = spawn('mosquitto_sub', [...subArgs, '-t', topic, '-C', '1', '-W', '20'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  sub.stdout.on('data', (d: Buffer) => { out += d.toString() })
  sub.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const done = new Promise<number | null>(resolve => sub.on('close', resolve))
  // mosquitto_sub gives no "subscribed" signal: publish until it has received (QoS 0, not retained).
  for (let i = 0; i < 40 && sub.exitCode === null; i++) {
    const pub = spawn('mosquitto_pub', [...pubArgs, '-t', topic, '-m', message], { stdio: 'ignore' })
    await new Promise(resolve => pub.on('close', resolve))
    await sleep(250)
  }
  const code = await done
  if (code !== 0) throw new Error(`mosquitto_sub exited ${code}: ${err}`)
  return out.trim()
}

describe('lorabridge start with no configuration', () => {
  let dir: string
  let daemon: DaemonProcess

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-fresh-'))
    daemon = await startDaemonProcess([], { cwd: dir, env: PORT_OVERRIDES })
  })

  afterAll(async () => {
    await daemon?.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  it('generates the development CA and server certificate in ./data and logs their paths', async () => {
    for (const f of ['ca.crt', 'ca.key', 'server.crt', 'server.key']) await access(join(dir, 'data', f))
    const line = daemon.lines.find(l => Array.isArray(l.created))
    expect(line?.created).toEqual(expect.arrayContaining([join(dir, 'data', 'ca.crt'), join(dir, 'data', 'server.crt')]))
    expect(daemon.lines.filter(l => l.msg === 'listening').map(l => l.protocol).sort()).toEqual(['http', 'mqtt', 'mqtts'])
  })

  it('lets mosquitto_sub and mosquitto_pub exchange a message anonymously on the loopback listener', async () => {
    const port = String(daemon.port('mqtt'))
    const got = await exchange(['-h', '127.0.0.1', '-p', port], ['-h', '127.0.0.1', '-p', port], 'test/hello', 'hello from mosquitto_pub')
    expect(got).toBe('hello from mosquitto_pub')
  })

  it('refuses anonymous clients on mqtts', async () => {
    const r = await import('./helpers/cli.js').then(m => m.run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(daemon.port('mqtts')), '--cafile', join(dir, 'data', 'ca.crt'), '-t', 'test/x', '-m', 'y']))
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/not authori[sz]ed/i)
  })

  it('interoperates with mosquitto over mqtts with --cafile/--cert/--key --tls-version tlsv1.2', async () => {
    // A certificate from `certs client` maps to the user of that name (no password).
    expect((await runCli(['certs', 'client', 'field-app'], { cwd: dir })).code).toBe(0)
    const added = await runCli(['users', 'add', 'field-app', '--role', 'consumer', '--apps', 'farm', '--downlink'], { cwd: dir })
    expect(added.code, added.stderr).toBe(0)
    await sleep(1100) // the daemon re-reads the users file when it changes, checking once a second
    const tlsArgs = ['-h', 'localhost', '-p', String(daemon.port('mqtts')), '--cafile', join(dir, 'data', 'ca.crt'),
      '--cert', join(dir, 'data', 'field-app.crt'), '--key', join(dir, 'data', 'field-app.key'), '--tls-version', 'tlsv1.2']
    const topic = 'lorabridge/farm/devices/0011223344556677/down'
    const got = await exchange([...tlsArgs, '-i', 'sub-field-app'], [...tlsArgs, '-i', 'pub-field-app'], topic, '{"fPort":2,"hex":"01"}')
      .catch((err: Error) => { throw new Error(`${err.message}; daemon: ${JSON.stringify(daemon.lines.filter(l => typeof l.code === 'string').slice(-5))}`) })
    expect(got).toBe('{"fPort":2,"hex":"01"}')
    expect(daemon.lines.some(l => l.msg === 'client authenticated' && l.user === 'field-app' && l.via === 'certificate' && l.protocol === 'mqtts')).toBe(true)
  })

  it('on SIGTERM closes every listener and exits 0 within 5 s', async () => {
    const ports = daemon.lines.filter(l => l.msg === 'listening').map(l => l.port as number)
    const deadline = sleep(5000).then(() => 'timeout' as const)
    const result = await Promise.race([daemon.kill('SIGTERM'), deadline])
    expect(result).toEqual({ code: 0, signal: null })
    for (const port of ports) {
      const refused = await new Promise<boolean>(resolve => {
        const s = netConnect(port, '127.0.0.1')
        s.once('connect', () => { s.destroy(); resolve(false) })
        s.once('error', () => resolve(true))
      })
      expect(refused, `port ${port} still accepts`).toBe(true)
    }
    const stopped = daemon.lines.find(l => l.msg === 'lorabridge stopped')
    expect(stopped).toBeDefined()
    expect(await readFile(join(dir, 'data', 'users.yaml'), 'utf8')).toContain('field-app')
  })
})
