/**
 * Idle MQTTS connections: lorabridge's resident memory before and after N connections
 * (password-authenticated, keepalive 60, clean session, no subscriptions), and the rate at which
 * they were accepted. The connections come from a raw-TLS load process of their own.
 */
import { join } from 'node:path'
import { spawnJson, startLorabridge, rssMiB } from '../lib/processes.js'
import { round } from '../lib/stats.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

export interface ConnectionsResult { count: number, opened: number, failed: number, perSec: number, rssBeforeMiB: number, rssAfterMiB: number, kibPerConnection: number, clientsGauge: number }

export async function idleConnections (o: { count: number, concurrency: number, settleMs?: number }): Promise<ConnectionsResult> {
  const daemon = await startLorabridge({
    config: {
      mqtt: {
        listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }, { protocol: 'mqtts', host: '127.0.0.1', port: 0 }],
        limits: { connectRate: { perAddress: 0 } },
      },
      http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }] },
      log: { level: 'info' },
    },
    // One user for every simulated Conduit (each its own GW-UUID): deliberately unbound.
    users: [['bench-gw', '--role', 'gateway', '--any-gateway', '--password', 'bench-password']],
  })
  let load: Awaited<ReturnType<typeof spawnJson>> | undefined
  try {
    await sleep(Math.min(1000, o.settleMs ?? 1000))
    const rssBeforeMiB = await rssMiB(daemon.child.pid!)
    load = await spawnJson('bench/load/mqtts-connections.mjs', [String(daemon.port('mqtts')), join(daemon.dir, 'data', 'ca.crt'), 'bench-gw', 'bench-password', String(o.count), String(o.concurrency), '60'])
    const r = load.info as { opened: number, failed: number, perSec: number }
    await sleep(o.settleMs ?? 3000) // let the handshakes' garbage be collected and the sockets settle
    const rssAfterMiB = await rssMiB(daemon.child.pid!)
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text()
    const clientsGauge = Number(/^lorabridge_mqtt_clients (\d+)/m.exec(metrics)?.[1] ?? NaN)
    return {
      count: o.count,
      opened: r.opened,
      failed: r.failed,
      perSec: round(r.perSec, 0),
      rssBeforeMiB,
      rssAfterMiB,
      kibPerConnection: round(((rssAfterMiB - rssBeforeMiB) * 1024) / Math.max(1, r.opened), 1),
      clientsGauge,
    }
  } finally {
    await load?.stop()
    await daemon.stop()
  }
}
