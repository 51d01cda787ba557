/**
 * Helpers for the console and authentication attack tests: raw HTTP requests from a chosen
 * loopback source address with any Host/Origin header (fetch cannot do either), raw MQTT CONNECTs
 * that return the CONNACK code, and a users file with one user of each kind.
 */
import { request } from 'node:http'
import { connect as netConnect } from 'node:net'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generate } from 'mqtt-packet'
import type { User } from '../../src/auth/users-file.js'
import { addUsers } from '../helpers/users.js'

export interface RawResponse { status: number, headers: Record<string, string | string[] | undefined>, body: string }

export function httpRequest (opts: { port: number, method?: string, path: string, headers?: Record<string, string>, body?: string, localAddress?: string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: opts.port,
      method: opts.method ?? 'GET',
      path: opts.path,
      headers: opts.headers ?? {},
      ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
      agent: false,
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }) })
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** A console login as a browser on `origin` would send it (no Origin when undefined). */
export function consoleLogin (port: number, username: string, password: string, opts: { localAddress?: string, host?: string, origin?: string } = {}): Promise<RawResponse> {
  return httpRequest({
    port,
    method: 'POST',
    path: '/console/api/login',
    headers: {
      'content-type': 'application/json',
      ...(opts.host !== undefined ? { host: opts.host } : {}),
      ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
    },
    body: JSON.stringify({ username, password }),
    ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
  })
}

/**
 * One MQTT 3.1.1 CONNECT on a raw socket; resolves with the CONNACK return code, or 'closed' when
 * the connection ends without one. Cheap enough to open hundreds at once.
 */
export function rawConnect (port: number, opts: { username?: string, password?: string, clientId: string, localAddress?: string, timeoutMs?: number }): Promise<number | 'closed'> {
  return new Promise(resolve => {
    const socket = netConnect({ host: '127.0.0.1', port, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) })
    let got = Buffer.alloc(0)
    const done = (v: number | 'closed'): void => { clearTimeout(timer); socket.destroy(); resolve(v) }
    const timer = setTimeout(() => { done('closed') }, opts.timeoutMs ?? 60_000)
    socket.on('connect', () => {
      socket.write(generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
        clientId: opts.clientId,
        ...(opts.username !== undefined ? { username: opts.username } : {}),
        ...(opts.password !== undefined ? { password: Buffer.from(opts.password) } : {}),
      }))
    })
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      // CONNACK: 0x20, remaining length 2, session present, return code.
      if (got.length >= 4 && got[0] === 0x20) done(got[3]!)
    })
    socket.on('error', () => { done('closed') })
    socket.on('close', () => { done('closed') })
  })
}

export interface TestUser { name: string, role: User['role'], password?: string, apps?: string[] }

/** Writes `<dataDir>/users.yaml`; a user without password is certificate-only. */
export async function writeUsers (dataDir: string, users: TestUser[]): Promise<void> {
  await mkdir(dataDir, { recursive: true })
  await addUsers(join(dataDir, 'users.yaml'), Object.fromEntries(users.map(u => [u.name, {
    role: u.role,
    ...(u.password !== undefined ? { password: u.password } : {}),
    apps: u.apps ?? (u.role === 'consumer' ? ['*'] : []),
  }])))
}

export function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
