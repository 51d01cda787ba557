/**
 * ThingPark ingest: signed uplink POSTs over HTTPS keep-alive against lorabridge's ThingPark
 * endpoint, and the same load against a bare Node HTTPS server answering 204 with the same
 * certificate, in the same run. The load generator runs in its own process (bench/load/).
 */
import { join } from 'node:path'
import mqtt from 'mqtt'
import { spawnJson, startLorabridge, withCpu } from '../lib/processes.js'
import { round } from '../lib/stats.js'

const KEY = '0123456789abcdef0123456789abcdef'
const AS_ID = 'TWA_100000001.1.AS'

export interface LoadResult { rps: number, p50Ms: number, p99Ms: number, non2xx: number, serverCpu: number }

async function load (url: string, pid: number, seconds: number, connections: number): Promise<LoadResult> {
  const { result, serverCpu } = await withCpu(pid, async () => {
    const gen = await spawnJson('bench/load/thingpark-load.mjs', [url, String(seconds), String(connections), KEY, AS_ID])
    await new Promise(resolve => gen.child.once('exit', resolve))
    return gen.info as { rps: number, p50Ms: number, p99Ms: number, non2xx: number }
  })
  return { rps: round(result.rps, 0), p50Ms: round(result.p50Ms), p99Ms: round(result.p99Ms), non2xx: result.non2xx, serverCpu }
}

export async function thingparkIngest (o: { seconds: number, connections: number }): Promise<{ lorabridge: LoadResult, bare: LoadResult, ratio: number }> {
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
  // An application subscribed to the normalized uplinks, as in the Conduit pipeline: every report
  // is published and delivered (lorabridge publishes only what can be heard).
  const app = await mqtt.connectAsync(`mqtt://127.0.0.1:${daemon.port('mqtt')}`, { clientId: 'bench-app' })
  let delivered = 0
  app.on('message', () => { delivered++ })
  await app.subscribeAsync('lorabridge/+/devices/+/up', { qos: 1 })
  try {
    const lb = await load(`https://127.0.0.1:${daemon.port('https')}`, daemon.child.pid!, o.seconds, o.connections)
    if (delivered === 0) throw new Error('no normalized uplink reached the application subscriber')
    const base = await load(`https://127.0.0.1:${bare.info.port as number}`, bare.child.pid!, o.seconds, o.connections)
    return { lorabridge: lb, bare: base, ratio: round(lb.rps / base.rps) }
  } finally {
    await app.endAsync(true)
    await bare.stop()
    await daemon.stop()
  }
}
