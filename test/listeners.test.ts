/**
 * The listener kinds not covered elsewhere: plain WebSocket (path and subprotocol), and HTTPS with
 * the client-certificate policy; plus the log redaction every listener's log lines rely on.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { startTestDaemon, type TestDaemon, LogCapture } from './helpers/daemon.js'
import { connect, nextMessage } from './helpers/mqtt.js'
import { createLogger } from '../src/log.js'

function httpsGet (port: number, opts: { ca: Buffer, cert?: Buffer, key?: Buffer }): Promise<number | string> {
  return new Promise(resolve => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, path: '/healthz', ...opts }, res => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', err => resolve((err as NodeJS.ErrnoException).code ?? err.message))
    req.end()
  })
}

describe('ws and https listeners', () => {
  let t: TestDaemon

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'ws', host: '127.0.0.1', port: 0, anonymous: true, path: '/mqtt' }, { protocol: 'mqtts', host: '127.0.0.1', port: 0 }],
        tls: { clientCertificates: 'required' },
      },
      http: { listeners: [{ protocol: 'https', host: '127.0.0.1', port: 0 }] },
    })
  })
  afterAll(async () => { await t?.stop() })

  it('serves MQTT over WebSocket at /mqtt with subprotocol mqtt', async () => {
    const a = await connect(`ws://127.0.0.1:${t.port('ws')}/mqtt`, { clientId: 'ws-a' })
    const b = await connect(`ws://127.0.0.1:${t.port('ws')}/mqtt`, { clientId: 'ws-b' })
    await a.subscribeAsync('ws/test', { qos: 1 })
    const got = nextMessage(a, 'ws/test')
    await b.publishAsync('ws/test', 'over websocket', { qos: 1 })
    expect((await got).payload.toString()).toBe('over websocket')
    await Promise.all([a.endAsync(), b.endAsync()])
  })

  it('refuses other paths and answers plain HTTP with 426', async () => {
    const wrongPath = await new Promise<string>(resolve => {
      const ws = new WebSocket(`ws://127.0.0.1:${t.port('ws')}/other`, 'mqtt')
      ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)))
      ws.on('error', err => resolve(err.message))
      ws.on('open', () => { ws.close(); resolve('open') })
    })
    expect(wrongPath).toMatch(/404/)
    expect((await fetch(`http://127.0.0.1:${t.port('ws')}/mqtt`)).status).toBe(426)
  })

  it('applies client certificates `required` to HTTPS: refused without one, served with one', async () => {
    const ca = await readFile(join(t.dataDir, 'ca.crt'))
    const { runCli } = await import('./helpers/cli.js')
    expect((await runCli(['-c', t.configFile, 'certs', 'client', 'monitor'])).code).toBe(0)
    const cert = await readFile(join(t.dataDir, 'monitor.crt'))
    const key = await readFile(join(t.dataDir, 'monitor.key'))
    expect(await httpsGet(t.port('https'), { ca })).not.toBe(200)
    expect(await httpsGet(t.port('https'), { ca, cert, key })).toBe(200)
    expect(t.logs.withCode('LB_ERR_TLS_CLIENT_CERT').some(l => l.protocol === 'https')).toBe(true)
  })
})

describe('log redaction', () => {
  it('never writes passwords, hashes, AS keys or private keys', () => {
    const capture = new LogCapture()
    const log = createLogger('info', capture).child({ component: 'test' })
    log.info({ password: 'p1', user: { password: 'p2', passwordHash: 'scrypt$x' }, asKey: 'k1', connection: { asKey: 'k2' }, tls: { key: '-----BEGIN PRIVATE KEY-----' }, headers: { authorization: 'Basic x' } }, 'secrets')
    log.flush()
    const text = JSON.stringify(capture.lines)
    for (const secret of ['p1', 'p2', 'scrypt$x', 'k1', 'k2', 'BEGIN PRIVATE KEY', 'Basic x']) expect(text).not.toContain(secret)
    expect(capture.lines[0]).toMatchObject({ component: 'test', password: '[redacted]', asKey: '[redacted]' })
  })
})
