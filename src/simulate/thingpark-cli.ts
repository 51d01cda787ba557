/**
 * `lorabridge simulate thingpark`: a ThingParkSimulator posting --count reports spread over --devices
 * devices at --rate per second (open loop, at most --concurrency in flight), one JSON line per post.
 * With --lrc-port it also serves the LRC downlink endpoint, prints one line per downlink request and
 * runs until SIGINT/SIGTERM (--keep-running does the same without it; --duration ends the run after
 * that many seconds). Each run is a fresh session (session.ts): a random DevAddr and first FCntUp
 * per device unless --dev-addr/--fcnt say otherwise; a `device` line per device at start and an
 * `uplink` line per uplink say what was sent. A summary line ends the output.
 */
import { readFileSync } from 'node:fs'
import { Sleeper } from './sleeper.js'
import { compilePayloadTemplate } from './payload-template.js'
import { devAddrPlus, parseDevAddr, parseFcnt, randomDevAddr, randomFcnt } from './session.js'
import { ThingParkSimulator, TP_CONTENT_TYPES, type LrcRequest, type PostResult, type ThingParkSimulatorOptions, type TpContentType } from './thingpark.js'

export type TpReportKind = 'uplink' | 'join' | 'notification' | 'location'
const REPORTS: readonly TpReportKind[] = ['uplink', 'join', 'notification', 'location']

export interface ThingParkCliOptions {
  url: string
  asId: string
  asKey?: string
  /** name of an environment variable holding the AS key */
  asKeyEnv?: string
  /** first DevEUI (default 0018B20000000001); device i is this + i */
  devEui?: string
  devices?: number
  count?: number
  rate?: number
  contentType?: string
  report?: string
  /** uplink FPort (default 1) */
  fport?: number
  /** every uplink's payload: hex with {n}/{fcnt} counters (payload-template.ts); default 01{n:2} */
  payload?: string
  /** DevAddr of the first device (device i: + i); default random */
  devAddr?: string
  /** first FCntUp of every device; default random */
  fcnt?: number
  /** end the run after this many seconds */
  duration?: number
  /** keep running after the last report until SIGINT/SIGTERM (as --lrc-port does) */
  keepRunning?: boolean
  customerId?: string
  lrcPort?: number
  lrcHost?: string
  ca?: string
  /** default true; false = `Connection: close` on every post, like the real LRC */
  keepAlive?: boolean
  /** posts in flight at most (default 64) */
  concurrency?: number
}

export interface ThingParkCliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  /** install SIGINT/SIGTERM handlers (default true) */
  signals?: boolean
  /** stop early (tests) */
  abort?: AbortSignal
  /** receives the LRC downlink URL once listening (tests) */
  onLrc?: (url: string) => void
  /** a post that got no answer at all (connection refused, timeout): the command says so on stderr */
  onFailedPost?: (url: string, error: string) => void
}

export interface ThingParkCliSummary { posts: number, failed: number, downlinks: number }

function intOption (name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}`)
  return v
}

function deviceEui (base: string, i: number): string {
  const h = base.replace(/[-:\s]/g, '')
  if (!/^[0-9a-fA-F]{16}$/.test(h)) throw new Error(`--dev-eui: not an EUI-64: ${base}`)
  return ((BigInt(`0x${h}`) + BigInt(i)) & 0xffffffffffffffffn).toString(16).toUpperCase().padStart(16, '0')
}

export const DEFAULT_THINGPARK_PAYLOAD = '01{n:2}'

export async function simulateThingPark (opts: ThingParkCliOptions, io: ThingParkCliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<ThingParkCliSummary> {
  let asKey = opts.asKey
  if (opts.asKeyEnv !== undefined) {
    asKey = process.env[opts.asKeyEnv]
    if (asKey === undefined || asKey === '') throw new Error(`--as-key-env: environment variable ${opts.asKeyEnv} is not set`)
  }
  if (asKey === undefined || asKey === '') throw new Error('an AS key is required (--as-key or --as-key-env)')
  const contentType = (opts.contentType ?? 'json') as TpContentType
  if (!TP_CONTENT_TYPES.includes(contentType)) throw new Error(`--content-type must be one of ${TP_CONTENT_TYPES.join(', ')}`)
  const report = (opts.report ?? 'uplink') as TpReportKind
  if (!REPORTS.includes(report)) throw new Error(`--report must be one of ${REPORTS.join(', ')}`)
  const deviceCount = intOption('devices', opts.devices, 1, 1)
  const count = intOption('count', opts.count, 1, 0)
  const concurrency = intOption('concurrency', opts.concurrency, 64, 1)
  const fPort = intOption('fport', opts.fport, 1, 1)
  if (fPort > 223) throw new Error('--fport must be 1-223')
  const payload = compilePayloadTemplate(opts.payload ?? DEFAULT_THINGPARK_PAYLOAD)
  const firstFcnt = parseFcnt(opts.fcnt)
  const devAddrBase = opts.devAddr !== undefined ? parseDevAddr(opts.devAddr) : undefined
  const duration = opts.duration
  if (duration !== undefined && (!(duration > 0) || !Number.isFinite(duration))) throw new Error('--duration must be a positive number of seconds')
  const rate = opts.rate ?? 1
  if (!(rate > 0) || !Number.isFinite(rate)) throw new Error('--rate must be a positive number')
  const lrcPort = opts.lrcPort === undefined ? undefined : intOption('lrc-port', opts.lrcPort, 0, 0)
  const devEuis = Array.from({ length: deviceCount }, (_, i) => deviceEui(opts.devEui ?? '0018B20000000001', i))
  const sessions = new Map(devEuis.map((devEui, i) => [devEui, {
    devAddr: (devAddrBase !== undefined ? devAddrPlus(devAddrBase, i) : randomDevAddr()).toUpperCase(),
    fCnt: firstFcnt ?? randomFcnt(),
    n: 0,
  }]))

  const simOpts: ThingParkSimulatorOptions = { asUrl: opts.url, asId: opts.asId, asKey, contentType, keepAlive: opts.keepAlive !== false }
  if (opts.customerId !== undefined) simOpts.customerId = opts.customerId
  if (opts.ca !== undefined) simOpts.ca = readFileSync(opts.ca)
  const sim = new ThingParkSimulator(simOpts)

  let posts = 0
  let failed = 0
  let downlinks = 0
  const line = (o: Record<string, unknown>): void => { io.stdout.write(`${JSON.stringify(o)}\n`) }
  const postLine = (root: string, devEui: string, r: PostResult | undefined, err?: unknown): void => {
    posts++
    const ok = r !== undefined && r.status >= 200 && r.status < 300
    if (!ok) failed++
    if (r !== undefined) line({ event: 'post', root, devEui, status: r.status })
    else {
      const error = err instanceof Error ? err.message : String(err)
      line({ event: 'post', root, devEui, status: null, error })
      io.onFailedPost?.(opts.url, error)
    }
  }

  sim.on('downlink', (r: LrcRequest) => {
    downlinks++
    line({ event: 'downlink', devEui: r.params.DevEUI ?? null, fPort: r.params.FPort === undefined ? null : Number(r.params.FPort), payload: r.params.Payload ?? null, tokenValid: r.tokenValid, status: r.status })
  })
  sim.on('sent-report', (r: PostResult) => { postLine(r.root, String(r.report.DevEUI ?? ''), r) })
  sim.on('error', (err: Error) => {
    postLine('DevEUI_downlink_Sent', '', undefined, err)
    io.stderr.write(`simulate thingpark: DevEUI_downlink_Sent failed: ${err.message}\n`)
  })

  const sleeper = new Sleeper()
  const sleep = (ms: number): Promise<void> => sleeper.sleep(ms)
  let release: (() => void) | undefined
  const stopped = new Promise<void>(resolve => { release = resolve })
  const stop = (): void => { sleeper.stop(); release?.() }
  const signals = io.signals !== false
  if (signals) { process.once('SIGINT', stop); process.once('SIGTERM', stop) }
  io.abort?.addEventListener('abort', stop, { once: true })
  const timer = duration !== undefined ? setTimeout(stop, duration * 1000) : undefined
  const keepRunning = lrcPort !== undefined || opts.keepRunning === true

  const sendOne = async (i: number): Promise<void> => {
    const devEui = devEuis[i % deviceCount] as string
    let root = 'DevEUI_uplink'
    let res: PostResult | undefined
    try {
      if (report === 'uplink') {
        const s = sessions.get(devEui) as { devAddr: string, fCnt: number, n: number }
        const fCntUp = s.fCnt++
        const payloadHex = payload({ n: s.n++, fcnt: fCntUp }).toString('hex')
        line({ event: 'uplink', devEui, fCnt: fCntUp, fPort, hex: payloadHex })
        res = await sim.uplink({ devEui, fPort, fCntUp, payloadHex, devAddr: s.devAddr })
      } else if (report === 'join') {
        res = await sim.joinRequest({ devEui })
      } else if (report === 'notification') {
        root = 'DevEUI_notification'
        res = await sim.notification({ devEui, type: 'reset' })
      } else {
        root = 'DevEUI_location'
        res = await sim.location({ devEui, lat: 48.8566 + (i % 100) / 10_000, lon: 2.3522 + (i % 100) / 10_000, radius: 100 })
      }
      postLine(root, devEui, res)
    } catch (err) {
      postLine(root, devEui, undefined, err)
    }
  }

  try {
    if (lrcPort !== undefined) {
      const url = await sim.startLrc({ port: lrcPort, ...(opts.lrcHost !== undefined ? { host: opts.lrcHost } : {}) })
      line({ event: 'lrc', url })
      io.onLrc?.(url)
    }
    if (report === 'uplink') {
      for (const [devEui, s] of sessions) line({ event: 'device', devEui, devAddr: s.devAddr, fCnt: s.fCnt, fPort, asUrl: opts.url })
    }
    const inFlight = new Set<Promise<void>>()
    const t0 = Date.now()
    for (let i = 0; i < count && !sleeper.stopped; i++) {
      if (i > 0) await sleep(t0 + (i * 1000) / rate - Date.now())
      if (sleeper.stopped) break
      while (inFlight.size >= concurrency) await Promise.race(inFlight)
      const job = sendOne(i)
      inFlight.add(job)
      void job.finally(() => { inFlight.delete(job) })
    }
    await Promise.allSettled([...inFlight])
    if (keepRunning && !sleeper.stopped) {
      const alive = setInterval(() => undefined, 1 << 30) // without --lrc-port nothing else holds the process
      await stopped
      clearInterval(alive)
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    stop()
    if (signals) { process.off('SIGINT', stop); process.off('SIGTERM', stop) }
    await sim.stop()
  }
  line({ event: 'summary', posts, failed, downlinks })
  return { posts, failed, downlinks }
}

/** The commander action: exit 0, or 1 when a post got a non-2xx (or failed) without --lrc-port. */
export async function simulateThingParkCommand (opts: ThingParkCliOptions): Promise<void> {
  const said = new Set<string>() // once per distinct error: a run of 1000 posts to a closed port is one line
  const s = await simulateThingPark(opts, { stdout: process.stdout, stderr: process.stderr, onFailedPost: (url, error) => {
    if (said.has(error)) return
    said.add(error)
    const hint = /ECONNREFUSED/.test(error) ? ' — nothing listens there; is the daemon running, and are the host, port and path right?' : ''
    process.stderr.write(`simulate thingpark: cannot post to ${url}: ${error}${hint}\n`)
  } })
  process.exitCode = opts.lrcPort === undefined && s.failed > 0 ? 1 : 0
}
