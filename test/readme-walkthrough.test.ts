/**
 * README.md's walkthrough run as written ("Set up and run", "Try it with a simulated Conduit"
 * including the downlink step, and the ThingPark part): every annotated `sh` block in order with
 * bash, through the runner docs/quickstart.md's test uses (helpers/doc-walkthrough.ts). The README
 * uses the default ports with no configuration file (then one without listeners), so the daemon's
 * listeners move to free ports through LORABRIDGE_MQTT_LISTENERS / LORABRIDGE_HTTP_LISTENERS and the
 * same ports are swapped in the commands. On top of the "you see" blocks, it checks what the README
 * promises: the Conduit simulator still runs and prints the downlink sent to it, the uplinks appear
 * normalized, each downlink request ends in down/queued (and, for ThingPark, down/sent), and Ctrl-C
 * stops the simulators and both daemons with status 0.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { DocWalkthrough, ROOT, until } from './helpers/doc-walkthrough.js'

const DOC_PORTS = [1883, 8883, 8080, 9090] as const

describe('README.md walkthrough, run as written', () => {
  const w = new DocWalkthrough({
    doc: join(ROOT, 'README.md'),
    prefix: 'readme',
    ports: DOC_PORTS,
    env: ports => ({
      LORABRIDGE_MQTT_LISTENERS: JSON.stringify([
        { protocol: 'mqtt', host: '127.0.0.1', port: ports.get(1883), anonymous: true },
        { protocol: 'mqtts', host: '127.0.0.1', port: ports.get(8883) },
      ]),
      LORABRIDGE_HTTP_LISTENERS: JSON.stringify([{ protocol: 'http', host: '127.0.0.1', port: ports.get(8080) }]),
    }),
  })

  beforeAll(async () => { await w.setup() })
  afterAll(async () => { await w.cleanup() })

  it('annotates every sh block of the walkthrough sections, with ports the test can swap', () => {
    const start = w.doc.indexOf('## Set up and run')
    const end = w.doc.indexOf('## Web console')
    expect(start).toBeGreaterThan(0)
    expect(end).toBeGreaterThan(start)
    const firstLine = w.doc.slice(0, start).split('\n').length
    const lastLine = w.doc.slice(0, end).split('\n').length
    const shell = w.blocks.filter(b => b.lang === 'sh' && b.line > firstLine && b.line < lastLine)
    expect(shell.length).toBeGreaterThanOrEqual(10)
    for (const b of shell) {
      expect(b.attrs, `sh block at README.md:${b.line} has no <!-- readme: … --> comment`).toBeDefined()
      if (b.attrs?.skip === true) continue
      expect(typeof b.attrs?.terminal, `sh block at line ${b.line}: terminal=N`).toBe('string')
      expect(b.code, `line ${b.line}`).not.toMatch(/\bnode\s|dist\//)
      for (const m of b.code.matchAll(/\bmosquitto_(?:sub|pub)\b[^\n]*/g)) expect(m[0], `line ${b.line}: name the port`).toMatch(/ -p (1883|8883)\b/)
    }
    for (const b of w.blocks.filter(b => b.lang === 'text' && b.line > firstLine && b.line < lastLine)) expect(typeof b.attrs?.output, `text block at line ${b.line}: output=NAME`).toBe('string')
  })

  it('runs every block in order: each exits 0 and prints what the README expects', async () => {
    await w.runAll((ok, message) => { expect(ok, message).toBe(true) })
    expect(w.terminals.size).toBeGreaterThanOrEqual(3)
  })

  it('every "you see" block matches, line by line and in order, what its command printed', async () => {
    expect(await w.unmatchedTextBlocks()).toEqual([])
  })

  it('the daemons listen on the swapped ports, never the defaults', () => {
    for (const name of ['daemon', 'daemon-tp']) {
      const listening = w.jsonLines(name).filter(l => l.msg === 'listening').map(l => [l.protocol, l.port])
      expect(listening).toEqual(expect.arrayContaining([['mqtt', w.ports.get(1883)], ['mqtts', w.ports.get(8883)], ['http', w.ports.get(8080)]]))
    }
  })

  it('the Conduit simulator, still running, printed the downlink of the mosquitto_pub step; its uplinks were normalized', async () => {
    const lines = w.jsonLines('conduit')
    const devices = lines.filter(l => l.event === 'device')
    expect(devices.map(d => d.devEui)).toEqual(['00-80-00-ff-00-00-00-01', '00-80-00-ff-00-00-00-02'])
    expect(lines.filter(l => l.event === 'downlink')).toEqual([
      { event: 'downlink', devEui: '00-80-00-ff-00-00-00-01', port: 2, data: '0102', topic: `lorawan/${String(devices[0]?.gateway)}/down` },
    ])
    expect(lines.filter(l => l.event === 'uplink')).toHaveLength(4)
    expect(lines.at(-1)).toEqual({ event: 'summary', uplinks: 4, downlinks: 1 }) // after Ctrl-C
    const ups = w.messages('subscriber').filter(m => /^lorabridge\/default\/devices\/008000ff0000000[12]\/up$/.test(m.topic)).map(m => m.payload)
    expect(ups.map(u => [u.devEui, u.fCnt, u.devAddr])).toEqual(lines.filter(l => l.event === 'uplink').map(l => {
      const d = devices.find(x => x.devEui === l.devEui)
      return [String(l.devEui).replace(/-/g, ''), l.fCnt, d?.devAddr]
    }))
    expect(w.messages('subscriber').filter(m => m.topic.endsWith('/down/queued')).map(m => m.payload.id)).toEqual(['hi'])
  })

  it('ThingPark: the hand-made downlink reaches the LRC signed, then down/queued and down/sent', async () => {
    const dev = 'lorabridge/default/devices/0018b20000000b20'
    await until('down/sent with id hello', () => w.messages('subscriber-tp').some(m => m.topic === `${dev}/down/sent` && m.payload.id === 'hello'))
    expect(w.messages('subscriber-tp').some(m => m.topic === `${dev}/down/queued` && m.payload.id === 'hello')).toBe(true)
    expect(w.jsonLines('thingpark')).toContainEqual({ event: 'downlink', devEui: '0018B20000000B20', fPort: 2, payload: '01', tokenValid: true, status: 200 })
  })

  it('Ctrl-C stopped the Conduit simulator and the first daemon with status 0; it stops the rest the same way', async () => {
    expect(w.interrupted.get('conduit')).toBe(0)
    expect(w.interrupted.get('daemon')).toBe(0)
    await until('the three ThingPark uplinks', () => w.jsonLines('thingpark').filter(l => l.event === 'post' && l.root === 'DevEUI_uplink' && l.status === 204).length === 3)
    for (const name of ['thingpark', 'subscriber-tp', 'daemon-tp']) await w.interrupt(name)
    expect(w.interrupted.get('thingpark')).toBe(0)
    expect(w.interrupted.get('daemon-tp')).toBe(0)
  })
})
