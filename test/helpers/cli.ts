/**
 * Runs the built `lorabridge` executable (bin/lorabridge.js → dist/) as users do: one-shot
 * commands, and the daemon as a child process whose `listening` lines tell the bound ports.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export const BIN = fileURLToPath(new URL('../../bin/lorabridge.js', import.meta.url))

export interface RunResult { code: number | null, stdout: string, stderr: string }

export async function runCli (args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, input?: string } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(opts.input ?? '')
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout, stderr }
}

/** Runs an arbitrary program (mosquitto_pub, …) and collects its output. */
export async function run (cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000)
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface DaemonProcess {
  child: ChildProcess
  lines: Array<Record<string, unknown>>
  port (protocol: string): number
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  waitForLine (pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  kill (signal?: NodeJS.Signals): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** Starts `lorabridge start` and waits for its `lorabridge started` line. */
export async function startDaemonProcess (args: string[], opts: { cwd: string, env?: NodeJS.ProcessEnv }): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [BIN, ...args, 'start'], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Array<Record<string, unknown>> = []
  const waiters = new Set<() => void>()
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  createInterface({ input: child.stdout }).on('line', line => {
    try { lines.push(JSON.parse(line) as Record<string, unknown>) } catch { return }
    for (const w of waiters) w()
  })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = lines.find(pred)
        if (found !== undefined) { cleanup(); resolve(found) }
      }
      const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for a log line; stderr: ${stderr}; lines: ${JSON.stringify(lines.slice(-5))}`)) }, timeoutMs)
      const onExit = (): void => { cleanup(); reject(new Error(`daemon exited; stderr: ${stderr}; lines: ${JSON.stringify(lines.slice(-5))}`)) }
      const cleanup = (): void => { clearTimeout(timer); waiters.delete(check); child.off('exit', onExit) }
      waiters.add(check)
      child.once('exit', onExit)
      check()
    })
  await waitForLine(l => l.msg === 'lorabridge started')
  return {
    child,
    lines,
    exited,
    waitForLine,
    port (protocol) {
      const l = lines.find(x => x.msg === 'listening' && x.protocol === protocol)
      if (l === undefined) throw new Error(`no listening line for ${protocol}`)
      return l.port as number
    },
    async kill (signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
