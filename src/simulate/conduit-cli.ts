/**
 * `lorabridge simulate conduit`: runs a ConduitSimulator, sends uplinks at a steady rate spread over
 * the devices and prints, as JSON lines on stdout, the devices it uses, each uplink it sent, each
 * downlink it received and a final summary. Each run is a fresh session (session.ts): a random
 * DevAddr and first frame counter per device unless --dev-addr/--fcnt say otherwise.
 *
 * How long it runs: --count uplinks then a short --linger for late downlinks; --keep-running goes
 * on (printing downlinks) until SIGINT/SIGTERM; --duration ends the run after that many seconds;
 * without --count it sends until stopped. SIGINT/SIGTERM publish close, disconnect cleanly and exit 0.
 * A connection that cannot be made, or that the broker refuses, ends the run with a line saying why
 * (the CONNACK code and what to check, refusal.ts) and exit 1. After a lost connection it reconnects
 * like paho (1 s, doubling up to 120 s) unless the broker refuses it.
 */
import { readFileSync } from 'node:fs'
import { Sleeper } from './sleeper.js'
import { ConduitSimulator, generatedDevice, type AppConnectVersion, type ConduitOptions, type ReceivedDownlink, type SimDevice } from './conduit.js'
import { compilePayloadTemplate } from './payload-template.js'
import { devAddrPlus, parseDevAddr, parseFcnt, randomDevAddr, randomFcnt } from './session.js'
import { connackCode, connectFailureMessage } from './refusal.js'

export interface ConduitCliOptions {
  url: string
  /** app-connect API version (default 1.1.1) */
  apiVersion?: string
  hex?: boolean
  devices?: number
  rate?: number
  count?: number
  /** uplink FPort (default 1) */
  fport?: number
  /** deprecated alias of fport */
  port?: number
  /** every uplink's payload: hex with {n}/{fcnt} counters (payload-template.ts); default 01{n} */
  payload?: string
  /** DevAddr of the first device (device i: + i); default random */
  devAddr?: string
  /** first frame counter of every device; default random */
  fcnt?: number
  /** end the run after this many seconds */
  duration?: number
  /** keep running after the last --count uplink, until SIGINT/SIGTERM (or --duration) */
  keepRunning?: boolean
  gwUuid?: string
  appEui?: string
  username?: string
  password?: string
  passwordStdin?: boolean
  ca?: string
  cert?: string
  key?: string
  clean?: boolean
  /** publish a joined event for every device before the first uplink */
  join?: boolean
  /** ms to wait for late downlinks after the last uplink of --count (default 1000) */
  linger?: number
}

export interface ConduitCliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  stdin: NodeJS.ReadableStream
  /** install SIGINT/SIGTERM handlers (default true) */
  signals?: boolean
  /** stop early (tests) */
  abort?: AbortSignal
}

export interface ConduitCliSummary { uplinks: number, downlinks: number }

/** A failure the command reports in one line and exits 1 for (no stack). */
export class SimulatorError extends Error {
  readonly exitCode = 1
}

const VERSIONS: AppConnectVersion[] = ['1.0', '1.1', '1.1.1']
export const DEFAULT_API_VERSION: AppConnectVersion = '1.1.1'
export const DEFAULT_CONDUIT_PAYLOAD = '01{n}'

async function readAll (stream: NodeJS.ReadableStream): Promise<string> {
  let s = ''
  for await (const chunk of stream) s += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8')
  return s
}

function positiveInt (name: string, v: number | undefined, dflt: number | undefined, min = 1): number | undefined {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}`)
  return v
}

export function downlinkLine (d: ReceivedDownlink): string {
  const port = d.payload.port
  return JSON.stringify({
    event: 'downlink',
    devEui: d.devEui,
    port: typeof port === 'number' ? port : null,
    data: d.data.toString('hex'),
    ...(d.topic !== undefined ? { topic: d.topic } : { path: d.path }),
  })
}

/** The devices of this run: stable DevEUIs, a fresh DevAddr and first frame counter each. */
function sessionDevices (count: number, devAddr: string | undefined, fcnt: number | undefined): SimDevice[] {
  const base = devAddr !== undefined ? parseDevAddr(devAddr) : undefined
  return Array.from({ length: count }, (_, i) => ({
    ...generatedDevice(i),
    devAddr: base !== undefined ? devAddrPlus(base, i) : randomDevAddr(),
    fCnt: fcnt ?? randomFcnt(),
  }))
}

export async function simulateConduit (opts: ConduitCliOptions, io: ConduitCliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<ConduitCliSummary> {
  const version = (opts.apiVersion ?? DEFAULT_API_VERSION) as AppConnectVersion
  if (!VERSIONS.includes(version)) throw new Error(`--api-version must be one of ${VERSIONS.join(', ')}`)
  const deviceCount = positiveInt('devices', opts.devices, 1) ?? 1
  const count = positiveInt('count', opts.count, undefined, 0)
  if (opts.port !== undefined) {
    io.stderr.write('simulate conduit: --port is deprecated; use --fport (the uplinks\' FPort)\n')
    if (opts.fport !== undefined && opts.fport !== opts.port) throw new Error('--port and --fport differ; give --fport only')
  }
  const fPort = positiveInt('fport', opts.fport ?? opts.port, 1, 0) ?? 1
  if (fPort > 255) throw new Error('--fport must be 0-255')
  const payload = compilePayloadTemplate(opts.payload ?? DEFAULT_CONDUIT_PAYLOAD)
  const rate = opts.rate ?? 1
  if (!(rate > 0) || !Number.isFinite(rate)) throw new Error('--rate must be a positive number')
  const linger = opts.linger ?? 1000
  const duration = opts.duration
  if (duration !== undefined && (!(duration > 0) || !Number.isFinite(duration))) throw new Error('--duration must be a positive number of seconds')
  const devices = sessionDevices(deviceCount, opts.devAddr, parseFcnt(opts.fcnt))

  let password = opts.password
  if (opts.passwordStdin === true) password = (await readAll(io.stdin)).replace(/\r?\n$/, '')

  const simOpts: ConduitOptions = {
    url: opts.url,
    version,
    encodeHex: opts.hex === true,
    devices,
    cleanSession: opts.clean === true,
    // The first contact fails fast with its reason; later posts keep app-connect's three tries.
    httpInitTries: 1,
  }
  if (opts.gwUuid !== undefined) simOpts.gwUuid = opts.gwUuid
  if (opts.appEui !== undefined) simOpts.appEui = opts.appEui
  if (opts.username !== undefined) simOpts.username = opts.username
  if (password !== undefined) simOpts.password = password
  if (opts.ca !== undefined) simOpts.ca = readFileSync(opts.ca)
  if (opts.cert !== undefined) simOpts.cert = readFileSync(opts.cert)
  if (opts.key !== undefined) simOpts.key = readFileSync(opts.key)

  const sim = new ConduitSimulator(simOpts)
  let uplinks = 0
  let downlinks = 0
  let refused: string | undefined
  const sleeper = new Sleeper()
  const sleep = (ms: number): Promise<void> => sleeper.sleep(ms)
  const stop = (): void => { sleeper.stop() }
  const line = (o: Record<string, unknown>): void => { io.stdout.write(`${JSON.stringify(o)}\n`) }

  sim.on('downlink', (d: ReceivedDownlink) => { downlinks++; io.stdout.write(`${downlinkLine(d)}\n`) })
  sim.on('error', (err: Error) => { io.stderr.write(`simulate conduit: ${err.message}\n`) })

  // paho-style automatic reconnect with backoff after a lost connection; a refusal ends the run.
  let backoff = 1000
  let reconnecting: Promise<void> | undefined
  sim.on('connect', () => { backoff = 1000 })
  sim.on('disconnect', () => {
    if (sleeper.stopped || reconnecting !== undefined) return
    io.stderr.write(`simulate conduit: connection to ${opts.url} lost; reconnecting\n`)
    reconnecting = (async () => {
      while (!sleeper.stopped && !sim.isConnected) {
        await sleep(backoff)
        if (sleeper.stopped) break
        backoff = Math.min(backoff * 2, 120_000)
        try {
          await sim.reconnect()
        } catch (err) {
          const message = connectFailureMessage(opts.url, err)
          io.stderr.write(`simulate conduit: reconnect failed: ${message}\n`)
          if (connackCode(err) !== undefined) { refused = message; stop() }
        }
      }
    })().finally(() => { reconnecting = undefined })
  })

  const signals = io.signals !== false
  if (signals) { process.once('SIGINT', stop); process.once('SIGTERM', stop) }
  io.abort?.addEventListener('abort', stop, { once: true })
  const timer = duration !== undefined ? setTimeout(stop, duration * 1000) : undefined
  try {
    try {
      await sim.start()
    } catch (err) {
      throw new SimulatorError(connectFailureMessage(opts.url, err))
    }
    // What this run sends as: the DevEUIs to address downlinks to, and the session's first frame.
    for (const d of sim.devices) line({ event: 'device', devEui: d.devEui, devAddr: d.devAddr, fCnt: d.fCnt, fPort, gateway: sim.gwUuid, gatewayEui: sim.gatewayEuis[0] })
    if (opts.join === true) {
      for (let i = 0; i < sim.devices.length && !sleeper.stopped; i++) await sim.join(i)
    }
    const t0 = Date.now()
    for (let i = 0; !sleeper.stopped && (count === undefined || i < count); i++) {
      const dev = sim.devices[i % deviceCount] as SimDevice
      const data = payload({ n: Math.floor(i / deviceCount), fcnt: dev.fCnt })
      try {
        const sent = await sim.uplink(dev, { port: fPort, data })
        uplinks++
        line({ event: 'uplink', devEui: dev.devEui, fCnt: sent.fcnt, fPort, hex: data.toString('hex') })
      } catch (err) {
        io.stderr.write(`simulate conduit: uplink failed: ${(err as Error).message}\n`)
      }
      if (count !== undefined && i + 1 >= count) break
      await sleep(t0 + ((i + 1) * 1000) / rate - Date.now())
    }
    if (!sleeper.stopped) {
      if (opts.keepRunning === true) {
        io.stderr.write(`simulate conduit: ${uplinks} uplink${uplinks === 1 ? '' : 's'} sent; printing downlinks until ${duration !== undefined ? `${duration} s have passed or ` : ''}Ctrl-C\n`)
        const alive = setInterval(() => undefined, 1 << 30) // the socket alone may not hold the process
        await sleeper.untilStopped()
        clearInterval(alive)
      } else {
        await sleep(linger)
      }
    }
    stop()
    await reconnecting
    if (refused !== undefined) throw new SimulatorError(refused)
    await sim.close().catch(async (err: unknown) => {
      io.stderr.write(`simulate conduit: close failed: ${(err as Error).message}\n`)
      await sim.stop()
    })
  } catch (err) {
    sleeper.stop()
    await sim.stop()
    throw err
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    if (signals) { process.off('SIGINT', stop); process.off('SIGTERM', stop) }
  }
  line({ event: 'summary', uplinks, downlinks })
  return { uplinks, downlinks }
}

/** The commander action: runs the simulator and exits 0 (1 with a one-line reason when it cannot run). */
export async function simulateConduitCommand (opts: ConduitCliOptions): Promise<void> {
  try {
    await simulateConduit(opts)
  } catch (err) {
    if (err instanceof SimulatorError) {
      process.stderr.write(`simulate conduit: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  process.exitCode = 0
}

/**
 * `simulate conduit --version 1.1` once chose the app-connect API version; `--version` is now the
 * program's own. Found before parsing, because commander gives a program option precedence
 * wherever it appears: the message names the new option instead of printing a version.
 */
export function legacyVersionFlag (argv: string[]): string | undefined {
  const at = argv.indexOf('simulate')
  if (at < 0 || argv[at + 1] !== 'conduit') return undefined
  const flag = argv.slice(at + 2).find(a => a === '--version' || a.startsWith('--version='))
  if (flag === undefined) return undefined
  return 'simulate conduit: --version is now --api-version (the app-connect API version: 1.0, 1.1 or 1.1.1; default 1.1.1); `lorabridge --version` prints lorabridge\'s version'
}
