// Loaded into a daemon with `--import` by the bench (allocation per uplink). SIGUSR2 starts V8's
// sampling heap profiler, counting objects the GC has already collected too (what the young
// generation churns through); the next SIGUSR2 stops it and writes the estimated bytes allocated
// meanwhile, and the functions that allocated most, as JSON to LB_HEAP_SAMPLE_FILE.
import { Session } from 'node:inspector/promises'
import { writeFileSync } from 'node:fs'

const file = process.env.LB_HEAP_SAMPLE_FILE
const session = new Session()
session.connect()
let sampling = false

const name = node => `${node.callFrame.functionName || '(anon)'} ${node.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${node.callFrame.lineNumber + 1}`

/** Built-ins (String.prototype.replace, Array.prototype.push…) are named with their caller. */
function walk (node, out, parent) {
  const frame = node.callFrame.url === '' && parent !== undefined ? `${name(node)} ← ${name(parent)}` : name(node)
  out.set(frame, (out.get(frame) ?? 0) + node.selfSize)
  for (const c of node.children) walk(c, out, node.callFrame.url === '' ? parent : node)
}

process.on('SIGUSR2', () => {
  void (async () => {
    if (!sampling) {
      sampling = true
      await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
      return
    }
    sampling = false
    const { profile } = await session.post('HeapProfiler.stopSampling')
    const byFrame = new Map()
    walk(profile.head, byFrame, undefined)
    const bytes = [...byFrame.values()].reduce((a, b) => a + b, 0)
    const top = [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, 300).map(([frame, b]) => ({ frame, bytes: b }))
    if (file !== undefined) writeFileSync(file, JSON.stringify({ bytes, top }))
  })()
})
