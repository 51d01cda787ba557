/**
 * Signed ThingPark requests for the security tests: a request is built once (query + body), so that
 * it can be captured and sent again byte for byte, from a chosen loopback source address.
 */
import { request } from 'node:http'
import { canonicalQuery, bodyElementCandidates, sha256Hex } from '../../src/thingpark/token.js'

export const KEY = '0123456789abcdef0123456789abcdef'
export const AS_ID = 'TWA_100000001.1.AS'
export const PATH = '/thingpark/tp-eu'
export const ENV = { TP_EU_KEY: KEY }

export function tpConfig (connection: Record<string, unknown> = {}, thingpark: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    applications: [{ name: 'farm', match: { thingpark: ['tp-eu'] } }],
    mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
    thingpark: { connections: [{ name: 'tp-eu', path: PATH, asId: AS_ID, asKeyEnv: 'TP_EU_KEY', downlinkUrl: 'http://127.0.0.1:9/unused', ...connection }], ...thingpark },
  }
}

export interface TpRequest { query: string, body: string, contentType: string }

export function uplinkReport (fCntUp: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { Time: '2024-05-01T12:00:00.1+02:00', DevEUI: '0018B20000000B20', FPort: 2, FCntUp: fCntUp, MType: 2, payload_hex: '0102abcd', Lrrid: '10000036', CustomerID: '100000001', ...extra }
}

/** A signed DevEUI_uplink as ThingPark posts it: `token` overrides the correct one, `asId` the AS_ID. */
export function signedUplink (report: Record<string, unknown>, time: Date, o: { token?: string, asId?: string, xml?: boolean } = {}): TpRequest {
  const q: Record<string, string> = {
    LrnDevEui: String(report.DevEUI),
    LrnFPort: String(report.FPort ?? 0),
    LrnInfos: `${AS_ID}-1-123456`,
    AS_ID: o.asId ?? AS_ID,
    Time: time.toISOString().replace('Z', '+00:00'),
  }
  const token = o.token ?? sha256Hex(bodyElementCandidates('DevEUI_uplink', report)[0]! + canonicalQuery(q)! + KEY)
  const query = Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&') + `&Token=${token}`
  if (o.xml === true) {
    const fields = Object.entries(report).map(([k, v]) => `<${k}>${String(v)}</${k}>`).join('')
    return { query, body: `<?xml version="1.0" encoding="utf-8"?>\n<DevEUI_uplink xmlns="http://uri.actility.com/lora">${fields}</DevEUI_uplink>`, contentType: 'text/xml' }
  }
  return { query, body: JSON.stringify({ DevEUI_uplink: report }), contentType: 'application/json' }
}

export interface Answer { status: number, json: Record<string, unknown> | undefined }

/** POSTs `req` to the daemon's ThingPark path from `localAddress` (a loopback address: 127.0.0.x). */
export function post (port: number, req: TpRequest, localAddress = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, localAddress, method: 'POST', path: `${PATH}?${req.query}`, agent: false, headers: { 'content-type': req.contentType, 'content-length': Buffer.byteLength(req.body) } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, json: text === '' ? undefined : JSON.parse(text) as Record<string, unknown> })
      })
      res.on('error', reject)
    })
    r.on('error', reject)
    r.end(req.body)
  })
}
