// Throwaway redis-server for integration tests.
//
// Each call to startRedis() spawns its own redis-server on a free port of
// 127.0.0.1 with a private temporary directory, waits until it answers PING,
// and returns a handle to stop / kill / restart it. The child never outlives
// the test process: stop() terminates it and a process 'exit' hook SIGKILLs it
// as a last resort.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface RedisServer {
  port: number
  url: string
  /** The TLS port, when started with `tls`. */
  tlsPort?: number
  /** The running redis-server's process id (changes on restart()). */
  readonly pid: number
  /** SIGTERM, wait for exit, remove the temp dir. Safe to call more than once. */
  stop(): Promise<void>
  /** SIGKILL, wait for exit (keeps the temp dir so restart() can reuse it). */
  kill(): Promise<void>
  /** Start again on the SAME port and SAME dir (stops a running child first). */
  restart(): Promise<void>
}

export interface StartRedisOptions {
  /** Enable AOF with fsync always so data survives kill()/restart(). */
  persist?: boolean
  /** Extra redis-server arguments (`--requirepass`, `--tls-cert-file` …). */
  args?: string[]
  /** Also listen for TLS on a second free port (tls-* files must come in `args`). */
  tls?: boolean
}

const READY_TIMEOUT_MS = 10_000

/** Listen on 127.0.0.1:0, read the port the OS picked, close. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      if (addr === null || typeof addr === 'string') {
        srv.close()
        reject(new Error('freePort: unexpected address'))
        return
      }
      const { port } = addr
      srv.close((err) => (err ? reject(err) : resolve(port)))
    })
  })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** One raw RESP PING over TCP; resolves true only on "+PONG". */
function pingOnce(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let buf = ''
    let settled = false
    const sock = connect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.setEncoding('utf8')
    sock.once('connect', () => sock.write('*1\r\n$4\r\nPING\r\n'))
    sock.on('data', (chunk: string) => {
      buf += chunk
      // A server with requirepass answers NOAUTH: it is up all the same.
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'))
    })
    sock.once('error', () => done(false))
    sock.once('close', () => done(false))
  })
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = process.env.REDIS_SERVER || 'redis-server'
  const dir = await mkdtemp(join(tmpdir(), 'redis-test-'))
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  const tlsPort = opts.tls === true ? await freePort() : undefined

  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--dir', dir,
    '--daemonize', 'no',
    ...(opts.persist
      ? ['--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no']),
    ...(tlsPort !== undefined ? ['--tls-port', String(tlsPort)] : []),
    ...(opts.args ?? [])
  ]

  let child: ChildProcess | undefined
  let output = ''
  let stopping: Promise<void> | undefined

  const lastResort = (): void => {
    if (child && child.exitCode === null && child.signalCode === null) {
      try { child.kill('SIGKILL') } catch { /* already gone */ }
    }
  }
  process.once('exit', lastResort)

  async function spawnAndWait(): Promise<void> {
    output = ''
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    const append = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-8000)
    }
    c.stdout?.on('data', append)
    c.stderr?.on('data', append)
    let spawnError: Error | undefined
    c.once('error', (err) => { spawnError = err })

    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      if (spawnError) throw new Error(`redis-server failed to spawn (${bin}): ${spawnError.message}`)
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`redis-server exited early (code ${c.exitCode}, signal ${c.signalCode}):\n${output}`)
      }
      if (await pingOnce(port)) return
      if (Date.now() > deadline) {
        c.kill('SIGKILL')
        await waitForExit(c)
        throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms:\n${output}`)
      }
      await sleep(50)
    }
  }

  async function signalAndWait(signal: NodeJS.Signals): Promise<void> {
    const c = child
    if (!c) return
    if (c.exitCode === null && c.signalCode === null) {
      const exited = waitForExit(c)
      c.kill(signal)
      if (signal === 'SIGTERM') {
        // redis normally exits promptly on SIGTERM; escalate if it does not.
        const timer = setTimeout(() => c.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      } else {
        await exited
      }
    }
  }

  try {
    await spawnAndWait()
  } catch (err) {
    process.removeListener('exit', lastResort)
    await rm(dir, { recursive: true, force: true })
    throw err
  }

  return {
    port,
    url,
    ...(tlsPort !== undefined ? { tlsPort } : {}),
    get pid() { return child?.pid ?? -1 },
    stop() {
      // Memoised: a second (or concurrent) call waits for the same shutdown.
      stopping ??= (async () => {
        await signalAndWait('SIGTERM')
        process.removeListener('exit', lastResort)
        await rm(dir, { recursive: true, force: true })
      })()
      return stopping
    },
    async kill() {
      await signalAndWait('SIGKILL')
    },
    async restart() {
      if (stopping) throw new Error('redis-server was stopped; cannot restart')
      await signalAndWait('SIGTERM')
      await spawnAndWait()
    }
  }
}
