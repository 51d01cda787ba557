// Scratch driver: a long saturation run of the Conduit pipeline, for profiling (BENCH_CPU_PROF=dir).
import { conduitPipeline } from './scenarios/mqtt.js'
const r = await conduitPipeline({ transport: (process.argv[2] ?? 'tcp') as 'tcp', seconds: Number(process.argv[3] ?? 10), rates: [], conduits: 8, devicesPerConduit: 8, window: 8 })
console.log(JSON.stringify(r))
