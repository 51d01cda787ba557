/**
 * `npm run bench [-- --quick] [-- --only name,name]`: lorabridge and its baselines measured side by
 * side in one run on this machine; results as JSON in bench/results/ and a table on stdout. Speed
 * is compared as ratios against baselines of the same run, never asserted in tests.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { aedesBaseline, clusterPipeline, conduitPipeline, peerPipeline, type PipelineResult } from './scenarios/mqtt.js'
import { ruleExpressions } from './scenarios/rules.js'
import { thingparkIngest } from './scenarios/thingpark.js'
import { idleConnections } from './scenarios/connections.js'
import { codecDecoders } from './scenarios/codecs.js'
import { round } from './lib/stats.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const only = args.find(a => a.startsWith('--only='))?.slice('--only='.length).split(',')
const want = (name: string): boolean => only === undefined || only.includes(name)

const S = quick ? 3 : 15 // seconds per measurement
const results: Record<string, unknown> = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version },
  quick,
  startedAt: new Date().toISOString(),
}
const rows: Array<[string, string, string]> = []
const log = (s: string): void => { process.stderr.write(s + '\n') }

if (want('baseline') || want('pipeline')) {
  log('baseline: plain Aedes, 1 publisher → 1 subscriber, QoS 1 …')
  const baseline = await aedesBaseline(S, 64)
  results.baseline = baseline
  rows.push(['baseline (plain Aedes, QoS 1)', `${baseline.msgsPerSec} msg/s (server ${baseline.cpuMicrosPerMessage} µs cpu/msg; cpu: server ${baseline.serverCpu}, load ${baseline.loadCpu})`, ''])
  if (want('pipeline')) {
    for (const transport of ['tcp', 'tls'] as const) {
      log(`conduit pipeline over ${transport} …`)
      const p: PipelineResult = await conduitPipeline({ transport, seconds: S, rates: quick ? [1000] : [100, 1000, 5000], repeats: quick ? 1 : 3, conduits: 8, devicesPerConduit: 8, window: 8 })
      results[`pipeline-${transport}`] = p
      const ratio = round(p.saturation.uplinksPerSec / baseline.msgsPerSec)
      rows.push([`conduit pipeline ${transport}: saturation`, `${p.saturation.uplinksPerSec} uplinks/s (${p.saturation.downlinksPerSec} downlinks/s; ${p.saturation.cpuMicrosPerUplink} µs cpu/uplink, ${p.saturation.mqttPacketsPerUplink ?? '?'} PUBLISH/uplink; cpu: server ${p.saturation.serverCpu}, load ${p.saturation.loadCpu})`, `${ratio} × baseline; target ≤ 100 µs cpu/uplink`])
      if (transport === 'tcp') {
        // Allocation per uplink, in a run of its own: the heap sampler's overhead must not touch the CPU figures.
        log('conduit pipeline over tcp: allocation per uplink (sampling heap profiler) …')
        const a = (await conduitPipeline({ transport, seconds: Math.min(S, 5), rates: [], conduits: 8, devicesPerConduit: 8, window: 8, measureAllocation: true })).allocation!
        results['pipeline-tcp-allocation'] = a
        rows.push(['  tcp allocation at saturation', `${a.kbPerUplink} KB per uplink (${a.uplinks} uplinks; most: ${a.top.slice(0, 3).map(t => `${t.frame} ${t.kbPerUplink}`).join(', ')})`, 'target ≤ 40 KB'])
      }
      for (const l of p.latency) {
        rows.push([`  ${transport} at ${l.rate}/s (achieved ${l.achieved}/s)`, `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms (${l.samples}${l.runsP99Ms !== undefined && l.runsP99Ms.length > 1 ? `; p99 of each run ${l.runsP99Ms.join(' / ')} ms` : ''}; longest stall: daemon ${l.daemonLoopMaxMs ?? '?'} ms, load ${l.loadLoopMaxMs} ms)`, l.rate === 1000 ? `p99 target ≤ 5 ms` : ''])
      }
    }
  }
}

if (want('peer')) {
  // The same load and rates as the Conduit pipeline over TCP, through Mosquitto + a bridge script.
  log('peer: Mosquitto + an mqtt.js/jsonata bridge doing the same job …')
  const p = await peerPipeline({ seconds: S, rates: quick ? [1000] : [100, 1000, 5000], repeats: quick ? 1 : 3, conduits: 8, devicesPerConduit: 8, window: 8 })
  results.peer = p
  const ours = (results['pipeline-tcp'] as PipelineResult | undefined)?.saturation
  rows.push(['peer (Mosquitto + bridge script): saturation', `${p.saturation.uplinksPerSec} uplinks/s (${p.saturation.downlinksPerSec} downlinks/s; ${p.saturation.cpuMicrosPerUplink} µs cpu/uplink; cpu: mosquitto+bridge ${p.saturation.serverCpu}, load ${p.saturation.loadCpu})`,
    ours !== undefined ? `lorabridge tcp ${round(ours.uplinksPerSec / p.saturation.uplinksPerSec)} × the peer's uplinks/s, ${round(ours.cpuMicrosPerUplink / p.saturation.cpuMicrosPerUplink)} × its cpu/uplink` : ''])
  for (const l of p.latency) {
    rows.push([`  peer at ${l.rate}/s (achieved ${l.achieved}/s)`, `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms (${l.samples}${l.runsP99Ms !== undefined && l.runsP99Ms.length > 1 ? `; p99 of each run ${l.runsP99Ms.join(' / ')} ms` : ''}; longest stall: load ${l.loadLoopMaxMs} ms)`, ''])
  }
}

if (want('rules')) {
  log('rule expressions: compiled vs the reference JSONata evaluator …')
  const r = await ruleExpressions({ msPerFigure: quick ? 150 : 600 })
  results.rules = r
  rows.push(['rule expressions (rules/, compiled vs reference)', `median ${r.medianRatio} × the reference's evaluations/s over ${r.expressions.length} expressions`, 'target ≥ 20 ×'])
  for (const e of r.expressions) rows.push([`  ${e.file} ${e.where}`.slice(0, 46), `${e.compiledPerSec} vs ${e.referencePerSec} evaluations/s (${e.ratio} ×${e.engine === 'compiled' ? '' : ', on the reference'})`, ''])
}

if (want('codecs')) {
  log('codecs: a vendor TLV decoder in the sandbox vs JSONata and plain JavaScript; the pipeline with each …')
  const c = await codecDecoders({ msPerFigure: quick ? 300 : 2000, seconds: S, pipeline: true })
  results.codecs = c
  for (const d of c.decodes) rows.push([`codec decode: ${d.decoder}`.slice(0, 60), `${d.microsPerDecode} µs per decode`, d.decoder.startsWith('codec') ? 'target ≤ 30 µs' : ''])
  if (c.pipeline !== undefined) {
    rows.push(['conduit pipeline tcp, JSONata decoder', `${c.pipeline.jsonata.uplinksPerSec} uplinks/s (${c.pipeline.jsonata.cpuMicrosPerUplink} µs cpu/uplink)`, ''])
    rows.push(['conduit pipeline tcp, codec decoder', `${c.pipeline.codec.uplinksPerSec} uplinks/s (${c.pipeline.codec.cpuMicrosPerUplink} µs cpu/uplink)`, `${c.pipeline.ratio} × with JSONata (target ≥ 0.8)`])
  }
}

if (want('thingpark')) {
  log('thingpark ingest vs a bare HTTPS server …')
  const t = await thingparkIngest({ seconds: S, connections: Number(process.env.BENCH_TP_CONNECTIONS ?? 32) })
  results.thingpark = t
  rows.push(['thingpark ingest (HTTPS keep-alive, signed)', `${t.lorabridge.rps} req/s, p99 ${t.lorabridge.p99Ms} ms, non-2xx ${t.lorabridge.non2xx} (cpu: server ${t.lorabridge.serverCpu})`, `${t.ratio} × bare (target ≥ 0.5)`])
  rows.push(['  bare Node HTTPS 204', `${t.bare.rps} req/s, p99 ${t.bare.p99Ms} ms (cpu: server ${t.bare.serverCpu})`, ''])
}

if (want('cluster')) {
  log('cluster: two instances on Redis vs one in memory …')
  const c = await clusterPipeline({ seconds: S, conduits: Number(process.env.BENCH_CONDUITS ?? 32), devicesPerConduit: 4, window: Number(process.env.BENCH_WINDOW ?? 4) })
  results.cluster = c
  rows.push(['cluster: one instance, in memory', `${c.single.uplinksPerSec} uplinks/s (cpu: server ${c.single.serverCpu}, load ${c.single.loadCpu})`, ''])
  rows.push(['cluster: two instances on Redis', `${c.cluster.uplinksPerSec} uplinks/s (cpu: servers+redis ${c.cluster.serverCpu}, load ${c.cluster.loadCpu})`, `${c.ratio} × one in memory (target ≥ 0.5)`])
}

if (want('connections')) {
  const count = quick ? 500 : 10_000
  log(`connections: ${count} idle MQTTS connections …`)
  const c = await idleConnections({ count, concurrency: 50, settleMs: quick ? 1000 : 3000 })
  results.connections = c
  rows.push([`connections: ${count} idle MQTTS (keepalive 60)`, `${c.opened} open (${c.failed} failed, gauge ${c.clientsGauge}), ${c.perSec} conn/s`, ''])
  rows.push(['  resident memory', `${c.rssBeforeMiB} → ${c.rssAfterMiB} MiB (${c.kibPerConnection} KiB per connection)`, quick ? '' : 'target ≤ 1024 MiB'])
}

results.finishedAt = new Date().toISOString()
const dir = fileURLToPath(new URL('./results/', import.meta.url))
await mkdir(dir, { recursive: true })
const file = `${dir}${(results.startedAt as string).replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`
await writeFile(file, JSON.stringify(results, null, 2))
const w0 = Math.max(...rows.map(r => r[0].length))
const w1 = Math.max(...rows.map(r => r[1].length))
process.stdout.write([`lorabridge bench (${quick ? 'quick' : 'full'}; ${String((results.machine as { cpus: number }).cpus)} cores, Node ${process.version})`, ...rows.map(r => `${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`), `results: ${file}`].join('\n') + '\n')
