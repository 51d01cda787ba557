/**
 * `lorabridge simulate conduit`: runs a ConduitSimulator, sends uplinks at a steady rate spread over
 * the devices, prints one JSON line per received downlink and a final summary line. SIGINT/SIGTERM
 * (or the end of --count) publish close, disconnect cleanly and exit 0. Like paho, it reconnects
 * on its own after a lost connection (1 s, doubling up to 120 s).
 */
import { readFileSync } from 'node:fs'
import { Sleeper } from './sleeper.js'
import { ConduitSimulator, type AppConnectVersion, type ConduitOptions, type ReceivedDownlink } from './conduit.js'

export interface ConduitCliOptions {
  url: string
  version?: string
  hex?: boolean
  devices?: number
  rate?: number
  count?: number
  port?: number
  /** every uplink's payload in hex (default: 01 and the frame counter) */
  payload?: string
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

const VERSIONS: AppConnectVersion[] = ['1.0', '1.1', '1.1.1']

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

export async function simulateConduit (opts: ConduitCliOptions, io: ConduitCliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<ConduitCliSummary> {
  const version = (opts.version ?? '1.1') as AppConnectVersion
  if (!VERSIONS.includes(version)) throw new Error(`--version must be one of ${VERSIONS.join(', ')}`)
  const deviceCount = positiveInt('devices', opts.devices, 1) ?? 1
  const count = positiveInt('count', opts.count, undefined, 0)
  const port = positiveInt('port', opts.port, 1, 0) ?? 1
  if (port > 255) throw new Error('--port must be 0-255')
  if (opts.payload !== undefined && !/^(?:[0-9a-fA-F]{2})+$/.test(opts.payload)) throw new Error('--payload must be an even number of hex digits')
  const data = opts.payload !== undefined ? Buffer.from(opts.payload, 'hex') : undefined
  const rate = opts.rate ?? 1
  if (!(rate > 0) || !Number.isFinite(rate)) throw new Error('--rate must be a positive number')
  const linger = opts.linger ?? 1000

  let password = opts.password
  if (opts.passwordStdin === true) password = (await readAll(io.stdin)).replace(/\r?\n$/, '')

  const simOpts: ConduitOptions = {
    url: opts.url,
    version,
    encodeHex: opts.hex === true,
    deviceCount,
    cleanSession: opts.clean === true,
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
  const sleeper = new Sleeper()
  const sleep = (ms: number): Promise<void> => sleeper.sleep(ms)
  const stop = (): void => { sleeper.stop() }

  sim.on('downlink', (d: ReceivedDownlink) => { downlinks++; io.stdout.write(`${downlinkLine(d)}\n`) })
  sim.on('error', (err: Error) => { io.stderr.write(`simulate conduit: ${err.message}\n`) })

  // paho-style automatic reconnect with backoff after a lost connection.
  let backoff = 1000
  let reconnecting: Promise<void> | undefined
  sim.on('connect', () => { backoff = 1000 })
  sim.on('disconnect', () => {
    if (sleeper.stopped || reconnecting !== undefined) return
    reconnecting = (async () => {
      while (!sleeper.stopped && !sim.isConnected) {
        await sleep(backoff)
        if (sleeper.stopped) break
        backoff = Math.min(backoff * 2, 120_000)
        try { await sim.reconnect() } catch (err) { io.stderr.write(`simulate conduit: reconnect failed: ${(err as Error).message}\n`) }
      }
    })().finally(() => { reconnecting = undefined })
  })

  const signals = io.signals !== false
  if (signals) { process.once('SIGINT', stop); process.once('SIGTERM', stop) }
  io.abort?.addEventListener('abort', stop, { once: true })
  try {
    await sim.start()
    if (opts.join === true) {
      for (let i = 0; i < sim.devices.length && !sleeper.stopped; i++) await sim.join(i)
    }
    const t0 = Date.now()
    for (let i = 0; !sleeper.stopped && (count === undefined || i < count); i++) {
      try {
        await sim.uplink(i % deviceCount, { port, ...(data !== undefined ? { data } : {}) })
        uplinks++
      } catch (err) {
        io.stderr.write(`simulate conduit: uplink failed: ${(err as Error).message}\n`)
      }
      if (count !== undefined && i + 1 >= count) break
      await sleep(t0 + ((i + 1) * 1000) / rate - Date.now())
    }
    if (!sleeper.stopped) await sleep(linger)
    stop()
    await reconnecting
    await sim.close().catch(async (err: unknown) => {
      io.stderr.write(`simulate conduit: close failed: ${(err as Error).message}\n`)
      await sim.stop()
    })
  } catch (err) {
    sleeper.stop()
    await sim.stop()
    throw err
  } finally {
    if (signals) { process.off('SIGINT', stop); process.off('SIGTERM', stop) }
  }
  io.stdout.write(`${JSON.stringify({ event: 'summary', uplinks, downlinks })}\n`)
  return { uplinks, downlinks }
}

/** The commander action: runs the simulator and exits 0. */
export async function simulateConduitCommand (opts: ConduitCliOptions): Promise<void> {
  await simulateConduit(opts)
  process.exitCode = 0
}
