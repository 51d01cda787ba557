/**
 * The Docker Compose deployment's Mosquitto bridge, for real and without a container engine: the
 * built `lorabridge` runs with a configuration derived from docker/lorabridge.yaml (Redis, MQTTS
 * with optional client certificates, the repository's rules), prepared with the README's commands
 * (`certs init --host lorabridge`, `certs client mosquitto-bridge`, `users add mosquitto-bridge
 * --role consumer --apps '*' --downlink`); a real `mosquitto` runs mosquitto/mosquitto.conf with
 * only what must differ here replaced (its listener's port and address, lorabridge's address, the
 * certificate directory). A simulated Conduit talks to lorabridge over MQTTS; plain mqtt.js clients
 * talk only to the downstream Mosquitto.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { runCli, startDaemonProcess, type DaemonProcess } from './helpers/cli.js'
import { collect, connect, sleep, until, type MqttClient } from './helpers/mqtt.js'
import { freePort, startRedis, type RedisServer } from './helpers/redis-server.js'
import { ConduitSimulator, type ReceivedDownlink } from '../src/simulate/conduit.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const MOSQUITTO = process.env.MOSQUITTO ?? (existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto')

const GW_UUID = '7a1c3e20-6156-cdd4-4523-264b523115c1'
const DEVICE = { devEui: '00-80-00-ff-00-00-b1-01', appEui: '16-ea-76-f6-ab-66-3d-80', devAddr: '2600b101', fCnt: 0 }
const DEV_EUI = DEVICE.devEui.replace(/-/g, '')
const DEVICE_TOPIC = `lorabridge/default/devices/${DEV_EUI}`

/**
 * docker/lorabridge.yaml with what a test must change: the data directory, free ports on loopback
 * instead of fixed ports on every interface, this test's Redis, and the rules directory that
 * docker-compose.yml mounts at /app/rules. Everything else (TLS, client certificates, logging) is
 * kept as the container has it.
 */
async function lorabridgeConfig (dataDir: string, redisUrl: string): Promise<string> {
  const c = parse(await readFile(join(root, 'docker', 'lorabridge.yaml'), 'utf8')) as {
    dataDir: string
    mqtt: { listeners: Array<{ host: string, port: number }> }
    http: { listeners: Array<{ host: string, port: number }> }
    redis: { url: string }
    rules: { dir: string }
  }
  expect(c.dataDir).toBe('/app/data')
  expect(c.redis.url).toBe('redis://redis:6379')
  expect(c.rules.dir).toBe('/app/rules')
  c.dataDir = dataDir
  for (const l of [...c.mqtt.listeners, ...c.http.listeners]) { l.host = '127.0.0.1'; l.port = 0 }
  c.redis.url = redisUrl
  c.rules.dir = join(root, 'rules')
  return stringify(c)
}

/**
 * mosquitto/mosquitto.conf with only the addresses, ports and certificate paths that must differ in
 * a test; every other line is the file's own. Each replacement must apply, so a changed
 * mosquitto.conf fails here instead of being tested half-way.
 */
function mosquittoConfig (conf: string, o: { port: number, lorabridgePort: number, dataDir: string }): string {
  const replace = (text: string, from: RegExp, to: string): string => {
    const n = text.match(new RegExp(from.source, from.flags.includes('g') ? from.flags : `${from.flags}g`))?.length ?? 0
    if (n === 0) throw new Error(`mosquitto/mosquitto.conf no longer has ${String(from)}: update this test`)
    return text.replace(from, to)
  }
  let out = conf
  // docker-compose.yml publishes 1883 on 127.0.0.1; here the listener itself binds loopback.
  out = replace(out, /^listener 1883$/m, `listener ${o.port} 127.0.0.1`)
  out = replace(out, /^address lorabridge:8883$/m, `address 127.0.0.1:${o.lorabridgePort}`)
  // The lorabridge-data volume, mounted read-only at /lorabridge-data in the compose file.
  out = replace(out, /\/lorabridge-data\//g, `${o.dataDir}/`)
  // docker-compose.yml runs Mosquitto as the uid that owns lorabridge's 0600 keys; run as root,
  // Mosquitto would switch to the user `mosquitto`, which cannot read them.
  if (process.getuid?.() === 0) out += '\n# Test only: the key files belong to root, as they belong to uid 1000 in the compose setup.\nuser root\n'
  return out
}

interface Mosquitto { child: ChildProcess, output: () => string, stop: () => Promise<void> }

async function startMosquitto (configFile: string, port: number): Promise<Mosquitto> {
  const child = spawn(MOSQUITTO, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const append = (d: Buffer): void => { output = (output + d.toString()).slice(-20_000) }
  child.stdout?.on('data', append)
  child.stderr?.on('data', append)
  let spawnError: Error | undefined
  child.once('error', err => { spawnError = err })
  const exited = once(child, 'exit')
  const lastResort = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
  process.once('exit', lastResort)
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && spawnError === undefined) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    process.removeListener('exit', lastResort)
  }
  try {
    // Ready when its listener accepts an MQTT connection.
    await until(async () => {
      if (spawnError !== undefined) throw new Error(`cannot run ${MOSQUITTO}: ${spawnError.message} (install the Debian package mosquitto)`)
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}:\n${output}`)
      try {
        const probe = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'readiness-probe', connectTimeout: 1000 })
        await probe.endAsync()
        return true
      } catch {
        return false
      }
    }, 'mosquitto to accept connections', 15_000)
  } catch (err) {
    await stop()
    throw err
  }
  return { child, output: () => output, stop }
}

describe('Mosquitto configured by mosquitto/mosquitto.conf bridging lorabridge', () => {
  let dir: string
  let dataDir: string
  let redis: RedisServer | undefined
  let daemon: DaemonProcess | undefined
  let mosquitto: Mosquitto | undefined
  let sim: ConduitSimulator | undefined
  let subscriber: MqttClient | undefined
  let app: MqttClient | undefined
  let downstream: Array<{ topic: string, payload: string }>
  let mosquittoPort: number
  const downlinks: ReceivedDownlink[] = []
  const clears: Array<{ devEui: string }> = []

  const diagnostics = (): string =>
    `\nmosquitto:\n${mosquitto?.output() ?? ''}\nlorabridge: ${JSON.stringify(daemon?.lines.slice(-12))}`
  const downstreamEvent = async (topic: string, pred: (e: Record<string, unknown>) => boolean = () => true, from = 0): Promise<Record<string, unknown>> =>
    await until(() => downstream.slice(from).filter(m => m.topic === topic).map(m => JSON.parse(m.payload) as Record<string, unknown>).find(pred), `${topic} downstream`, 20_000)
      .catch((err: Error) => { throw new Error(`${err.message}; downstream got ${JSON.stringify(downstream.map(m => m.topic))}${diagnostics()}`) })

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-mosquitto-'))
    dataDir = join(dir, 'data')
    redis = await startRedis()
    const configFile = join(dir, 'config', 'lorabridge.yaml')
    await mkdir(join(dir, 'config'))
    await writeFile(configFile, await lorabridgeConfig(dataDir, redis.url))
    // As the container has it: LORABRIDGE_CONFIG names the configuration.
    const env = { LORABRIDGE_CONFIG: configFile }

    // The README's preparation, in its order, before the first start.
    const setup = [
      ['certs', 'init', '--host', 'lorabridge'],
      ['certs', 'client', 'mosquitto-bridge'],
      ['users', 'add', 'mosquitto-bridge', '--role', 'consumer', '--apps', '*', '--downlink'],
      // A Conduit with its own client certificate, bound to its GW-UUID.
      ['certs', 'client', 'conduit-1'],
      ['users', 'add', 'conduit-1', '--role', 'gateway', '--gateway', GW_UUID],
    ]
    for (const args of setup) {
      const r = await runCli(args, { cwd: dir, env })
      expect(r.code, `lorabridge ${args.join(' ')}: ${r.stderr}`).toBe(0)
    }
    daemon = await startDaemonProcess([], { cwd: dir, env })

    const conf = await readFile(join(root, 'mosquitto', 'mosquitto.conf'), 'utf8')
    // Readiness below relies on this being the bridge's last subscription.
    expect([...conf.matchAll(/^topic (\S+) in \d$/gm)].at(-1)?.[1]).toBe('lorabridge/_bridge/#')
    const mosquittoConf = join(dir, 'mosquitto.conf')
    // A free port can be taken by someone else before Mosquitto binds it: then try another.
    for (let attempt = 1; ; attempt++) {
      mosquittoPort = await freePort()
      await writeFile(mosquittoConf, mosquittoConfig(conf, { port: mosquittoPort, lorabridgePort: daemon.port('mqtts'), dataDir }))
      try {
        mosquitto = await startMosquitto(mosquittoConf, mosquittoPort)
        break
      } catch (err) {
        if (attempt === 3 || !/in use/i.test((err as Error).message)) throw err
      }
    }
    const port = mosquittoPort

    // Subscribers and applications connect to the downstream Mosquitto only.
    subscriber = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'downstream-subscriber' })
    downstream = collect(subscriber)
    await subscriber.subscribeAsync('lorabridge/#', { qos: 1 })
    app = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'downstream-app' })

    sim = new ConduitSimulator({
      url: `mqtts://127.0.0.1:${daemon.port('mqtts')}`,
      // app-connect 1.1.1: the one that takes `clear` (it subscribes to down and clear at once).
      version: '1.1.1',
      gwUuid: GW_UUID,
      gatewayEuis: ['00-80-00-00-d0-00-b1-ff'],
      devices: [{ ...DEVICE }],
      ca: await readFile(join(dataDir, 'ca.crt')),
      cert: await readFile(join(dataDir, 'conduit-1.crt')),
      key: await readFile(join(dataDir, 'conduit-1.key')),
    })
    sim.on('downlink', (d: ReceivedDownlink) => { downlinks.push(d) })
    sim.on('clear', (c: { devEui: string }) => { clears.push(c) })
    await sim.start()

    // The bridge is up once lorabridge's retained rule-set status has crossed it: its topic is
    // the last "in" line, and lorabridge handles a client's SUBSCRIBEs in order. Then the
    // Conduit's presence.
    await downstreamEvent('lorabridge/_bridge/rules')
    await downstreamEvent(`lorabridge/gateways/${GW_UUID}/status`, e => e.online === true)
  })

  afterAll(async () => {
    await sim?.stop().catch(() => undefined)
    await subscriber?.endAsync(true).catch(() => undefined)
    await app?.endAsync(true).catch(() => undefined)
    await mosquitto?.stop()
    if (daemon !== undefined) {
      const d = daemon
      const timer = setTimeout(() => { void d.kill('SIGKILL') }, 10_000)
      await d.kill('SIGTERM')
      clearTimeout(timer)
    }
    await redis?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('connects to lorabridge over TLS as the consumer named by its client certificate', async () => {
    const auth = daemon!.lines.find(l => l.msg === 'client authenticated' && l.user === 'mosquitto-bridge')
    expect(auth, diagnostics()).toMatchObject({ via: 'certificate', protocol: 'mqtts' })
    // The compose file's bridge dials lorabridge:8883 and checks the name; `certs init --host lorabridge` puts it in.
    const server = new X509Certificate(await readFile(join(dataDir, 'server.crt')))
    expect(server.subjectAltName?.split(', ')).toContain('DNS:lorabridge')
  })

  it('delivers a Conduit uplink, normalized, to a subscriber of the downstream Mosquitto', async () => {
    const from = downstream.length
    await sim!.uplink(0, { port: 7, data: Buffer.from([0x01, 0x02, 0xfe]) })
    const up = await downstreamEvent(`${DEVICE_TOPIC}/up`, () => true, from)
    expect(up).toMatchObject({
      app: 'default',
      devEui: DEV_EUI,
      devAddr: DEVICE.devAddr,
      fPort: 7,
      data: 'AQL+',
      hex: '0102fe',
      network: { type: 'multitech', transport: 'mqtt', gateway: GW_UUID },
    })
    expect(typeof up.id).toBe('string')
  })

  it('delivers joins, and gives late subscribers what was retained when the bridge subscribed', async () => {
    const from = downstream.length
    await sim!.join(0)
    expect(await downstreamEvent(`${DEVICE_TOPIC}/join`, () => true, from)).toMatchObject({ app: 'default', devEui: DEV_EUI })
    const late = await connect(`mqtt://127.0.0.1:${mosquittoPort}`, { clientId: 'downstream-late' })
    try {
      const got: Array<{ topic: string, retain: boolean, payload: string }> = []
      late.on('message', (topic, payload, packet) => { got.push({ topic, retain: packet.retain, payload: payload.toString() }) })
      await late.subscribeAsync('lorabridge/#', { qos: 1 })
      // The rule-set status was retained in lorabridge before the bridge subscribed, so it crossed
      // with its retain flag. (The Conduit's presence was published while the bridge was connected:
      // MQTT 3.1.1 forwards that without the flag, so Mosquitto does not retain it; see README.)
      const rules = await until(() => got.find(m => m.topic === 'lorabridge/_bridge/rules'), 'the retained rule-set status', 10_000)
      expect(rules.retain).toBe(true)
      expect(JSON.parse(rules.payload)).toBeTypeOf('object')
    } finally {
      await late.endAsync(true)
    }
  })

  it('carries a down request published downstream back to lorabridge and on to the Conduit, once', async () => {
    const from = downstream.length
    const before = downlinks.length
    await app!.publishAsync(`${DEVICE_TOPIC}/down`, JSON.stringify({ id: 'dl-bridge-1', fPort: 3, hex: 'a1b2', confirmed: true }), { qos: 1 })
    await until(() => downlinks.length > before, 'the downlink at the Conduit', 20_000)
      .catch((err: Error) => { throw new Error(`${err.message}${diagnostics()}`) })
    const dl = downlinks[before]!
    expect(dl.topic).toBe(`lorawan/${GW_UUID}/down`)
    expect(dl.data).toEqual(Buffer.from([0xa1, 0xb2]))
    expect(dl.payload).toMatchObject({ deveui: DEVICE.devEui, port: 3, ack: true })
    // lorabridge's outcome comes back down the bridge.
    expect(await downstreamEvent(`${DEVICE_TOPIC}/down/queued`, e => e.id === 'dl-bridge-1', from)).toMatchObject({ app: 'default', devEui: DEV_EUI })
    // No loop and no echo: the command crossed once, and subscribers saw it once.
    await sleep(1000)
    expect(downlinks.length - before).toBe(1)
    expect(downstream.slice(from).filter(m => m.topic === `${DEVICE_TOPIC}/down`)).toHaveLength(1)
    expect(downstream.slice(from).filter(m => m.topic === `${DEVICE_TOPIC}/down/queued`)).toHaveLength(1)
  })

  it('carries a clear request back to lorabridge, and its outcome down again', async () => {
    const from = downstream.length
    await app!.publishAsync(`${DEVICE_TOPIC}/clear`, '{"id":"clear-bridge-1"}', { qos: 1 })
    // The Conduit is told to flush the device's queue, and the outcome crosses back.
    expect(await downstreamEvent(`${DEVICE_TOPIC}/down/queued`, e => e.id === 'clear-bridge-1', from)).toMatchObject({ command: 'clear', devEui: DEV_EUI })
    // The outcome and the Conduit's copy travel different ways (through Mosquitto, straight over
    // TCP): wait for the Conduit's rather than assume which arrives first.
    await until(() => clears.length > 0 || undefined, 'the clear at the Conduit')
    expect(clears.map(c => c.devEui.replace(/-/g, ''))).toEqual([DEV_EUI])
  })
})
