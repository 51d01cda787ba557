/**
 * Configuration: `lorabridge config check` reports every problem with its path (must-show 9);
 * environment overrides; defaults; freezing.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/cli.js'
import { checkConfig, loadConfig } from '../src/config/load.js'

describe('lorabridge config check', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lorabridge-config-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('prints both mistakes of a file with two, with their paths, and exits 1', async () => {
    const file = join(dir, 'two-mistakes.yaml')
    await writeFile(file, [
      'mqtt:',
      '  listeners:',
      '    - { protocol: mqtt, host: 127.0.0.1, port: 70000 }',
      'log:',
      '  levle: debug',
      '',
    ].join('\n'))
    const r = await runCli(['-c', file, 'config', 'check'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('2 problems')
    expect(r.stderr).toMatch(/mqtt\.listeners\[0\]\.port: must be <= 65535/)
    expect(r.stderr).toMatch(/log\.levle: is not a known option/)
  })

  it('reports YAML syntax errors with their line', async () => {
    const file = join(dir, 'broken.yaml')
    await writeFile(file, 'mqtt:\n  listeners: [\n')
    const r = await runCli(['-c', file, 'config', 'check'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/line \d+/)
  })

  it('reports an alias without its anchor instead of crashing', async () => {
    const file = join(dir, 'alias.yaml')
    await writeFile(file, 'log: *nowhere\n')
    const r = await runCli(['-c', file, 'config', 'check'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/alias/i)
  })

  // Verbatim from the contract, fixed ports included: `config check` only validates, nothing binds.
  it('accepts the example of PRODUCT.md §7 and exits 0', async () => {
    const file = join(dir, 'example.yaml')
    await writeFile(file, `
dataDir: ./data
topics: { root: lorabridge }
mqtt:
  listeners:
    - { protocol: mqtt,  host: 127.0.0.1, port: 1883, anonymous: true }
    - { protocol: mqtts, host: 0.0.0.0,  port: 8883 }
    - { protocol: wss,   host: 0.0.0.0,  port: 8884, path: /mqtt }
  tls: { cert: server.crt, key: server.key, ca: ca.crt, clientCertificates: optional }
http:
  listeners:
    - { protocol: http, host: 127.0.0.1, port: 8080 }
auth: { usersFile: ./data/users.yaml, certificateIdentity: cn }
redis: { url: redis://127.0.0.1:6379 }
applications:
  - name: farm
    match: { appEui: [16-ea-76-f6-ab-66-3d-80], devEui: [], gateways: [], thingpark: [tp-eu] }
multitech: { http: { enabled: true } }
thingpark:
  connections:
    - name: tp-eu
      path: /thingpark/tp-eu
      asId: TWA_100000001.1.AS
      asKey: 0123456789abcdef0123456789abcdef
      downlinkUrl: https://api.thingpark.com/thingpark/lrc/rest/downlink
      maxTimeDeviation: 60
rules: { dir: ./rules, watch: true }
log: { level: info }
`)
    // The certificate, key and CA it names must exist (issue 17): `certs init` makes them in dataDir.
    const init = await runCli(['-c', file, 'certs', 'init'])
    expect(init.code, init.stderr).toBe(0)
    const r = await runCli(['-c', file, 'config', 'check'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('refuses anonymous access on a listener that is not loopback', async () => {
    const file = join(dir, 'anon.yaml')
    await writeFile(file, 'mqtt:\n  listeners:\n    - { protocol: mqtt, host: 0.0.0.0, port: 0, anonymous: true }\n')
    const r = await runCli(['-c', file, 'config', 'check'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/mqtt\.listeners\[0\]\.anonymous: anonymous access is only allowed on a loopback host/)
  })

  it('asks for a ThingPark key named by asKeyEnv where it is used (config check, start), not to add a user', async () => {
    const file = join(dir, 'tp-env.yaml')
    await writeFile(file, `dataDir: ./tp-env-data
thingpark:
  connections:
    - { name: tp, path: /tp, asId: TWA_1.1.AS, asKeyEnv: LB_TEST_TP_KEY, downlinkUrl: "http://127.0.0.1:9/x" }
`)
    const env = { LB_TEST_TP_KEY: '' }
    const check = await runCli(['-c', file, 'config', 'check'], { env })
    expect(check.code).toBe(1)
    expect(check.stderr).toMatch(/thingpark\.connections\[0\]\.asKeyEnv: environment variable LB_TEST_TP_KEY must hold the AS key/)
    const add = await runCli(['-c', file, 'users', 'add', 'alice', '--role', 'admin', '--password-stdin'], { env, input: 'a long enough password\n' })
    expect(add.stderr).toBe('')
    expect(add.code).toBe(0)
    const list = await runCli(['-c', file, 'users', 'list'], { env })
    expect(list.stdout).toContain('alice')
    const withKey = await runCli(['-c', file, 'config', 'check'], { env: { LB_TEST_TP_KEY: '0123456789abcdef0123456789abcdef' } })
    expect(withKey.code).toBe(0)
  })

  it('reports a missing file named with -c', async () => {
    const r = await runCli(['-c', join(dir, 'nope.yaml'), 'config', 'check'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('does not exist')
  })

  it('`start` with an invalid configuration exits 1 without starting', async () => {
    const file = join(dir, 'bad-start.yaml')
    await writeFile(file, 'log: { level: chatty }\n')
    const r = await runCli(['-c', file, 'start'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/log\.level: must be one of fatal, error, warn, info, debug, trace, silent/)
  })
})

describe('environment overrides', () => {
  it('sets nested camelCase options and list items from LORABRIDGE_… variables', () => {
    const { config } = loadConfig({
      cwd: tmpdir(),
      env: {
        LORABRIDGE_LOG_LEVEL: 'debug',
        LORABRIDGE_MQTT_TLS_CLIENT_CERTIFICATES: 'required',
        LORABRIDGE_MQTT_LISTENERS_0_PORT: '0',
        LORABRIDGE_MQTT_LIMITS_CONNECT_RATE_PER_ADDRESS: '7',
        LORABRIDGE_REDIS_URL: 'redis://127.0.0.1:6390',
      },
    })
    expect(config.log.level).toBe('debug')
    expect(config.mqtt.tls.clientCertificates).toBe('required')
    expect(config.mqtt.listeners[0]).toMatchObject({ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true })
    expect(config.mqtt.limits.connectRate.perAddress).toBe(7)
    expect(config.redis?.url).toBe('redis://127.0.0.1:6390')
  })

  it('replaces a list with JSON, and reports unknown variables and bad values with their names', () => {
    const { issues } = checkConfig({
      cwd: tmpdir(),
      env: { LORABRIDGE_MQTT_LISTENERS: '[{"protocol":"mqtt","host":"127.0.0.1","port":0}]', LORABRIDGE_NOPE: '1', LORABRIDGE_HTTP_BODY_LIMIT: 'lots' },
    })
    expect(issues.map(i => i.path).sort()).toEqual(['env:LORABRIDGE_HTTP_BODY_LIMIT', 'env:LORABRIDGE_NOPE'])
    const ok = loadConfig({ cwd: tmpdir(), env: { LORABRIDGE_MQTT_LISTENERS: '[{"protocol":"mqtt","host":"127.0.0.1","port":0}]' } })
    expect(ok.config.mqtt.listeners).toEqual([{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: false, path: '/mqtt' }])
  })

  it('freezes the validated configuration and resolves paths against the file directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lorabridge-config-'))
    try {
      await writeFile(join(dir, 'lorabridge.yaml'), 'dataDir: ./state\n')
      const { config } = loadConfig({ cwd: dir, env: {} })
      expect(config.dataDir).toBe(join(dir, 'state'))
      expect(config.auth.usersFile).toBe(join(dir, 'state', 'users.yaml'))
      expect(Object.isFrozen(config.mqtt.listeners[0])).toBe(true)
      expect(() => { (config.log as { level: string }).level = 'trace' }).toThrow(TypeError)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
