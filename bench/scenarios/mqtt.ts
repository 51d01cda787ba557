/**
 * The MQTT scenarios: plain Aedes as the baseline (one publisher → one subscriber, QoS 1), and the
 * Conduit pipeline (simulated Conduits, app-connect v1.1 QoS 1 → lorabridge: normalize,
 * deduplicate, one decoder, one rule producing a downlink → the Conduits receive the downlinks),
 * over plain TCP or TLS, on one instance or on a cluster of instances sharing a Redis: throughput
 * at saturation, and uplink→downlink latency at fixed rates.
 */
import mqtt from 'mqtt'
import { readFile } from 'node:fs/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { join } from 'node:path'
import { ConduitSimulator, generatedDevice, type ReceivedDownlink } from '../../src/simulate/conduit.js'
import { startRedis } from '../../test/helpers/redis-server.js'
import { percentiles, round } from '../lib/stats.js'
import { spawnJson, startLorabridge, stopChild, withCpu } from '../lib/processes.js'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { freePort } from '../../test/helpers/redis-server.js'

const MOSQUITTO = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Messages per second through plain Aedes, with `window` QoS 1 publications in flight. */
export async function aedesBaseline (seconds: number, window: number): Promise<{ msgsPerSec: number, serverCpu: number, loadCpu: number, cpuMicrosPerMessage: number }> {
  const server = await spawnJson('bench/servers/aedes-baseline.mjs')
  try {
    const url = `mqtt://127.0.0.1:${server.info.port as number}`
    const sub = await mqtt.connectAsync(url, { clientId: 'bench-sub' })
    const pub = await mqtt.connectAsync(url, { clientId: 'bench-pub' })
    let received = 0
    sub.on('message', () => { received++ })
    await sub.subscribeAsync('bench/#', { qos: 1 })
    const payload = Buffer.alloc(200, 1) // about an app-connect uplink's size
    const end = Date.now() + seconds * 1000
    const start = Date.now()
    const cpu = await withCpu(server.child.pid!, () => Promise.all(Array.from({ length: window }, async () => {
      while (Date.now() < end) await pub.publishAsync('bench/up', payload, { qos: 1 })
    })))
    const elapsed = (Date.now() - start) / 1000
    await Promise.all([sub.endAsync(), pub.endAsync()])
    return { msgsPerSec: round(received / elapsed, 0), serverCpu: cpu.serverCpu, loadCpu: cpu.loadCpu, cpuMicrosPerMessage: round((cpu.serverCpu * elapsed * 1e6) / received, 1) }
  } finally {
    await server.stop()
  }
}

const RULES = {
  'bench.yaml': `decoders:
  - name: bench-decoder
    when: { fPort: 2 }
    decode: '{ "b0": $u8(bytes, 0), "b1": $u16be(bytes, 1) }'
rules:
  - name: echo-downlink
    on: up
    when: { fPort: 2 }
    downlink: '{ "fPort": 3, "hex": $hex($toU32be(fCnt)) }'
`,
}

export interface Saturation {
  uplinksPerSec: number
  downlinksPerSec: number
  serverCpu: number
  loadCpu: number
  /** Server CPU time per uplink, in µs (all servers of the run together). */
  cpuMicrosPerUplink: number
  /** MQTT PUBLISH packets through the first instance's sockets (in + out) per uplink, from its /metrics. */
  mqttPacketsPerUplink?: number
}

/** Allocation per uplink at saturation (V8's sampling heap profiler, collected objects included), and who allocates most. */
export interface Allocation { kbPerUplink: number, uplinks: number, top: Array<{ frame: string, kbPerUplink: number }> }
export interface Latency {
  rate: number
  achieved: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  samples: number
  /** The longest event-loop stall during the run, in the (first) daemon and in this load generator. */
  daemonLoopMaxMs?: number
  loadLoopMaxMs: number
  /** Every run's p99 at this rate (the reported run is the median one). */
  runsP99Ms?: number[]
}
export interface PipelineResult { transport: 'tcp' | 'tls', saturation: Saturation, latency: Latency[], allocation?: Allocation }

interface Load {
  seconds: number, rates: number[], conduits: number, devicesPerConduit: number, window: number, /** runs per fixed rate (default 1) */ repeats?: number
  /**
   * Saturation counts uplinks whose downlink came back, each Conduit keeping `window` of them in
   * flight. Needed for a system that acknowledges an uplink before it processes it (Mosquitto in
   * front of a bridge): counting acknowledgements would measure its backlog. lorabridge
   * acknowledges after its ingest, so acknowledgements measure it already.
   */
  endToEnd?: boolean
  /** Measure allocation instead: the saturation phase runs under the heap sampler (its CPU figures are then not comparable). */
  heap?: { pid: number, file: string }
  /** Every uplink's port and payload (default: port 2, 01 02 03, what RULES decodes). */
  uplink?: { port: number, data: Buffer }
}

/** An instance to drive: where Conduits connect (and how), where the application subscribes, its /metrics. */
/** `metricsUrl` is lorabridge's /metrics; undefined for a system without one (the peer). */
interface Target { conduitUrl: string, appUrl: string, metricsUrl: string | undefined, ca?: Buffer, username?: string, password?: string }

/** One value of an instance's /metrics. */
async function scrape (metricsUrl: string | undefined, name: string): Promise<number> {
  if (metricsUrl === undefined) return NaN
  const text = await (await fetch(metricsUrl)).text()
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
}

/** PUBLISH packets received plus sent so far, from an instance's /metrics. */
async function mqttPackets (metricsUrl: string | undefined): Promise<number> {
  return (await scrape(metricsUrl, 'lorabridge_mqtt_messages_received_total')) + (await scrape(metricsUrl, 'lorabridge_mqtt_messages_sent_total'))
}

/**
 * Simulated Conduits spread over the targets (round robin) send uplinks; every rule downlink that
 * comes back is matched to its uplink by device and frame counter. An application subscribed to
 * the normalized uplinks on the first target counts them too.
 */
async function drivePipeline (targets: Target[], serverPids: number[], o: Load): Promise<{ saturation: Saturation, latency: Latency[], allocation?: Allocation }> {
  const sims: ConduitSimulator[] = []
  const app = await mqtt.connectAsync(targets[0]!.appUrl, { clientId: 'bench-app' })
  try {
    let normalized = 0
    app.on('message', () => { normalized++ })
    await app.subscribeAsync('lorabridge/+/devices/+/up', { qos: 1 })

    const sent = new Map<string, number>()
    const latencies: number[] = []
    let downlinks = 0
    /** endToEnd: who waits for which downlink (device and frame counter). */
    const waiting = new Map<string, () => void>()
    for (let c = 0; c < o.conduits; c++) {
      const t = targets[c % targets.length]!
      const sim = new ConduitSimulator({
        url: t.conduitUrl,
        version: '1.1',
        noDelay: process.env.BENCH_NAGLE === undefined,
        ...(t.ca !== undefined ? { ca: t.ca } : {}),
        ...(t.username !== undefined ? { username: t.username, password: t.password } : {}),
        devices: Array.from({ length: o.devicesPerConduit }, (_, i) => generatedDevice(c * 1000 + i)),
      })
      sim.on('downlink', (d: ReceivedDownlink) => {
        downlinks++
        const key = `${d.devEui}:${d.data.readUInt32BE(0)}`
        const sentAt = sent.get(key)
        if (sentAt !== undefined) { latencies.push(performance.now() - sentAt); sent.delete(key) }
        const waiter = waiting.get(key)
        if (waiter !== undefined) { waiting.delete(key); waiter() }
      })
      await sim.start()
      sims.push(sim)
    }
    const uplink = (sim: ConduitSimulator, device: number): Promise<unknown> => {
      const dev = sim.devices[device]!
      sent.set(`${dev.devEui}:${dev.fCnt}`, performance.now())
      return sim.uplink(device, o.uplink ?? { port: 2, data: Buffer.from([1, 2, 3]) })
    }

    /** Uplinks at a fixed rate for `o.seconds`, spread evenly over the Conduits and their devices. */
    const fixedRate = async (rate: number): Promise<Latency> => {
      sent.clear()
      latencies.length = 0
      await sleep(500)
      // prom-client's event-loop lag figures restart at each scrape: this one starts the window.
      await scrape(targets[0]!.metricsUrl, 'lorabridge_nodejs_eventloop_lag_max_seconds')
      const loadLoop = monitorEventLoopDelay({ resolution: 10 })
      loadLoop.enable()
      const t0 = performance.now()
      const n = Math.round(rate * o.seconds)
      const pending: Array<Promise<unknown>> = []
      for (let i = 0; i < n; i++) {
        const due = t0 + (i * 1000) / rate
        const wait = due - performance.now()
        if (wait > 1) await sleep(wait)
        const sim = sims[i % sims.length]!
        pending.push(uplink(sim, Math.floor(i / sims.length) % sim.devices.length))
      }
      await Promise.all(pending)
      const achieved = n / ((performance.now() - t0) / 1000)
      await sleep(1000)
      loadLoop.disable()
      const daemonLoopMax = await scrape(targets[0]!.metricsUrl, 'lorabridge_nodejs_eventloop_lag_max_seconds')
      const p = percentiles(latencies)
      return {
        rate, achieved: round(achieved, 0), p50Ms: round(p.p50), p99Ms: round(p.p99), maxMs: round(p.max), samples: p.count,
        ...(Number.isFinite(daemonLoopMax) ? { daemonLoopMaxMs: round(daemonLoopMax * 1000, 1) } : {}),
        loadLoopMaxMs: round(loadLoop.max / 1e6, 1),
      }
    }

    // Saturation: every Conduit keeps `window` uplinks in flight.
    await sleep(300)
    const d0 = downlinks
    const packets0 = targets.length === 1 ? await mqttPackets(targets[0]!.metricsUrl) : NaN
    const start = performance.now()
    const end = start + o.seconds * 1000
    let ups = 0
    if (o.heap !== undefined) process.kill(o.heap.pid, 'SIGUSR2')
    const roundTrip = async (sim: ConduitSimulator, device: number): Promise<void> => {
      const dev = sim.devices[device]!
      const back = new Promise<void>(resolve => {
        waiting.set(`${dev.devEui}:${dev.fCnt}`, resolve)
        setTimeout(resolve, 10_000).unref() // a lost downlink must not stop the run
      })
      await uplink(sim, device)
      await back
    }
    const cpu = await withCpu(serverPids, () => Promise.all(sims.flatMap(sim => Array.from({ length: o.window }, async (_, w) => {
      // Distinct devices per slot in end-to-end mode: one device's frames wait for each other.
      let i = w
      while (performance.now() < end) {
        if (o.endToEnd === true) await roundTrip(sim, i % sim.devices.length)
        else await uplink(sim, i++ % sim.devices.length)
        ups++
      }
    }))))
    const elapsed = (performance.now() - start) / 1000
    let allocation: Allocation | undefined
    if (o.heap !== undefined) {
      await rm(o.heap.file, { force: true })
      process.kill(o.heap.pid, 'SIGUSR2')
      const until = performance.now() + 30_000
      while (!existsSync(o.heap.file) && performance.now() < until) await sleep(100)
      await sleep(100)
      const sample = JSON.parse(await readFile(o.heap.file, 'utf8')) as { bytes: number, top: Array<{ frame: string, bytes: number }> }
      allocation = { kbPerUplink: round(sample.bytes / ups / 1024, 1), uplinks: ups, top: sample.top.slice(0, 40).map(t => ({ frame: t.frame, kbPerUplink: round(t.bytes / ups / 1024, 2) })) }
    }
    await sleep(500)
    // A backlog left by the saturation phase must not count against the latency runs.
    const drainEnd = performance.now() + 30_000
    while (downlinks - d0 < ups && performance.now() < drainEnd) await sleep(100)
    const packets = targets.length === 1 ? (await mqttPackets(targets[0]!.metricsUrl)) - packets0 : NaN
    const saturation: Saturation = {
      uplinksPerSec: round(ups / elapsed, 0),
      downlinksPerSec: round((downlinks - d0) / elapsed, 0),
      serverCpu: cpu.serverCpu,
      loadCpu: cpu.loadCpu,
      cpuMicrosPerUplink: round((cpu.serverCpu * elapsed * 1e6) / ups, 0),
      ...(Number.isFinite(packets) ? { mqttPacketsPerUplink: round(packets / ups, 1) } : {}),
    }

    // Latency at fixed rates: uplinks spread evenly over the Conduits and their devices.
    const latency: Latency[] = []
    for (const rate of o.rates) {
      // `repeats` runs per rate; the run with the median p99 is reported (one noisy run — a stall
      // of this shared 2-core machine — does not decide), with every run's p99 alongside.
      const runs: Latency[] = []
      for (let r = 0; r < (o.repeats ?? 1); r++) runs.push(await fixedRate(rate))
      const byP99 = [...runs].sort((a, b) => a.p99Ms - b.p99Ms)
      latency.push({ ...byP99[Math.floor((byP99.length - 1) / 2)]!, runsP99Ms: runs.map(r => r.p99Ms) })
    }
    if (normalized === 0) throw new Error('no normalized uplink reached the application subscriber')
    return { saturation, latency, ...(allocation !== undefined ? { allocation } : {}) }
  } finally {
    await Promise.all(sims.map(s => s.stop()))
    await app.endAsync()
  }
}

const MQTT_LOOPBACK = { protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }
/**
 * The load generator reads every Conduit's downlinks and the application's uplinks in one busy
 * process: at saturation it falls thousands of messages behind, and the per-client queue bounds
 * (mqtt.limits.maxQueued*, which disconnect a persistent-session Conduit that far behind) would
 * end the run. Raised, so that saturation measures the pipeline; plain Aedes has no bound either.
 */
const LIMITS = { connectRate: { perAddress: 0 }, maxQueuedMessages: 1_000_000, maxQueuedBytes: 1024 * 1024 * 1024 }
const COMMON = {
  http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }] },
  log: { level: 'info' },
}

/** One instance, in memory, over plain TCP or TLS (password-authenticated gateways, as Conduits use). */
export async function conduitPipeline (o: Omit<Load, 'heap'> & { transport: 'tcp' | 'tls', measureAllocation?: boolean, rules?: Record<string, string> }): Promise<PipelineResult> {
  const tls = o.transport === 'tls'
  const daemon = await startLorabridge({
    heapSampler: o.measureAllocation === true,
    config: {
      mqtt: { listeners: [MQTT_LOOPBACK, ...(tls ? [{ protocol: 'mqtts', host: '127.0.0.1', port: 0 }] : [])], limits: LIMITS },
      ...COMMON,
    },
    rules: o.rules ?? RULES,
    // One user for every simulated Conduit (each its own GW-UUID): deliberately unbound.
    users: tls ? [['bench-gw', '--role', 'gateway', '--any-gateway', '--password', 'bench-password']] : [],
  })
  try {
    const appUrl = `mqtt://127.0.0.1:${daemon.port('mqtt')}`
    const metricsUrl = `http://127.0.0.1:${daemon.port('http')}/metrics`
    const target: Target = tls
      ? { conduitUrl: `mqtts://localhost:${daemon.port('mqtts')}`, appUrl, metricsUrl, ca: await readFile(join(daemon.dir, 'data', 'ca.crt')), username: 'bench-gw', password: 'bench-password' }
      : { conduitUrl: appUrl, appUrl, metricsUrl }
    return { transport: o.transport, ...await drivePipeline([target], [daemon.child.pid!], { ...o, ...(o.measureAllocation === true ? { heap: { pid: daemon.child.pid!, file: daemon.heapSampleFile } } : {}) }) }
  } finally {
    await daemon.stop()
  }
}

export interface ClusterResult { single: Saturation, cluster: Saturation, ratio: number }

/**
 * The same Conduit load on one instance in memory, then on two instances sharing a redis-server
 * (started here on a free port), the Conduits split between them. The cluster's server CPU counts
 * both instances and Redis.
 */
export async function clusterPipeline (o: Omit<Load, 'rates'>): Promise<ClusterResult> {
  const single = await conduitPipeline({ ...o, rates: [], transport: 'tcp' })
  const redis = await startRedis()
  const daemons: Array<Awaited<ReturnType<typeof startLorabridge>>> = []
  try {
    for (let i = 0; i < 2; i++) {
      daemons.push(await startLorabridge({
        config: { redis: { url: redis.url }, mqtt: { listeners: [MQTT_LOOPBACK], limits: LIMITS }, ...COMMON },
        rules: RULES,
      }))
    }
    const targets = daemons.map(d => ({ conduitUrl: `mqtt://127.0.0.1:${d.port('mqtt')}`, appUrl: `mqtt://127.0.0.1:${d.port('mqtt')}`, metricsUrl: `http://127.0.0.1:${d.port('http')}/metrics` }))
    const { saturation } = await drivePipeline(targets, [...daemons.map(d => d.child.pid!), redis.pid], { ...o, rates: [] })
    return { single: single.saturation, cluster: saturation, ratio: round(saturation.uplinksPerSec / single.saturation.uplinksPerSec) }
  } finally {
    await Promise.all(daemons.map(d => d.stop()))
    await redis.stop()
  }
}

/**
 * The peer (issue 13): Debian's Mosquitto, configured not to drop (queue limits raised, Nagle
 * off), plus bench/servers/peer-bridge.mjs doing the pipeline's job (normalize, deduplicate,
 * decode, publish, rule, downlink), driven by the same load generator as the Conduit pipeline.
 * CPU counts both processes.
 */
export async function peerPipeline (o: Load): Promise<Omit<PipelineResult, 'transport'>> {
  const dir = await mkdtemp(join(tmpdir(), 'lorabridge-bench-peer-'))
  const port = await freePort()
  await writeFile(join(dir, 'mosquitto.conf'), [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'set_tcp_nodelay true',
    'max_queued_messages 1000000',
    'max_inflight_messages 0',
    'log_dest stderr',
    'log_type error',
    // Started as root, Mosquitto would switch to the `mosquitto` user (and fail to read this file).
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    '',
  ].join('\n'))
  const mosquitto = spawn(MOSQUITTO, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'inherit'] })
  let bridge: Awaited<ReturnType<typeof spawnJson>> | undefined
  try {
    const url = `mqtt://127.0.0.1:${port}`
    for (let i = 0; ; i++) {
      try { await (await mqtt.connectAsync(url, { reconnectPeriod: 0 }, false)).endAsync(); break } catch (err) { if (i > 50) throw err; await sleep(100) }
    }
    bridge = await spawnJson('bench/servers/peer-bridge.mjs', [url])
    return await drivePipeline([{ conduitUrl: url, appUrl: url, metricsUrl: undefined }], [mosquitto.pid!, bridge.child.pid!], { ...o, endToEnd: true })
  } finally {
    await bridge?.stop()
    await stopChild(mosquitto)
    await rm(dir, { recursive: true, force: true })
  }
}
