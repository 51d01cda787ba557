/**
 * Starts a real lorabridge daemon in this process, configured through a real YAML file, with every
 * listener on port 0 and a temporary dataDir; log lines are captured for assertions.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { Daemon } from '../../src/daemon.js'
import { loadConfig } from '../../src/config/load.js'
import { counterValue } from '../../src/metrics.js'

export type LogLine = Record<string, unknown> & { msg?: string, code?: string }

export class LogCapture {
  readonly lines: LogLine[] = []
  write (chunk: string): void {
    for (const line of chunk.split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line) as LogLine)
  }

  find (pred: (l: LogLine) => boolean): LogLine | undefined { return this.lines.find(pred) }
  withCode (code: string): LogLine[] { return this.lines.filter(l => l.code === code) }
}

export interface TestDaemon {
  daemon: Daemon
  dir: string
  dataDir: string
  configFile: string
  logs: LogCapture
  port (protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss' | 'http' | 'https'): number
  counter (name: keyof Daemon['metrics'], labels?: Record<string, string>): Promise<number>
  stop (): Promise<void>
}

export const DEFAULT_TEST_LISTENERS = [
  { protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true },
  { protocol: 'mqtts', host: '127.0.0.1', port: 0 },
]

/** `config` is merged over a test baseline (ports 0, temp dataDir, quiet-but-captured logs). */
export async function startTestDaemon (config: Record<string, unknown> = {}, opts: { dir?: string, now?: () => Date, env?: NodeJS.ProcessEnv } = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? await mkdtemp(join(tmpdir(), 'lorabridge-test-'))
  const configFile = join(dir, 'lorabridge.yaml')
  const base: Record<string, unknown> = {
    dataDir: './data',
    mqtt: { listeners: DEFAULT_TEST_LISTENERS },
    http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }] },
    log: { level: 'info' },
  }
  await writeFile(configFile, stringify({ ...base, ...config }))
  const { config: loaded } = loadConfig({ file: configFile, env: opts.env ?? {} })
  const logs = new LogCapture()
  const daemon = new Daemon({ config: loaded, logDestination: logs, ...(opts.now !== undefined ? { now: opts.now } : {}), ...(opts.env !== undefined ? { env: opts.env } : {}) })
  await daemon.start()
  return {
    daemon,
    dir,
    dataDir: loaded.dataDir,
    configFile,
    logs,
    port (protocol) {
      const l = [...daemon.mqtt.bound, ...daemon.http.bound].find(b => b.protocol === protocol)
      if (l === undefined) throw new Error(`no ${protocol} listener`)
      return l.port
    },
    async counter (name, labels = {}) {
      return counterValue(daemon.metrics[name] as never, labels)
    },
    async stop () {
      await daemon.stop()
      if (opts.dir === undefined) await rm(dir, { recursive: true, force: true })
    },
  }
}
