/**
 * Weakness: TLS 1.2 accepted non-forward-secret CBC suites (AES128-SHA: RSA key exchange, so a
 * stolen server key decrypts every recorded session), and ciphers could not be configured.
 * Attack: `openssl s_client -tls1_2 -cipher AES128-SHA` against the mqtts and https listeners of a
 * real daemon. It must be refused (handshake failure, counted as LB_ERR_TLS_HANDSHAKE), while the
 * ECDHE + AES-GCM suite a Conduit's OpenSSL offers, TLS 1.3, and a real MQTT client keep working.
 * A configured `ciphers` list is honoured on both mqtt.tls and an https listener's own tls.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { connect } from '../helpers/mqtt.js'

interface Handshake { ok: boolean, cipher: string | undefined, output: string }

/** A real OpenSSL client; stdin closed, so it quits right after the handshake. */
async function sClient (port: number, args: string[]): Promise<Handshake> {
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  child.stdin.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  const cipher = /Cipher is (\S+)/.exec(output)?.[1]
  // Only the lines that say what happened: the full dump (session ticket hex) drowns a failure.
  const summary = output.split('\n').filter(l => /Cipher is|Protocol|error|alert|errno/i.test(l)).join('\n')
  return { ok: code === 0 && cipher !== undefined && cipher !== '(NONE)', cipher, output: summary }
}

describe('TLS cipher suites: forward-secret AEAD by default', () => {
  let t: TestDaemon

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtts', host: '127.0.0.1', port: 0 }] },
      http: { listeners: [{ protocol: 'https', host: '127.0.0.1', port: 0 }] },
    })
  })
  afterAll(async () => { await t?.stop() })

  it('refuses TLS 1.2 with a non-forward-secret CBC suite on mqtts and https, and counts it', async () => {
    const before = await t.counter('tlsFailures', { code: 'LB_ERR_TLS_HANDSHAKE', protocol: 'mqtts' })
    for (const cipher of ['AES128-SHA', 'AES256-SHA', 'AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA']) {
      const mqtts = await sClient(t.port('mqtts'), ['-tls1_2', '-cipher', cipher])
      expect(mqtts.ok, `mqtts ${cipher}: ${mqtts.output}`).toBe(false)
      const https = await sClient(t.port('https'), ['-tls1_2', '-cipher', cipher])
      expect(https.ok, `https ${cipher}: ${https.output}`).toBe(false)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(await t.counter('tlsFailures', { code: 'LB_ERR_TLS_HANDSHAKE', protocol: 'mqtts' })).toBeGreaterThanOrEqual(before + 4)
    expect(t.logs.withCode('LB_ERR_TLS_HANDSHAKE').length).toBeGreaterThan(0)
  })

  it('accepts ECDHE with AES-GCM or CHACHA20-POLY1305 over TLS 1.2, and TLS 1.3', async () => {
    for (const cipher of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
      const r = await sClient(t.port('mqtts'), ['-tls1_2', '-cipher', cipher])
      expect(r.ok, r.output).toBe(true)
      expect(r.cipher).toBe(cipher)
    }
    const tls13 = await sClient(t.port('mqtts'), ['-tls1_3'])
    expect(tls13.ok, tls13.output).toBe(true)
    expect(tls13.cipher).toMatch(/^TLS_/)
  })

  it('lets an MQTT client limited to TLS 1.2 in (what a Conduit does)', async () => {
    const ca = await readFile(join(t.dataDir, 'ca.crt'))
    // Without a password the connection is refused at CONNACK, but only after the TLS handshake.
    const client = connect(`mqtts://localhost:${t.port('mqtts')}`, { ca, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' })
    await expect(client).rejects.toMatchObject({ code: 5 })
  })
})

describe('TLS cipher suites: configured lists', () => {
  let t: TestDaemon

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: {
        listeners: [{ protocol: 'mqtts', host: '127.0.0.1', port: 0 }],
        tls: { ciphers: 'ECDHE-RSA-AES256-GCM-SHA384', ecdhCurve: 'prime256v1' },
      },
      http: { listeners: [{ protocol: 'https', host: '127.0.0.1', port: 0, tls: { ciphers: 'ECDHE-RSA-CHACHA20-POLY1305', minVersion: 'TLSv1.3' } }] },
    })
  })
  afterAll(async () => { await t?.stop() })

  it('mqtt.tls.ciphers and ecdhCurve are honoured', async () => {
    expect((await sClient(t.port('mqtts'), ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'])).ok).toBe(false)
    const ok = await sClient(t.port('mqtts'), ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384'])
    expect(ok.ok, ok.output).toBe(true)
    expect(ok.cipher).toBe('ECDHE-RSA-AES256-GCM-SHA384')
    expect((await sClient(t.port('mqtts'), ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384', '-curves', 'secp384r1'])).ok).toBe(false)
    expect((await sClient(t.port('mqtts'), ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384', '-curves', 'prime256v1'])).ok).toBe(true)
  })

  it("an https listener's own ciphers and minVersion are honoured", async () => {
    expect((await sClient(t.port('https'), ['-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305'])).ok).toBe(false)
    const tls13 = await sClient(t.port('https'), ['-tls1_3'])
    expect(tls13.ok, tls13.output).toBe(true)
  })
})
