/**
 * A throwaway three-node Redis Cluster on free loopback ports: three redis-server processes in
 * cluster mode, joined with `redis-cli --cluster create`, torn down by stop().
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './redis-server.js'

const run = promisify(execFile)

export interface RedisCluster { nodes: Array<{ host: string, port: number }>, stop (): Promise<void> }

async function until (probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!await probe().catch(() => false)) {
    if (Date.now() > end) throw new Error(`redis cluster: timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

export async function startRedisCluster (): Promise<RedisCluster> {
  const ports = [await freePort(), await freePort(), await freePort()]
  const dirs: string[] = []
  const children: ChildProcess[] = []
  const stop = async (): Promise<void> => {
    for (const c of children) c.kill('SIGKILL')
    await Promise.all(children.map(c => c.exitCode !== null ? undefined : new Promise(resolve => c.once('exit', resolve))))
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  }
  process.once('exit', () => { for (const c of children) c.kill('SIGKILL') })
  try {
    for (const port of ports) {
      const dir = await mkdtemp(join(tmpdir(), 'lorabridge-redis-cluster-'))
      dirs.push(dir)
      children.push(spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '5000', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], { stdio: 'ignore' }))
    }
    for (const port of ports) await until(async () => (await run('redis-cli', ['-p', String(port), 'ping'])).stdout.trim() === 'PONG', `node ${port}`)
    await run('redis-cli', ['--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
    for (const port of ports) await until(async () => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout.includes('cluster_state:ok'), 'cluster_state:ok')
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes: ports.map(port => ({ host: '127.0.0.1', port })), stop }
}
