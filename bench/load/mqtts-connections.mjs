// Opens COUNT MQTTS connections to lorabridge, CONCURRENCY at a time, each a raw TLS socket that
// sends CONNECT (clean session, KEEPALIVE seconds) and waits for CONNACK; then keeps them open and
// idle (a PINGREQ every half keepalive) until SIGTERM. A raw client, not mqtt.js, so that 10,000
// of them fit in this process. Prints one JSON line once all are open (or failed).
// Usage: node mqtts-connections.mjs PORT CA_FILE USERNAME PASSWORD COUNT CONCURRENCY KEEPALIVE
import { connect } from 'node:tls'
import { readFileSync } from 'node:fs'
import mqttPacket from 'mqtt-packet'

const [port, caFile, username, password, count, concurrency, keepalive] = process.argv.slice(2)
const ca = readFileSync(caFile)
const sockets = []
const PINGREQ = mqttPacket.generate({ cmd: 'pingreq' })

function open (i) {
  return new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost' })
    let settled = false
    const done = ok => { if (!settled) { settled = true; resolve(ok) } }
    socket.once('secureConnect', () => {
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `bench-idle-${i}`, keepalive: Number(keepalive), username, password: Buffer.from(password) }))
    })
    socket.once('data', d => {
      const ok = d[0] === 0x20 && d[3] === 0
      if (ok) sockets.push(socket); else socket.destroy()
      done(ok)
    })
    socket.on('error', () => done(false))
    socket.once('close', () => done(false))
  })
}

let next = 0
let opened = 0
let failed = 0
const t0 = performance.now()
await Promise.all(Array.from({ length: Number(concurrency) }, async () => {
  while (next < Number(count)) {
    if (await open(next++)) opened++; else failed++
  }
}))
const seconds = (performance.now() - t0) / 1000
const alive = () => sockets.filter(s => !s.destroyed).length
setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write(PINGREQ) }, Number(keepalive) * 500).unref()
process.stdout.write(JSON.stringify({ opened, failed, seconds, perSec: opened / seconds }) + '\n')
process.on('SIGUSR2', () => { process.stdout.write(JSON.stringify({ alive: alive() }) + '\n') })
process.on('SIGTERM', () => { for (const s of sockets) s.destroy(); process.exit(0) })
setInterval(() => {}, 1 << 30)
