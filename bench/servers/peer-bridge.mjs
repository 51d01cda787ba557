// The "peer" of the Conduit pipeline (issue 13): what an operator would otherwise deploy next to
// Mosquitto — a small mqtt.js + jsonata bridge doing the same job as lorabridge's pipeline for
// app-connect v1.1 uplinks: normalize, deduplicate, decode (the bench's decoder), publish the
// normalized uplink, evaluate the bench's rule and send its downlink in the Conduit's dialect.
// Usage: node peer-bridge.mjs mqtt://127.0.0.1:PORT — prints one JSON line once subscribed.
import mqtt from 'mqtt'
import jsonata from 'jsonata'
import { createHash } from 'node:crypto'

const url = process.argv[2]
const client = await mqtt.connectAsync(url, { clientId: 'peer-bridge', clean: true, reconnectPeriod: 0 })
// Nagle off, as lorabridge and the load generator have it (40 ms per hop otherwise).
client.stream.setNoDelay?.(true)

// The bench's rule file, as JSONata with the two helpers it needs.
const bindings = {
  u8: (bytes, i) => bytes[i],
  u16be: (bytes, i) => (bytes[i] << 8) | bytes[i + 1],
  toU32be: n => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255],
  hex: bytes => Buffer.from(bytes).toString('hex'),
}
const decoder = jsonata('{ "b0": $u8(bytes, 0), "b1": $u16be(bytes, 1) }')
const rule = jsonata('{ "fPort": 3, "hex": $hex($toU32be(fCnt)) }')

// Frames seen in the last five minutes (retained replays, redeliveries, other gateways).
const seen = new Map()
setInterval(() => { const cut = Date.now() - 300_000; for (const [k, t] of seen) { if (t > cut) break; seen.delete(k) } }, 10_000).unref()

client.on('message', (topic, payload) => {
  // lorawan/{GW-UUID}/{APPEUI}/{DEVEUI}/up (app-connect v1.1)
  const [, gw, , , kind] = topic.split('/')
  if (kind !== 'up' || payload.length === 0) return
  void handle(gw, payload).catch(err => { process.stderr.write(`peer-bridge: ${err.message}\n`) })
})

async function handle (gw, payload) {
  const up = JSON.parse(payload.toString('utf8'))
  const devEui = up.deveui.replace(/-/g, '').toLowerCase()
  const bytes = Buffer.from(up.data, 'base64')
  const id = createHash('sha256').update(`up|${devEui}|${up.devaddr}|${up.fcnt}|${bytes.toString('hex')}`).digest('hex').slice(0, 32)
  if (seen.has(id)) return
  seen.set(id, Date.now())
  const event = {
    id, app: 'default', devEui, devAddr: up.devaddr, fPort: up.port, fCnt: up.fcnt,
    data: up.data, hex: bytes.toString('hex'), time: up.time, receivedAt: new Date().toISOString(),
    gateways: [{ id: up.gweui, rssi: up.rssi, snr: up.lsnr }],
    network: { type: 'multitech', gateway: gw },
  }
  if (event.fPort === 2) event.decoded = await decoder.evaluate({ ...event, bytes: [...bytes] }, bindings)
  await client.publishAsync(`lorabridge/default/devices/${devEui}/up`, JSON.stringify(event), { qos: 1 })
  if (event.fPort !== 2) return
  const down = await rule.evaluate(event, bindings)
  const body = { deveui: up.deveui, data: Buffer.from(down.hex, 'hex').toString('base64'), port: down.fPort, ack: false }
  await client.publishAsync(`lorawan/${gw}/down`, JSON.stringify(body), { qos: 1 })
}

await client.subscribeAsync('lorawan/+/+/+/up', { qos: 1 })
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
process.on('SIGTERM', () => { client.end(true, () => process.exit(0)) })
