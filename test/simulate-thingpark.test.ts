// The ThingPark LRC simulator (src/simulate/thingpark.ts) against a plain node:http server acting
// as the AS: no lorabridge involved. Tokens are checked with src/thingpark/token.ts.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { XMLParser } from 'fast-xml-parser'
import { LRC_SUCCESS_BODY, ThingParkSimulator, type LrcRequest, type PostResult, type ThingParkSimulatorOptions, type TpContentType } from '../src/simulate/thingpark.js'
import { simulateThingPark } from '../src/simulate/thingpark-cli.js'
import { lrcTime, parseRawQuery, signDownlinkQuery, verifyReportToken } from '../src/thingpark/token.js'
import { until } from './helpers/mqtt.js'

const AS_ID = 'TWA_100000001.1.AS'
const AS_KEY = '0123456789abcdef0123456789abcdef'
const DEV = '0018B20000000B20'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface AsRequest { method: string, path: string, rawQuery: string, query: Record<string, string>, headers: IncomingHttpHeaders, body: string }

async function startAs (status = 200): Promise<{ url: string, requests: AsRequest[] }> {
  const requests: AsRequest[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => {
      const target = req.url ?? '/'
      const qi = target.indexOf('?')
      const rawQuery = qi < 0 ? '' : target.slice(qi + 1)
      const parsed = parseRawQuery(rawQuery)
      requests.push({ method: req.method ?? '', path: qi < 0 ? target : target.slice(0, qi), rawQuery, query: parsed.ok ? parsed.params : {}, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(status, { 'Content-Type': 'text/plain' })
      res.end('ok')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    await new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() })
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/thingpark/tp-eu`, requests }
}

function sim (opts: Partial<ThingParkSimulatorOptions> & { asUrl: string }): ThingParkSimulator {
  const s = new ThingParkSimulator({ asId: AS_ID, asKey: AS_KEY, ...opts })
  cleanups.push(async () => { await s.stop() })
  return s
}

const xmlParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, isArray: name => name === 'Lrr' })

/** The report (without root) an AS would parse from a recorded request. */
function parseBody (r: AsRequest): { root: string, report: Record<string, unknown> } {
  if (r.headers['content-type'] === 'text/xml') {
    const doc = xmlParser.parse(r.body) as Record<string, unknown>
    const root = Object.keys(doc).find(k => k !== '?xml') as string
    const { '@_xmlns': ns, ...report } = doc[root] as Record<string, unknown>
    expect(ns).toBe('http://uri.actility.com/lora')
    return { root, report }
  }
  const doc = JSON.parse(r.body) as Record<string, Record<string, unknown>>
  const root = Object.keys(doc)[0] as string
  return { root, report: doc[root] as Record<string, unknown> }
}

async function post (url: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '0' } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
    })
    req.on('error', reject)
    req.end()
  })
}


const uplink = { devEui: DEV, fPort: 2, fCntUp: 42, payloadHex: '0102abcd', lrrs: [{ Lrrid: '080603DB', LrrRSSI: -100, LrrSNR: 5.75 }, { Lrrid: '080E00C8', LrrRSSI: -118, LrrSNR: -4 }] }

describe('ThingPark simulator: reports', () => {
  it.each<TpContentType>(['json', 'json-untyped', 'xml'])('posts a %s uplink whose token verifies', async ct => {
    const as = await startAs()
    const s = sim({ asUrl: as.url, contentType: ct })
    const res = await s.uplink(uplink)
    expect(res.status).toBe(200)
    const r = as.requests[0] as AsRequest
    expect(r.method).toBe('POST')
    expect(r.path).toBe('/thingpark/tp-eu')
    expect(Object.keys(r.query)).toEqual(['LrnDevEui', 'LrnFPort', 'LrnInfos', 'AS_ID', 'Time', 'Token'])
    expect(r.query).toMatchObject({ LrnDevEui: DEV, LrnFPort: '2', LrnInfos: `${AS_ID}-1-123456`, AS_ID })
    expect(r.query.Time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/)
    expect(r.rawQuery).toContain('%3A')
    expect(r.rawQuery).toContain('%2B00%3A00')
    expect(r.headers['user-agent']).toBe('ACTILITY-LRCLRN-DEVICE-AGENT/1.0')
    expect(r.headers.accept).toBe('*/*')
    expect(r.headers['content-type']).toBe(ct === 'xml' ? 'text/xml' : 'application/json')
    const { root, report } = parseBody(r)
    expect(root).toBe('DevEUI_uplink')
    expect(verifyReportToken(root, report, r.query, AS_KEY)).toBe(true)
    expect(verifyReportToken(root, report, r.query, 'ffffffffffffffffffffffffffffffff')).toBe(false)
    const lrr = (report.Lrrs as { Lrr: Array<Record<string, unknown>> }).Lrr
    expect(lrr).toHaveLength(2)
    if (ct === 'json') {
      expect(report).toMatchObject({ DevEUI: DEV, FPort: 2, FCntUp: 42, CustomerID: '100000001', payload_hex: '0102abcd', LrrRSSI: -100, LrrSNR: 5.75, Lrrid: '080603DB', DevLrrCnt: 2, SubBand: 'G1', Lrcid: '00000065' })
      expect(report.CustomerData).toEqual({ alr: { pro: 'LORA/Generic', ver: '1' } })
      expect(lrr[0]).toMatchObject({ Lrrid: '080603DB', Chain: 0, LrrRSSI: -100, LrrSNR: 5.75 })
    } else {
      expect(report).toMatchObject({ DevEUI: DEV, FPort: '2', FCntUp: '42', LrrRSSI: '-100.000000', LrrSNR: '5.750000', DevLrrCnt: '2' })
      expect(lrr[1]).toMatchObject({ Lrrid: '080E00C8', Chain: '0', LrrRSSI: '-118.000000', LrrSNR: '-4.000000' })
    }
    if (ct === 'xml') {
      expect(r.body.startsWith('<?xml version="1.0" encoding="utf-8"?>\n<DevEUI_uplink xmlns="http://uri.actility.com/lora">')).toBe(true)
      expect(JSON.parse(report.CustomerData as string)).toEqual({ alr: { pro: 'LORA/Generic', ver: '1' } })
    }
    expect(res.report).toEqual(ct === 'xml' ? report : JSON.parse(r.body).DevEUI_uplink)
  })

  it('typed, untyped and XML forms of the same report carry the same token; XML values equal the untyped JSON', async () => {
    const as = await startAs()
    const s = sim({ asUrl: as.url })
    const time = new Date('2024-05-01T12:00:00.123Z')
    const report = s.buildUplink({ ...uplink, time })
    const results: PostResult[] = []
    for (const ct of ['json', 'json-untyped', 'xml'] as const) results.push(await s.post('DevEUI_uplink', report, { contentType: ct, time }))
    expect(new Set(results.map(r => r.query.Token)).size).toBe(1)
    const untyped = parseBody(as.requests[1] as AsRequest).report
    const xml = parseBody(as.requests[2] as AsRequest).report
    const scalars = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v !== 'object' || v === null))
    const { CustomerData: xmlCd, ...xmlRest } = xml
    expect(typeof xmlCd).toBe('string')
    expect(scalars(xmlRest)).toEqual(scalars(untyped))
    expect(xml.Lrrs).toEqual(untyped.Lrrs)
    expect(JSON.parse(xml.CustomerData as string)).toEqual(untyped.CustomerData)
    for (const r of as.requests) expect(verifyReportToken('DevEUI_uplink', parseBody(r).report, r.query, AS_KEY)).toBe(true)
  })

  it("queryOrder 'as-first' puts AS_ID first and the token still verifies", async () => {
    const as = await startAs()
    const s = sim({ asUrl: as.url })
    await s.uplink(uplink, { queryOrder: 'as-first', contentType: 'json-untyped' })
    const r = as.requests[0] as AsRequest
    expect(r.rawQuery.startsWith(`AS_ID=${AS_ID}&LrnDevEui=`)).toBe(true)
    expect(Object.keys(r.query)).toEqual(['AS_ID', 'LrnDevEui', 'LrnFPort', 'LrnInfos', 'Time', 'Token'])
    expect(verifyReportToken('DevEUI_uplink', parseBody(r).report, r.query, AS_KEY)).toBe(true)
  })

  it('formats the query Time from PostOptions.time like the LRC', async () => {
    const as = await startAs()
    const s = sim({ asUrl: as.url })
    const res = await s.uplink({ devEui: DEV, fPort: 2, fCntUp: 42, payloadHex: '0102abcd' }, { time: new Date('2024-05-01T10:00:00.123Z') })
    expect(res.query.Time).toBe('2024-05-01T10:00:00.123+00:00')
    expect(as.requests[0]?.rawQuery).toContain('Time=2024-05-01T10%3A00%3A00.123%2B00%3A00&Token=')
  })

  it('location: lower-case DevEUI in body and LrnDevEui, LrnFPort=0, token verifies', async () => {
    const as = await startAs()
    const s = sim({ asUrl: as.url })
    for (const ct of ['json', 'xml'] as const) await s.location({ devEui: DEV, lat: 48.85, lon: 2.35, alt: 50 }, { contentType: ct })
    for (const r of as.requests) {
      const { root, report } = parseBody(r)
      expect(root).toBe('DevEUI_location')
      expect(report.DevEUI).toBe(DEV.toLowerCase())
      expect(r.query.LrnDevEui).toBe(DEV.toLowerCase())
      expect(r.query.LrnFPort).toBe('0')
      expect(verifyReportToken(root, report, r.query, AS_KEY)).toBe(true)
    }
  })

  it('join request, notification, downlink_Sent, downlink_Rejected and an unknown root verify', async () => {
    const as = await startAs()
    const s = sim({ asUrl: as.url, contentType: 'json-untyped' })
    await s.joinRequest({ devEui: DEV, rawJoinRequest: '003246524144b21800200b000000b2180052ff36f5e390' })
    await s.notification({ devEui: DEV, type: 'devstatusans' })
    await s.downlinkSent({ devEui: DEV, fPort: 2, fCntDn: 7, deliveryStatus: 0, correlationId: '4434704901C7450B' })
    await s.downlinkRejected({ devEui: DEV, fPort: 2, cause: 'Downlink counter value already used. Expected=1238' })
    await s.post('DevEUI_something_new', { Time: lrcTime(new Date()), DevEUI: DEV, CustomerID: '100000001', Foo: 1 })
    const parsed = as.requests.map(r => ({ r, ...parseBody(r) }))
    expect(parsed.map(p => p.root)).toEqual(['DevEUI_uplink', 'DevEUI_notification', 'DevEUI_downlink_Sent', 'DevEUI_downlink_Rejected', 'DevEUI_something_new'])
    const join = parsed[0]?.report as Record<string, unknown>
    expect(join).toMatchObject({ MType: '0', Spfact: '12', mic_hex: '36f5e390' })
    expect(join.FPort).toBeUndefined()
    expect(parsed[0]?.r.query.LrnFPort).toBe('0')
    expect(parsed[1]?.report).toMatchObject({ Type: 'devstatusans', Var1: '255', Var2: '10' })
    expect(parsed[2]?.report).toMatchObject({ FPort: '2', FCntDn: '7', DeliveryStatus: '0', DeliveryFailedCause1: 'B0', CorrelationID: '4434704901C7450B' })
    expect(parsed[3]?.report).toMatchObject({ DeliveryStatus: '350' })
    for (const p of parsed) expect(verifyReportToken(p.root, p.report, p.r.query, AS_KEY)).toBe(true)
  })

  it('omitParams, token override and token:null', async () => {
    const as = await startAs()
    const s = sim({ asUrl: as.url })
    await s.uplink(uplink, { omitParams: ['LrnDevEui'] })
    await s.uplink(uplink, { token: null })
    await s.uplink(uplink, { token: 'f'.repeat(64) })
    await s.uplink(uplink, { rawBody: '{"DevEUI_uplink":', contentTypeHeader: 'text/plain' })
    const [a, b, c, d] = as.requests as [AsRequest, AsRequest, AsRequest, AsRequest]
    expect(Object.keys(a.query)).toEqual(['LrnFPort', 'LrnInfos', 'AS_ID', 'Time', 'Token'])
    // the token was computed over the full query: restoring LrnDevEui makes it verify
    expect(verifyReportToken('DevEUI_uplink', parseBody(a).report, a.query, AS_KEY)).toBe(false)
    expect(verifyReportToken('DevEUI_uplink', parseBody(a).report, { ...a.query, LrnDevEui: DEV }, AS_KEY)).toBe(true)
    expect(b.query.Token).toBeUndefined()
    expect(Object.keys(b.query)).toEqual(['LrnDevEui', 'LrnFPort', 'LrnInfos', 'AS_ID', 'Time'])
    expect(c.query.Token).toBe('f'.repeat(64))
    expect(verifyReportToken('DevEUI_uplink', parseBody(c).report, c.query, AS_KEY)).toBe(false)
    expect(d.body).toBe('{"DevEUI_uplink":')
    expect(d.headers['content-type']).toBe('text/plain')
    expect(d.query.Token).toMatch(/^[0-9a-f]{64}$/)
  })

  it('returns the AS status (non-2xx too)', async () => {
    const as = await startAs(403)
    const s = sim({ asUrl: as.url, keepAlive: false })
    const res = await s.uplink(uplink)
    expect(res.status).toBe(403)
    expect(as.requests[0]?.headers.connection).toBe('close')
  })
})

const params = (time = new Date(), extra: Array<[string, string]> = []): Array<[string, string]> =>
  [['DevEUI', DEV], ['FPort', '2'], ['Payload', '0102'], ['AS_ID', AS_ID], ['Time', lrcTime(time)], ...extra]

describe('ThingPark simulator: LRC downlink endpoint', () => {

  it('accepts a correctly signed request with the exact success body', async () => {
    const s = sim({ asUrl: 'http://127.0.0.1:9/unused' })
    const url = await s.startLrc({ sentReportDelayMs: -1 })
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/thingpark\/lrc\/rest\/downlink$/)
    const seen: LrcRequest[] = []
    s.on('downlink', (r: LrcRequest) => { seen.push(r) })
    const res = await post(`${url}?${signDownlinkQuery(params(), AS_KEY).query}`)
    expect(res).toEqual({ status: 200, body: LRC_SUCCESS_BODY })
    expect(seen).toHaveLength(1)
    expect(s.lrcRequests[0]).toMatchObject({ tokenValid: true, timeOk: true, status: 200, responseBody: LRC_SUCCESS_BODY, params: { DevEUI: DEV, FPort: '2', Payload: '0102', AS_ID } })
  })

  it('rejects a bad token and a stale Time', async () => {
    const s = sim({ asUrl: 'http://127.0.0.1:9/unused' })
    const url = await s.startLrc()
    const bad = await post(`${url}?${signDownlinkQuery(params(), 'ffffffffffffffffffffffffffffffff').query}`)
    expect(bad.status).not.toBe(200)
    expect(bad.body).toMatch(/^<html><body>.+<\/body><\/html>$/)
    const stale = await post(`${url}?${signDownlinkQuery(params(new Date(Date.now() - 600_000)), AS_KEY).query}`)
    expect(stale.status).not.toBe(200)
    expect(s.lrcRequests.map(r => [r.tokenValid, r.timeOk])).toEqual([[false, true], [true, false]])
  })

  it('follows lrcScript, then the default', async () => {
    const s = sim({ asUrl: 'http://127.0.0.1:9/unused' })
    const url = await s.startLrc()
    s.lrcScript = [{ status: 503 }, { status: 503 }]
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await post(`${url}?${signDownlinkQuery(params(), AS_KEY).query}`)).status)
    expect(statuses).toEqual([503, 503, 200])
    expect(s.lrcScript).toEqual([])
  })

  it('posts DevEUI_downlink_Sent with the CorrelationID after a 200', async () => {
    const as = await startAs()
    const s = sim({ asUrl: as.url, contentType: 'xml' })
    const url = await s.startLrc({ sentReportDelayMs: 20 })
    const reports: PostResult[] = []
    s.on('sent-report', (r: PostResult) => { reports.push(r) })
    for (const id of ['4434704901C7450B', '4434704901C7450C']) {
      const res = await post(`${url}?${signDownlinkQuery(params(new Date(), [['CorrelationID', id]]), AS_KEY).query}`)
      expect(res.status).toBe(200)
    }
    await until(() => as.requests.length >= 2 && reports.length >= 2, 'two DevEUI_downlink_Sent')
    const parsed = as.requests.map(r => ({ r, ...parseBody(r) }))
    expect(parsed.map(p => p.report.CorrelationID).sort()).toEqual(['4434704901C7450B', '4434704901C7450C'])
    for (const p of parsed) {
      expect(p.root).toBe('DevEUI_downlink_Sent')
      expect(p.report).toMatchObject({ DevEUI: DEV, FPort: '2', DeliveryStatus: '1', TransmissionSlot: '1' })
      expect(p.r.query).toMatchObject({ LrnDevEui: DEV, LrnFPort: '2' })
      expect(verifyReportToken(p.root, p.report, p.r.query, AS_KEY)).toBe(true)
    }
    expect(parsed.map(p => p.report.FCntDn).sort()).toEqual(['0', '1'])
  })
})

describe('simulate thingpark CLI', () => {
  it('posts --count reports over --devices and prints JSON lines', async () => {
    const as = await startAs()
    const out = new PassThrough()
    let text = ''
    out.on('data', (c: Buffer) => { text += c.toString('utf8') })
    const summary = await simulateThingPark({ url: as.url, asId: AS_ID, asKey: AS_KEY, devices: 2, count: 4, rate: 200, contentType: 'xml' }, { stdout: out, stderr: new PassThrough(), signals: false })
    expect(summary).toEqual({ posts: 4, failed: 0, downlinks: 0 })
    const lines = text.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    expect(lines.filter(l => l.event === 'post')).toHaveLength(4)
    expect(new Set(lines.filter(l => l.event === 'post').map(l => l.devEui))).toEqual(new Set(['0018B20000000001', '0018B20000000002']))
    expect(lines.at(-1)).toEqual({ event: 'summary', posts: 4, failed: 0, downlinks: 0 })
    for (const r of as.requests) expect(verifyReportToken('DevEUI_uplink', parseBody(r).report, r.query, AS_KEY)).toBe(true)
  })

  it('serves the LRC endpoint until aborted', async () => {
    const as = await startAs()
    const out = new PassThrough()
    let text = ''
    out.on('data', (c: Buffer) => { text += c.toString('utf8') })
    const abort = new AbortController()
    let lrc = ''
    const run = simulateThingPark({ url: as.url, asId: AS_ID, asKey: AS_KEY, count: 1, lrcPort: 0 }, { stdout: out, stderr: new PassThrough(), signals: false, abort: abort.signal, onLrc: u => { lrc = u } })
    await until(() => lrc !== '' && as.requests.length >= 1, 'LRC endpoint and first post')
    const res = await post(`${lrc}?${signDownlinkQuery(params(), AS_KEY).query}`)
    expect(res.status).toBe(200)
    await until(() => text.includes('"event":"downlink"'), 'downlink line')
    abort.abort()
    const summary = await run
    expect(summary).toEqual({ posts: 1, failed: 0, downlinks: 1 })
    const dl = text.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>).find(l => l.event === 'downlink')
    expect(dl).toEqual({ event: 'downlink', devEui: DEV, fPort: 2, payload: '0102', tokenValid: true, status: 200 })
  })
})
