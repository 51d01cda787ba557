/** Child processes for the servers under test, each on its own core where the machine has one. */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(ROOT, 'bin', 'lorabridge.js')

export interface Server { child: ChildProcess, info: Record<string, unknown>, lines: Array<Record<string, unknown>>, stop (): Promise<void> }

/** Spawns a node script that prints one JSON line once ready. */
export async function spawnJson (script: string, args: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [join(ROOT, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', l => resolve(JSON.parse(l) as Record<string, unknown>))
    child.once('exit', code => reject(new Error(`${script} exited ${String(code)}`)))
  })
  return { child, info, lines: [], stop: () => stopChild(child) }
}

export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  await new Promise(resolve => { const t = setTimeout(() => { child.kill('SIGKILL'); resolve(undefined) }, 5000); child.once('exit', () => { clearTimeout(t); resolve(undefined) }) })
}

export interface DaemonOptions {
  config: Record<string, unknown>, rules?: Record<string, string>, users?: string[][], env?: NodeJS.ProcessEnv
  /** Loads lib/heap-sampler.mjs: SIGUSR2 starts and stops counting allocations (written to `heapSampleFile`). */
  heapSampler?: boolean
}

const HEAP_SAMPLER = new URL('./heap-sampler.mjs', import.meta.url).href

/** A lorabridge daemon in its own directory; resolves once every listener is bound. */
export async function startLorabridge (o: DaemonOptions): Promise<Server & { dir: string, heapSampleFile: string, port (protocol: string): number }> {
  const dir = await mkdtemp(join(tmpdir(), 'lorabridge-bench-'))
  await mkdir(join(dir, 'rules'))
  for (const [name, text] of Object.entries(o.rules ?? {})) {
    await mkdir(dirname(join(dir, 'rules', name)), { recursive: true })
    await writeFile(join(dir, 'rules', name), text)
  }
  await writeFile(join(dir, 'lorabridge.yaml'), stringify(o.config))
  for (const args of o.users ?? []) {
    const c = spawn(process.execPath, [BIN, 'users', 'add', ...args], { cwd: dir, stdio: 'ignore' })
    await new Promise(resolve => c.once('exit', resolve))
  }
  // BENCH_CPU_PROF=dir writes a V8 CPU profile of each daemon there (open it in Chrome DevTools).
  // BENCH_NODE_FLAGS adds V8/Node flags (e.g. --trace-deopt) to each daemon.
  const prof = [...(process.env.BENCH_CPU_PROF !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []), ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(f => f !== '') ?? [])]
  const heap = o.heapSampler === true ? ['--import', HEAP_SAMPLER] : []
  const heapSampleFile = join(dir, 'heap-sample.json')
  const child = spawn(process.execPath, [...prof, ...heap, BIN, 'start'], { cwd: dir, env: { ...process.env, ...o.env, LB_HEAP_SAMPLE_FILE: heapSampleFile }, stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Array<Record<string, unknown>> = []
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', l => {
      // Lines that are not the daemon's JSON (V8 traces asked for with BENCH_NODE_FLAGS) go to stderr.
      try { lines.push(JSON.parse(l) as Record<string, unknown>) } catch { if (process.env.BENCH_NODE_FLAGS !== undefined) process.stderr.write(l + '\n'); return }
      if (lines.at(-1)?.msg === 'lorabridge started') resolve()
    })
    child.once('exit', code => reject(new Error(`lorabridge exited ${String(code)}`)))
  })
  return {
    child,
    info: {},
    lines,
    dir,
    heapSampleFile,
    port (protocol) { return lines.find(l => l.msg === 'listening' && l.protocol === protocol)!.port as number },
    async stop () { await stopChild(child); await rm(dir, { recursive: true, force: true }) },
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export async function cpuSeconds (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (USER_HZ = 100)
}

/** Measures how busy the servers (summed) and this process were while `work` ran (1.0 = one core). */
export async function withCpu<T> (pids: number | number[], work: () => Promise<T>): Promise<{ result: T, serverCpu: number, loadCpu: number }> {
  const servers = Array.isArray(pids) ? pids : [pids]
  const total = async (): Promise<number> => (await Promise.all(servers.map(cpuSeconds))).reduce((a, b) => a + b, 0)
  const s0 = await total()
  const l0 = process.cpuUsage()
  const t0 = performance.now()
  const result = await work()
  const wall = (performance.now() - t0) / 1000
  const l = process.cpuUsage(l0)
  const serverCpu = ((await total()) - s0) / wall
  return { result, serverCpu: Math.round(serverCpu * 100) / 100, loadCpu: Math.round(((l.user + l.system) / 1e6 / wall) * 100) / 100 }
}

/** Resident memory of a process in MiB, from /proc (Linux). */
export async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1])
  return Math.round((kb / 1024) * 10) / 10
}
