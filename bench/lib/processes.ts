/** Child processes for the servers under test, each on its own core where the machine has one. */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

export interface DaemonOptions { config: Record<string, unknown>, rules?: Record<string, string>, users?: string[][], env?: NodeJS.ProcessEnv }

/** A lorabridge daemon in its own directory; resolves once every listener is bound. */
export async function startLorabridge (o: DaemonOptions): Promise<Server & { dir: string, port (protocol: string): number }> {
  const dir = await mkdtemp(join(tmpdir(), 'lorabridge-bench-'))
  await mkdir(join(dir, 'rules'))
  for (const [name, text] of Object.entries(o.rules ?? {})) await writeFile(join(dir, 'rules', name), text)
  await writeFile(join(dir, 'lorabridge.yaml'), stringify(o.config))
  for (const args of o.users ?? []) {
    const c = spawn(process.execPath, [BIN, 'users', 'add', ...args], { cwd: dir, stdio: 'ignore' })
    await new Promise(resolve => c.once('exit', resolve))
  }
  const child = spawn(process.execPath, [BIN, 'start'], { cwd: dir, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Array<Record<string, unknown>> = []
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', l => {
      try { lines.push(JSON.parse(l) as Record<string, unknown>) } catch { return }
      if (lines.at(-1)?.msg === 'lorabridge started') resolve()
    })
    child.once('exit', code => reject(new Error(`lorabridge exited ${String(code)}`)))
  })
  return {
    child,
    info: {},
    lines,
    dir,
    port (protocol) { return lines.find(l => l.msg === 'listening' && l.protocol === protocol)!.port as number },
    async stop () { await stopChild(child); await rm(dir, { recursive: true, force: true }) },
  }
}
