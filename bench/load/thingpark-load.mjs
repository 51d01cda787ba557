// The ThingPark load generator, in a process of its own so that it gets its own core and the
// server's figure is not capped by the bench process. Signed DevEUI_uplink POSTs, each with its own
// frame counter and Time (the endpoint refuses replays), over HTTPS keep-alive with autocannon.
// Usage: node thingpark-load.mjs URL SECONDS CONNECTIONS KEY AS_ID → one JSON line of results.
import autocannon from 'autocannon'
import { canonicalQuery, sha256Hex } from '../../dist/thingpark/token.js'

const [url, seconds, connections, key, asId] = process.argv.slice(2)
let fCnt = 0

/** A signed DevEUI_uplink of its own (token = CustomerID + DevEUI + FPort + FCntUp + payload_hex + query + key). */
function signedRequest () {
  const n = fCnt++
  const devEui = (0x0018b20000000000 + (n % 1000)).toString(16).toUpperCase().padStart(16, '0')
  const now = new Date().toISOString()
  const report = { Time: now, DevEUI: devEui, FPort: 2, FCntUp: n, payload_hex: '0102abcd', CustomerID: '100000001', LrrRSSI: -67, LrrSNR: 9, SpFact: 8, Lrcid: '000000CC', Lrrs: { Lrr: [{ Lrrid: '10000036', LrrRSSI: -67, LrrSNR: 9 }] } }
  const q = { LrnDevEui: devEui, LrnFPort: '2', LrnInfos: `${asId}-1-1`, AS_ID: asId, Time: now.replace('Z', '+00:00') }
  const token = sha256Hex(`100000001${devEui}2${n}0102abcd` + canonicalQuery(q) + key)
  return { path: `/tp?${Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}&Token=${token}`, body: JSON.stringify({ DevEUI_uplink: report }) }
}

const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  requests: [{ method: 'POST', headers: { 'content-type': 'application/json' }, setupRequest: req => ({ ...req, ...signedRequest() }) }],
})
process.stdout.write(JSON.stringify({ rps: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx + result.errors + result.timeouts, total: result.requests.total }) + '\n')
