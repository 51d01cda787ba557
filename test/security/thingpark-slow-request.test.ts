/**
 * Issue 12, found while looking at the ThingPark endpoint as an attacker: Fastify's default is no
 * request timeout, so a sender that passes the checks needing no body (they are public: AS_ID,
 * Time) and then trickles its body one byte at a time held a request and a socket open for as long
 * as it liked; enough of them exhaust the process's file descriptors, and ThingPark can no longer
 * connect. `http.requestTimeoutMs` now bounds the time to receive a whole request.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { connect, type Socket } from 'node:net'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { sleep } from '../helpers/mqtt.js'
import { tpConfig, ENV, PATH, signedUplink, uplinkReport, post } from './thingpark-helpers.js'

describe('a request whose body trickles in', () => {
  let t: TestDaemon
  const sockets: Socket[] = []

  beforeAll(async () => {
    t = await startTestDaemon({ ...tpConfig(), http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }], requestTimeoutMs: 2000 } }, { env: ENV })
  })
  afterAll(async () => {
    for (const s of sockets) s.destroy()
    await t?.stop()
  })

  it('is cut off after http.requestTimeoutMs, while signed uplinks keep being answered 204', async () => {
    const head = signedUplink(uplinkReport(1), new Date(), { token: 'ab'.repeat(32) })
    const socket = connect({ host: '127.0.0.1', port: t.port('http'), localAddress: '127.0.0.5' })
    sockets.push(socket)
    let closed = false
    let answer = ''
    socket.on('data', (d: Buffer) => { answer += d.toString('latin1') })
    socket.on('close', () => { closed = true })
    socket.on('error', () => {})
    await new Promise<void>(resolve => socket.once('connect', () => resolve()))
    socket.write(`POST ${PATH}?${head.query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n`)
    // One byte every 200 ms: never idle long enough for an idle timeout, never complete.
    const trickle = setInterval(() => { if (!closed) socket.write('{') }, 200)
    try {
      for (let waited = 0; waited < 15_000 && !closed; waited += 100) await sleep(100)
      // Meanwhile ThingPark is served.
      expect((await post(t.port('http'), signedUplink(uplinkReport(2), new Date()), '127.0.0.2')).status).toBe(204)
    } finally {
      clearInterval(trickle)
    }
    expect(closed, 'the trickling request is still open after 15 s').toBe(true)
    expect(answer).toMatch(/^HTTP\/1\.1 408/)
  })
})
