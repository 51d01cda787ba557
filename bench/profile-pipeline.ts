// Scratch driver for profiling one pipeline run: `vite-node bench/profile-pipeline.ts [tcp|tls] [seconds] [rate,rate]`
// with BENCH_CPU_PROF=dir or BENCH_NODE_FLAGS (e.g. --trace-gc) for the daemon; BENCH_HEAP=1 measures allocation per uplink.
import { conduitPipeline } from './scenarios/mqtt.js'
const rates = (process.argv[4] ?? '').split(',').filter(r => r !== '').map(Number)
const r = await conduitPipeline({ transport: (process.argv[2] ?? 'tcp') as 'tcp', seconds: Number(process.argv[3] ?? 10), rates, conduits: 8, devicesPerConduit: 8, window: 8, measureAllocation: process.env.BENCH_HEAP !== undefined })
console.log(JSON.stringify(r))
