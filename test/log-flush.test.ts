/**
 * The daemon's last log lines survive a stop when stdout is slow (a full pipe: journald, docker
 * logs, a paused terminal). The logger writes asynchronously; a stop flushes it and exits. Before,
 * flush called back at once, and exiting while a write waited on the full pipe lost that write's
 * lines (or let the exit's synchronous flush overtake it: "lorabridge stopped" before "stopping",
 * seen in a CI run of the quickstart test). Runs the built logger (dist/, `npm test` builds first).
 */
import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const LOG_MODULE = fileURLToPath(new URL('../dist/log.js', import.meta.url))
const SCRIPT = `
const { createLogger } = await import(${JSON.stringify(LOG_MODULE)})
const log = createLogger('info')
for (let i = 0; i < 2000; i++) log.info({ i, pad: 'x'.repeat(200) }, 'filler')
log.info('stopping')
setTimeout(() => { log.info('lorabridge stopped'); log.flush(() => process.exit(0)) }, 50)
`

describe('log lines at exit', () => {
  it('are all written, in order, when stdout is not read for a while', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    // Nobody reads for a while: the pipe fills and the logger's writes wait (EAGAIN).
    child.stdout.pause()
    await new Promise(resolve => setTimeout(resolve, 1000))
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stdout.resume()
    const [code] = await new Promise<[number | null]>(resolve => child.on('close', c => resolve([c])))
    expect(code).toBe(0)
    const lines = out.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { msg: string, i?: number })
    expect(lines.filter(l => l.msg === 'filler').map(l => l.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i))
    expect(lines.slice(-2).map(l => l.msg)).toEqual(['stopping', 'lorabridge stopped'])
  })
})
