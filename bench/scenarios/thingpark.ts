/**
 * ThingPark ingest: signed uplink POSTs over HTTPS keep-alive (autocannon) against lorabridge's
 * ThingPark endpoint, and the same load against a bare Node HTTPS server answering 204, in the
 * same run. Every request carries its own frame counter and Time, so its token is unique (the
 * endpoint refuses replays).
 */
import autocannon from 'autocannon'
import { join } from 'node:path'
import { spawnJson, startLorabridge } from '../lib/processes.js'
import { round } from '../lib/stats.js'
import { canonicalQuery, sha256Hex } from '../../src/thingpark/token.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'

let fCnt = 0

/** A signed DevEUI_uplink of its own (CustomerID + DevEUI + FPort + FCntUp + payload_hex). */
function signedRequest (): { path: string, body: string } {
  const n = fCnt++
  const devEui = (0x0018b20000000000 + (n % 1000)).toString(16).toUpperCase().padStart(16, '0')
  const report = { Time: new Date().toISOString(), DevEUI: devEui, FPort: 2, FCntUp: n, payload_hex: '0102abcd', CustomerID: '100000001', LrrRSSI: -67, LrrSNR: 9, SpFact: 8, Lrcid: '000000CC', Lrrs: { Lrr: [{ Lrrid: '10000036', LrrRSSI: -67, LrrSNR: 9 }] } }
  const q: Record<string, string> = { LrnDevEui: devEui, LrnFPort: '2', LrnInfos: `${AS_ID}-1-1`, AS_ID, Time: new Date().toISOString().replace('Z', '+00:00') }
  const token = sha256Hex(`100000001${devEui}2${n}0102abcd` + canonicalQuery(q)! + KEY)
  return { path: `/tp?${Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}&Token=${token}`, body: JSON.stringify({ DevEUI_uplink: report }) }
}

async function load (url: string, seconds: number, connections: number): Promise<{ rps: number, p99Ms: number, non2xx: number }> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [{
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      setupRequest: req => ({ ...req, ...signedRequest() }),
    }],
  })
  return { rps: round(result.requests.average, 0), p99Ms: round(result.latency.p99), non2xx: result.non2xx + result.errors }
}

export async function thingparkIngest (o: { seconds: number, connections: number }): Promise<{ lorabridge: { rps: number, p99Ms: number, non2xx: number }, bare: { rps: number, p99Ms: number, non2xx: number }, ratio: number }> {
  const daemon = await startLorabridge({
    config: {
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'https', host: '127.0.0.1', port: 0 }] },
      thingpark: { connections: [{ name: 'tp', path: '/tp', asId: AS_ID, asKeyEnv: 'TP_KEY', downlinkUrl: 'http://127.0.0.1:9/unused' }] },
      log: { level: 'info' },
    },
    env: { TP_KEY: KEY },
  })
  const bare = await spawnJson('bench/servers/https-bare.mjs', [join(daemon.dir, 'data', 'server.crt'), join(daemon.dir, 'data', 'server.key')])
  try {
    const lb = await load(`https://127.0.0.1:${daemon.port('https')}`, o.seconds, o.connections)
    const base = await load(`https://127.0.0.1:${bare.info.port as number}`, o.seconds, o.connections)
    return { lorabridge: lb, bare: base, ratio: round(lb.rps / base.rps) }
  } finally {
    await bare.stop()
    await daemon.stop()
  }
}
