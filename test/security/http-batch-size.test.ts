/**
 * Issue 12, other app-connect HTTP routes: a batched `POST {APP}/up` holds at most 10 messages, and
 * a re-queued batch nested in one at most 10 again (multitech-app-connect.md §3). A body of
 * thousands of tiny uplinks (under the byte limit) would make one request thousands of ingests: it
 * is refused whole (413 LB_ERR_APPCONNECT_TOO_LARGE, counted, nothing published), while the
 * largest batch app-connect can send is still taken.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { request } from 'node:http'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { observe, until, type MqttClient } from '../helpers/mqtt.js'

const APP = 'ff-ff-ff-ff-ff-ff-ff-ff'

describe('app-connect HTTP batches are bounded in messages, not only in bytes', () => {
  let t: TestDaemon
  let watcher: { client: MqttClient, seen: Array<{ topic: string, payload: string }> }
  beforeAll(async () => {
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] } })
    watcher = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`)
  })
  afterAll(async () => {
    await watcher?.client.endAsync(true)
    await t?.stop()
  })

  const post = async (body: unknown): Promise<{ status: number, json: Record<string, unknown> }> => new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body))
    const req = request({ host: '127.0.0.1', port: t.port('http'), path: `/api/v1/lorawan/${APP}/up`, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': payload.length } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> }))
    })
    req.on('error', reject)
    req.end(payload)
  })

  const uplink = (i: number, tag: number): Record<string, unknown> =>
    ({ deveui: `00-80-00-ff-00-00-${(i >> 8).toString(16).padStart(2, '0')}-${(i & 0xff).toString(16).padStart(2, '0')}`, fcnt: i, port: 1, data: Buffer.from([tag]).toString('base64') })
  const ups = (tag: number): number => watcher.seen.filter(m => m.topic.endsWith('/up') && (JSON.parse(m.payload) as { hex?: string }).hex === tag.toString(16).padStart(2, '0')).length

  it('refuses a batch of 3000 tiny uplinks whole, and takes a full nested batch of 100', async () => {
    const before = await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_APPCONNECT_TOO_LARGE' })
    const flood = await post(Array.from({ length: 3000 }, (_, i) => uplink(i, 0xee)))
    expect(flood.status).toBe(413)
    expect(flood.json).toMatchObject({ error: 'LB_ERR_APPCONNECT_TOO_LARGE' })
    expect(await t.counter('ingestErrors', { network: 'multitech', code: 'LB_ERR_APPCONNECT_TOO_LARGE' })).toBe(before + 1)

    // The most app-connect sends: 10 re-queued batches of 10.
    const nested = Array.from({ length: 10 }, (_, b) => Array.from({ length: 10 }, (_, i) => uplink(b * 10 + i, 0x0a)))
    const ok = await post(nested)
    expect(ok.status).toBe(200)
    await until(() => ups(0x0a) === 100 || undefined, 'the 100 uplinks of the nested batch')
    // The flood was refused before any of it was ingested, and was posted before the nested batch.
    expect(ups(0xee)).toBe(0)
  })
})
