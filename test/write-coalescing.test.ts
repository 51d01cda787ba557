/**
 * Writes made to an MQTT socket within one turn of the event loop leave in one system call, in
 * order, and nothing is held past the turn.
 */
import { describe, it, expect } from 'vitest'
import { createServer, connect, type Socket } from 'node:net'
import { coalesceWrites } from '../src/broker/connection-guard.js'

async function pair (): Promise<{ server: Socket, client: Socket, close: () => void }> {
  return new Promise(resolve => {
    const srv = createServer(server => {
      resolve({ server, client, close: () => { client.destroy(); server.destroy(); srv.close() } })
    })
    let client: Socket
    srv.listen(0, '127.0.0.1', () => { client = connect((srv.address() as { port: number }).port, '127.0.0.1') })
  })
}

/** Counts the writes that reach the kernel (libuv), and how many chunks each carried. */
function countSyscalls (socket: Socket): number[] {
  const calls: number[] = []
  const s = socket as unknown as { _writev: (chunks: unknown[], cb: unknown) => void, _write: (c: unknown, e: unknown, cb: unknown) => void }
  const writev = s._writev.bind(socket)
  const write = s._write.bind(socket)
  s._writev = (chunks, cb) => { calls.push(chunks.length); writev(chunks, cb) }
  s._write = (c, e, cb) => { calls.push(1); write(c, e, cb) }
  return calls
}

describe('write coalescing', () => {
  it('sends a turn\'s writes (across microtasks) in one syscall, in order', async () => {
    const { server, client, close } = await pair()
    try {
      server.setNoDelay(true)
      coalesceWrites(server)
      const calls = countSyscalls(server)
      let received = ''
      client.on('data', d => { received += d.toString() })
      server.write('puback;')
      await Promise.resolve()
      await Promise.resolve()
      server.write('downlink;')
      queueMicrotask(() => server.write('more;'))
      await new Promise(resolve => setImmediate(resolve))
      await new Promise(resolve => setTimeout(resolve, 50))
      expect(received).toBe('puback;downlink;more;')
      expect(calls).toEqual([3])
    } finally {
      close()
    }
  })

  it('does not hold writes of later turns: each turn leaves on its own', async () => {
    const { server, client, close } = await pair()
    try {
      coalesceWrites(server)
      const calls = countSyscalls(server)
      let received = ''
      client.on('data', d => { received += d.toString() })
      server.write('a')
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(received).toBe('a')
      server.write('b')
      server.write('c')
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(received).toBe('abc')
      expect(calls).toEqual([1, 2])
    } finally {
      close()
    }
  })
})
