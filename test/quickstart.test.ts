/**
 * docs/quickstart.md, run as a newcomer would: every `sh` block in order, with bash, in a fresh
 * directory holding a copy of `rules/`, `npx lorabridge` being this checkout's bin/lorabridge.js
 * and the page's ports (1883, 8883, 8080, 9090) swapped for free ones. The HTML comment before each
 * block says how to run it (the page's "How this page is tested" section); the `text` blocks that
 * show what the reader sees are matched against what the commands printed, and the outcomes the
 * page promises are checked on top: normalized uplinks on the subscriber, the rule's downlinks at
 * the simulated Conduit and, signed, at the simulated LRC, then down/queued and down/sent; and
 * Ctrl-C (SIGINT to each process group) stops the daemon with status 0.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DocWalkthrough, ROOT, until } from './helpers/doc-walkthrough.js'

const DOC = join(ROOT, 'docs', 'quickstart.md')
const DOC_PORTS = [1883, 8883, 8080, 9090] as const

describe('docs/quickstart.md, run as written', () => {
  const w = new DocWalkthrough({ doc: DOC, prefix: 'quickstart', ports: DOC_PORTS })
  const ports = w.ports
  const out = (name: string): string => w.out(name)
  const jsonLines = (name: string): Array<Record<string, unknown>> => w.jsonLines(name)
  const messages = (): Array<{ topic: string, payload: Record<string, unknown> }> => w.messages('subscriber')

  beforeAll(async () => { await w.setup() })
  afterAll(async () => { await w.cleanup() })

  it('annotates every sh and text block, and shows rules/quickstart.yaml as it is', async () => {
    const blocks = w.blocks
    const shell = blocks.filter(b => b.lang === 'sh')
    expect(shell.length).toBeGreaterThan(8)
    for (const b of shell) {
      expect(b.attrs, `sh block at docs/quickstart.md:${b.line} has no <!-- quickstart: … --> comment`).toBeDefined()
      if (b.attrs?.skip === true) continue
      expect(typeof b.attrs?.terminal, `sh block at line ${b.line}: terminal=N`).toBe('string')
      // Only public tools and this checkout's command; every port is one the test can swap.
      expect(b.code, `line ${b.line}`).not.toMatch(/\bnode\s|dist\//)
      for (const m of b.code.matchAll(/\bmosquitto_(?:sub|pub)\b[^\n]*/g)) expect(m[0], `line ${b.line}: name the port`).toMatch(/ -p (1883|8883)\b/)
    }
    for (const b of blocks.filter(b => b.lang === 'text')) expect(typeof b.attrs?.output, `text block at line ${b.line}: output=NAME`).toBe('string')
    const files = blocks.filter(b => typeof b.attrs?.file === 'string')
    expect(files.length).toBeGreaterThan(0)
    for (const b of files) expect(`${b.code}\n`).toBe(await readFile(join(ROOT, b.attrs?.file as string), 'utf8'))
  })

  it('runs every block in order: each exits 0 and prints what the page expects', async () => {
    await w.runAll((ok, message) => { expect(ok, message).toBe(true) })
    expect(w.terminals.size).toBe(4)
  })

  it('every "you see" block matches, line by line and in order, what its command printed', async () => {
    for (const b of w.blocks.filter(b => b.lang === 'text')) expect(typeof b.attrs?.output, `text block at line ${b.line}`).toBe('string')
    expect(await w.unmatchedTextBlocks()).toEqual([])
  })

  it('the daemon listens on the ports of the page\'s lorabridge.yaml (swapped)', () => {
    const listening = jsonLines('daemon').filter(l => l.msg === 'listening').map(l => [l.protocol, l.port])
    expect(listening).toEqual(expect.arrayContaining([
      ['mqtt', ports.get(1883)], ['mqtts', ports.get(8883)], ['http', ports.get(8080)],
    ]))
  })

  it('the Conduit\'s uplinks appear normalized, and it receives the rule\'s downlink for each', async () => {
    const conduit = jsonLines('conduit')
    expect(conduit.filter(l => l.event === 'downlink')).toEqual(['ac0100', 'ac0101', 'ac0102'].map(data => ({
      event: 'downlink', devEui: '00-80-00-ff-00-00-00-01', port: 11, data, topic: 'lorawan/029998e0-6156-cdd4-4523-264b523115c1/down',
    })))
    expect(conduit.at(-1)).toEqual({ event: 'summary', uplinks: 3, downlinks: 3 })
    const dev = 'lorabridge/default/devices/008000ff00000001'
    await until('the Conduit device\'s three down/queued', () => messages().filter(m => m.topic === `${dev}/down/queued`).length === 3)
    const ups = messages().filter(m => m.topic === `${dev}/up`).map(m => m.payload)
    // This run's session, as the simulator announced it: its frame counters follow on from there.
    const device = conduit.find(l => l.event === 'device') as { devAddr: string, fCnt: number }
    expect(device).toMatchObject({ devEui: '00-80-00-ff-00-00-00-01', fPort: 10, gateway: '029998e0-6156-cdd4-4523-264b523115c1' })
    const f0 = device.fCnt
    expect(ups.map(u => [u.fPort, u.fCnt, u.hex])).toEqual([[10, f0, '0100'], [10, f0 + 1, '0101'], [10, f0 + 2, '0102']])
    expect(ups.map(u => u.devAddr)).toEqual([device.devAddr, device.devAddr, device.devAddr])
    expect(conduit.filter(l => l.event === 'uplink')).toEqual(['0100', '0101', '0102'].map((hex, i) => ({ event: 'uplink', devEui: '00-80-00-ff-00-00-00-01', fCnt: f0 + i, fPort: 10, hex })))
    expect(ups[0]).toMatchObject({ app: 'default', devEui: '008000ff00000001', network: { type: 'multitech', transport: 'mqtt', protocol: '1.1.1', gateway: '029998e0-6156-cdd4-4523-264b523115c1' } })
    const downs = messages().filter(m => m.topic === `${dev}/down`).map(m => m.payload)
    expect(downs.map(d => d.hex)).toEqual(['ac0100', 'ac0101', 'ac0102'])
    expect(messages().filter(m => m.topic === `${dev}/down/queued`).map(m => m.payload.id)).toEqual(downs.map(d => d.id))
    const status = messages().filter(m => m.topic === 'lorabridge/gateways/029998e0-6156-cdd4-4523-264b523115c1/status').map(m => m.payload)
    expect(status.map(s => [s.online, s.reason])).toEqual([[true, undefined], [false, 'close']])
  })

  it('ThingPark\'s uplink gets the rule\'s downlink, signed at the LRC, then down/queued and down/sent', async () => {
    const dev = 'lorabridge/default/devices/0018b20000000b20'
    await until('down/sent for the rule\'s ThingPark downlink', () => messages().some(m => m.topic === `${dev}/down/sent` && m.payload.id !== 'hello'))
    const up = messages().find(m => m.topic === `${dev}/up`)?.payload
    expect(up).toMatchObject({ app: 'default', fPort: 10, hex: '010000', network: { type: 'thingpark', connection: 'quickstart', asId: 'TWA_100000001.1.AS' } })
    const device = jsonLines('thingpark').find(l => l.event === 'device')
    expect(device).toMatchObject({ devEui: '0018B20000000B20', fPort: 10 })
    expect(up).toMatchObject({ fCnt: device?.fCnt, devAddr: String(device?.devAddr).toLowerCase() })
    const down = messages().find(m => m.topic === `${dev}/down`)?.payload
    expect(down).toMatchObject({ fPort: 11, hex: 'ac010000' })
    for (const outcome of ['down/queued', 'down/sent']) expect(messages().filter(m => m.topic === `${dev}/${outcome}`).map(m => m.payload.id)).toContain(down?.id)
    expect(jsonLines('thingpark')).toEqual(expect.arrayContaining([
      { event: 'post', root: 'DevEUI_uplink', devEui: '0018B20000000B20', status: 204 },
      { event: 'downlink', devEui: '0018B20000000B20', fPort: 11, payload: 'ac010000', tokenValid: true, status: 200 },
      { event: 'post', root: 'DevEUI_downlink_Sent', devEui: '0018B20000000B20', status: 204 },
    ]))
  })

  it('the hand-made downlink "hello" reaches the LRC signed and ends in down/queued and down/sent', async () => {
    const dev = 'lorabridge/default/devices/0018b20000000b20'
    await until('down/sent with id hello', () => messages().some(m => m.topic === `${dev}/down/sent` && m.payload.id === 'hello'))
    expect(messages().some(m => m.topic === `${dev}/down/queued` && m.payload.id === 'hello')).toBe(true)
    expect(jsonLines('thingpark')).toContainEqual({ event: 'downlink', devEui: '0018B20000000B20', fPort: 2, payload: '01', tokenValid: true, status: 200 })
  })

  it('the admin logs in to the console', () => {
    expect(JSON.parse(out('login'))).toEqual({ user: 'admin' })
  })

  it('docs/operations.md documents every metric family of a real scrape', async () => {
    const res = await fetch(`http://127.0.0.1:${ports.get(8080)}/metrics`)
    const families = [...(await res.text()).matchAll(/^# TYPE (lorabridge_\w+) /gm)].map(m => m[1] as string)
      .filter(f => !f.startsWith('lorabridge_process_') && !f.startsWith('lorabridge_nodejs_'))
    expect(families.length).toBeGreaterThan(20)
    const ops = await readFile(join(ROOT, 'docs', 'operations.md'), 'utf8')
    expect(families.filter(f => !ops.includes(`\`${f}\``))).toEqual([])
  })

  it('Ctrl-C in terminals 3, 2 and 1 ends everything; the daemon logs "lorabridge stopped" and exits 0', async () => {
    const ended: Record<string, unknown> = {}
    for (const name of ['thingpark', 'subscriber', 'daemon']) {
      expect(w.background.find(x => x.name === name)?.child.pid).toBeDefined()
      ended[name] = await w.interrupt(name) // SIGINT, what the terminal sends its foreground group
    }
    expect(ended.daemon).toBe(0)
    expect(ended.thingpark).toBe(0)
    // Its stdout alone: merged with stderr, a chunk of stderr can land inside a log line (a
    // suspected cause of two failures seen under heavy parallel load; what it wrote is shown if so).
    const stdout = w.background.find(x => x.name === 'daemon')!.stdout()
    if (!/"msg":"stopping"[^\n]*\n(?:.*\n)*.*"msg":"lorabridge stopped"/.test(stdout)) console.log('daemon output:\n' + out('daemon').split('\n').map(l => l.slice(0, 300)).join('\n'))
    expect(stdout).toMatch(/"msg":"stopping"[^\n]*\n(?:.*\n)*.*"msg":"lorabridge stopped"/)
  })
})
