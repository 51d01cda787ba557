/**
 * The console's device page, downlinks sent from it, the filtered live tail and the phone layout,
 * in Debian's Chromium (playwright-core) against a real daemon with a simulated Conduit
 * (app-connect 1.1 over MQTT): the page shows the device's uplinks with decoded values and
 * signal, its chart, a downlink's outcomes as they arrive (queued, then acked by the device's
 * next uplink), the tail filtered by device, application and kind with one-line summaries, and at
 * 390 px no view scrolls sideways. Values that come from devices and codecs are shown as text.
 * Screenshots (desktop and 390 px) go to test-artifacts/console/.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect } from './helpers/mqtt.js'
import { writeUsers } from './security/console-helpers.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { TANK_DECODER } from './fixtures/farm-rules.js'

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/console/', import.meta.url))
const CHROMIUM = '/usr/bin/chromium'
const FARM_APPEUI = '16-ea-76-f6-ab-66-3d-80'
const GW = '029998e0-6156-cdd4-4523-264b523115c1'

/** The page's globals these tests read (the test project is compiled without the DOM's types). */
interface Box { x: number, y: number, width: number, height: number }
interface El { dataset: Record<string, string | undefined>, textContent: string | null, querySelector: (sel: string) => El | null, getBoundingClientRect: () => Box }
interface PageGlobals {
  __pwned?: number
  location: { hash: string }
  document: { documentElement: { scrollWidth: number }, querySelector: (sel: string) => El }
  getComputedStyle: (el: El) => { fontSize: string }
}
/** The page polls every 5 s and refreshes sooner on what the tail shows. */
const POLL = { timeout: 20_000, interval: 100 }
/** Decoded values a hostile codec or decoder could produce: the page must show them as text. */
const HOSTILE_NOTE = '<img src=x onerror="window.__pwned=1">'
const HOSTILE_DECODER = `
  - name: hostile
    when: { app: farm, fPort: 9 }
    decode: |
      { "note": ${JSON.stringify(HOSTILE_NOTE)}, "<b>key</b>": 1 }
`

describe.skipIf(!existsSync(CHROMIUM))('console device page, downlinks, filtered tail and phone layout in Chromium', () => {
  let t: TestDaemon
  let dir: string
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let base: string
  let sim: ConduitSimulator
  const problems: string[] = []
  const shot = async (p: Page, name: string, fullPage = true): Promise<void> => { await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage }) }

  const watch = (p: Page): void => {
    p.on('pageerror', err => { problems.push(`pageerror: ${err.message}`) })
    // Refused requests (400, 404 the test provokes; 401 after logout) are logged by Chromium as errors; nothing else may be.
    p.on('console', msg => { if (msg.type() === 'error' && !/status of 40[0-4]/.test(msg.text())) problems.push(`console: ${msg.text()}`) })
  }

  const login = async (p: Page): Promise<void> => {
    await p.goto(`${base}/`)
    await p.fill('#username', 'root')
    await p.fill('#password', 'admin-secret')
    await p.click('button[type=submit]')
    await p.locator('#user', { hasText: 'root' }).waitFor()
    await p.locator('#live.on').waitFor()
  }

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true })
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-console-device-'))
    await mkdir(join(dir, 'rules', 'codecs'), { recursive: true })
    await writeFile(join(dir, 'rules', 'decoders.yaml'), TANK_DECODER + HOSTILE_DECODER)
    await copyFile(new URL('./fixtures/codecs/tlv-sensor.js', import.meta.url), join(dir, 'rules', 'codecs', 'tlv-sensor.js'))
    await writeFile(join(dir, 'rules', 'sensors.yaml'), 'decoders:\n  - name: tlv\n    when: { fPort: 85 }\n    codec: codecs/tlv-sensor.js\n')
    await writeUsers(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: [FARM_APPEUI] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      rules: { dir: './rules' },
    }, { dir })
    base = `http://127.0.0.1:${t.port('http')}`
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    watch(page)
    sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', gwUuid: GW, devices: [0, 1].map(i => generatedDevice(60 + i, FARM_APPEUI)) })
  })
  afterAll(async () => {
    await sim?.stop().catch(() => {})
    await browser?.close()
    await t?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('shows a device page with its uplinks, decoded values, signal chart, and a downlink\'s outcomes as they arrive', async () => {
    await login(page)
    await sim.start()
    const dev = sim.devices[0]!.devEui.replace(/-/g, '')
    const other = sim.devices[1]!.devEui.replace(/-/g, '')
    for (const level of [40, 42, 45]) await sim.uplink(0, { port: 2, data: Buffer.from([level, 0x0e, 0x10]) })
    await sim.uplink(0, { port: 9, data: Buffer.from([1]) })
    await sim.uplink(1, { port: 2, data: Buffer.from([12, 0x0e, 0x10]) })

    // From the devices table to the device's page.
    await page.click('a[data-tab=devices]')
    await page.locator(`tr[data-deveui="${dev}"] a.device-link`).click()
    expect(new URL(page.url()).hash).toBe(`#/devices/farm/${dev}`)
    await expect.poll(() => page.locator('#device-uplinks tr').count(), POLL).toBe(4)
    expect(await page.locator('#device-eui').textContent()).toBe(dev)
    expect(await page.locator('#device-app').textContent()).toBe('farm')
    // Newest first: the hostile decoder's values, shown literally; then the tank levels.
    const rows = page.locator('#device-uplinks tr')
    expect(await rows.nth(0).locator('td.decoded-cell').textContent()).toBe(`note ${HOSTILE_NOTE} · <b>key</b> 1`)
    expect(await rows.nth(1).locator('td.decoded-cell').textContent()).toBe('level 45 · battery 3.6')
    expect(await rows.nth(3).locator('td.decoded-cell').textContent()).toBe('level 40 · battery 3.6')
    expect(await rows.nth(1).locator('td.payload').textContent()).toBe('2d0e10')
    expect((await rows.nth(1).locator('td').nth(2).textContent())?.trim()).toBe('2')
    expect(await rows.nth(1).locator('td.gateways').textContent()).toMatch(/^00-80-00-00-[0-9a-f-]+ -\d+ dBm \/ \d+(\.\d)? dB$/)
    // No markup from the codec became an element, and nothing it carried ran.
    expect(await page.locator('#device-uplinks img, #device-uplinks b').count()).toBe(0)
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__pwned)).toBeUndefined()
    // The signal chart: one RSSI and one SNR point per uplink, joined by a line each.
    await expect.poll(() => page.locator('#signal-svg circle.rssi').count(), POLL).toBe(4)
    expect(await page.locator('#signal-svg circle.snr').count()).toBe(4)
    expect(await page.locator('#signal-svg polyline').count()).toBe(2)
    await shot(page, '10-device')

    // A hex downlink: its id comes back at once, then its outcome (the Conduit takes it: queued).
    await page.fill('#dl-fport', '5')
    await page.fill('#dl-hex', '0a 0b')
    await page.click('#dl-send')
    await expect.poll(() => page.locator('#dl-result').textContent(), POLL).toMatch(/^Sent as console-[0-9a-f]{12};/)
    const firstId = await page.locator('#dl-result').getAttribute('data-id')
    const first = page.locator(`#device-downlinks tr[data-request="${firstId!}"]`)
    await expect.poll(() => first.getAttribute('data-state'), POLL).toBe('queued')
    expect(await first.locator('td').nth(2).textContent()).toBe('fPort 5 · hex 0a0b')
    expect(await first.locator('td.outcomes').textContent()).toBe('queued')
    // The Conduit got exactly that.
    expect(t.logs.find(l => l.msg === 'downlink sent from the console' && l.id === firstId)).toMatchObject({ user: 'root', app: 'farm', devEui: dev, fPort: 5, bytes: 2 })

    // Confirmed: queued, then acknowledged by the device's next uplink with the ACK bit.
    await page.fill('#dl-hex', '01')
    await page.check('#dl-confirmed')
    await page.click('#dl-send')
    await expect.poll(async () => await page.locator('#dl-result').getAttribute('data-id') !== firstId, POLL).toBe(true)
    const confirmedId = (await page.locator('#dl-result').getAttribute('data-id'))!
    const confirmed = page.locator(`#device-downlinks tr[data-request="${confirmedId}"]`)
    await expect.poll(() => confirmed.getAttribute('data-state'), POLL).toBe('queued')
    await expect.poll(() => page.locator('#device-pending').textContent(), POLL).toContain(`${confirmedId} · awaiting-ack`)
    await sim.uplink(0, { port: 2, data: Buffer.from([46, 0x0e, 0x10]), ack: true })
    await expect.poll(() => confirmed.getAttribute('data-state'), POLL).toBe('acked')
    expect(await confirmed.locator('td.outcomes').textContent()).toMatch(/^queuedacked \(fCnt \d+\)$/)
    expect(await confirmed.locator('td').nth(2).textContent()).toBe('fPort 5 · hex 01 · confirmed')

    // An object for the device's codec: encoded (fPort 85 from the codec) and queued.
    await page.uncheck('#dl-confirmed')
    await page.check('input[name=dl-mode][value=object]')
    await page.fill('#dl-fport', '')
    await page.fill('#dl-object', '{"interval": 1200}')
    await page.click('#dl-send')
    await expect.poll(async () => await page.locator('#dl-result').getAttribute('data-id') !== confirmedId, POLL).toBe(true)
    const objectId = (await page.locator('#dl-result').getAttribute('data-id'))!
    await expect.poll(() => page.locator(`#device-downlinks tr[data-request="${objectId}"]`).getAttribute('data-state'), POLL).toBe('queued')

    // An object the codec refuses, with markup in it: failed, the codec's reason, all of it as text.
    await page.fill('#dl-object', JSON.stringify({ '<b>x</b>': '<script>window.__pwned=2</script>' }))
    await page.click('#dl-send')
    await expect.poll(async () => await page.locator('#dl-result').getAttribute('data-id') !== objectId, POLL).toBe(true)
    const refusedId = (await page.locator('#dl-result').getAttribute('data-id'))!
    const refused = page.locator(`#device-downlinks tr[data-request="${refusedId}"]`)
    await expect.poll(() => refused.getAttribute('data-state'), POLL).toBe('failed')
    expect(await refused.locator('td.outcomes .badge').textContent()).toBe('failed: encode-failed')
    expect(await refused.locator('td').nth(2).textContent()).toBe('fPort codec · object {"<b>x</b>":"<script>window.__pwned=2</script>"}')
    expect(await page.locator('#device-downlinks b, #device-downlinks script').count()).toBe(0)

    // Bad input is refused by the daemon, with the field named.
    await page.check('input[name=dl-mode][value=hex]')
    await page.fill('#dl-fport', '5')
    await page.fill('#dl-hex', 'zz')
    await page.click('#dl-send')
    await expect.poll(() => page.locator('#dl-result').textContent(), POLL).toMatch(/^hex: hexadecimal bytes/)
    await page.fill('#dl-fport', '300')
    await page.fill('#dl-hex', '01')
    await page.click('#dl-send')
    await expect.poll(() => page.locator('#dl-result').textContent(), POLL).toMatch(/^fPort: an application port/)
    await shot(page, '11-device-downlinks')

    // A device of another application has no page there.
    await page.goto(`${base}/#/devices/otherapp/${dev}`)
    await expect.poll(() => page.locator('#device-error').textContent(), POLL).toBe(`No device ${dev} heard in application otherapp within the history window.`)
    expect(await page.locator('#device-uplinks tr').count()).toBe(0)
    await page.locator('#live.on').waitFor()
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__pwned)).toBeUndefined()
    expect(other).not.toBe(dev)
  })

  it('filters the live tail by device, application and kind, with one-line summaries of outcomes', async () => {
    const dev = sim.devices[0]!.devEui.replace(/-/g, '')
    const other = sim.devices[1]!.devEui.replace(/-/g, '')
    await page.click('a[data-tab=tail]')
    // Traffic while the tail is open: uplinks of both devices, a downlink with its outcome.
    await sim.uplink(1, { port: 2, data: Buffer.from([13, 0x0e, 0x10]) })
    await sim.uplink(0, { port: 2, data: Buffer.from([47, 0x0e, 0x10]) })
    const res = await page.evaluate(async (url) => {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fPort: 7, hex: 'beef' }) })
      return await r.json() as { id: string }
    }, `/console/api/devices/farm/${dev}/down`)
    await page.locator('#tail li[data-kind="down/queued"]', { hasText: res.id }).waitFor()
    await sim.uplink(1, { port: 2, data: Buffer.from([14, 0x0e, 0x10]) })
    await page.locator(`#tail li[data-kind="up"][data-deveui="${other}"]`).nth(1).waitFor()

    const visible = (): Promise<Array<{ kind: string, deveui: string, app: string, sum: string }>> => page.locator('#tail li:not([hidden])').evaluateAll(els => (els as unknown as El[]).map(e => ({
      kind: e.dataset.kind ?? '', deveui: e.dataset.deveui ?? '', app: e.dataset.app ?? '', sum: e.querySelector('.sum')?.textContent ?? '',
    })))

    // One device, uplinks only.
    await page.fill('#tail-device', other.toUpperCase().match(/../g)!.join('-'))
    await page.selectOption('#tail-kind', 'up')
    const ups = await visible()
    expect(ups.length).toBeGreaterThanOrEqual(2)
    for (const l of ups) expect(l).toMatchObject({ kind: 'up', deveui: other, app: 'farm' })
    expect(ups[0]!.sum).toMatch(new RegExp(`^devEui ${other} · fPort 2 · fCnt \\d+ · RSSI -\\d+ dBm SNR [\\d.]+ dB · decoded \\{"level":14,"battery":3.6\\}$`))
    await shot(page, '12-tail-filtered-up')

    // The other device's downlink outcomes, in the application's list, as summaries.
    await page.fill('#tail-device', dev)
    await page.selectOption('#tail-app', 'farm')
    await page.selectOption('#tail-kind', 'down/*')
    const outcomes = await visible()
    expect(outcomes.length).toBeGreaterThanOrEqual(1)
    for (const l of outcomes) {
      expect(l.kind).toMatch(/^down\//)
      expect(l.deveui).toBe(dev)
      expect(l.sum.startsWith('{')).toBe(false)
    }
    expect(outcomes.map(l => l.sum)).toContain(`queued · id ${res.id}`)
    // The request itself, echoed on …/down.
    await page.selectOption('#tail-kind', 'down')
    expect((await visible()).map(l => l.sum)).toContain(`request · id ${res.id} · fPort 7 · hex beef`)
    // The raw JSON is a click away.
    await page.selectOption('#tail-kind', 'down/queued')
    const line = page.locator('#tail li:not([hidden])', { hasText: res.id }).first()
    await line.click()
    expect(JSON.parse((await line.locator('pre').textContent())!)).toMatchObject({ id: res.id, app: 'farm', devEui: dev })
    await shot(page, '13-tail-filtered-outcomes')

    // A tail line's DevEUI opens the device's page.
    await line.locator('a.device-link').click()
    expect(new URL(page.url()).hash).toBe(`#/devices/farm/${dev}`)
    await page.locator(`#device-downlinks tr[data-request="${res.id}"]`).waitFor()

    // Markup in a topic and in an outcome's fields (an admin client may publish anything) is shown as text.
    await page.click('a[data-tab=tail]')
    await page.fill('#tail-device', '')
    await page.selectOption('#tail-app', '')
    await page.selectOption('#tail-kind', '')
    const hostileApp = '<img src=x onerror="window.__pwned=3">'
    const client = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    await client.publishAsync(`lorabridge/${hostileApp}/devices/0011223344556677/down/failed`, JSON.stringify({ id: '<script>window.__pwned=4</script>', reason: '<b>bad</b>', detail: '<img src=y onerror="window.__pwned=5">' }), { qos: 1 })
    await client.endAsync()
    const hostile = page.locator('#tail li[data-kind="down/failed"]', { hasText: '<b>bad</b>' })
    await hostile.waitFor()
    expect(await hostile.getAttribute('data-app')).toBe(hostileApp)
    expect(await hostile.locator('.topic').textContent()).toBe(`lorabridge/${hostileApp}/devices/0011223344556677/down/failed`)
    expect(await hostile.locator('.sum').textContent()).toBe('failed: <b>bad</b> · id <script>window.__pwned=4</script> · <img src=y onerror="window.__pwned=5">')
    expect(await page.locator('#tail img, #tail b, #tail script, #recent img, #tail-app img').count()).toBe(0)
    expect(await page.locator('#tail-app option', { hasText: hostileApp }).count()).toBe(1)
    // Its device link leads to a page that refuses the name, as text.
    await hostile.locator('a.device-link').click()
    await expect.poll(() => page.locator('#device-error').textContent(), POLL).toBe('LB_ERR_CONSOLE_REQUEST: an application name: letters, digits, _ and -, at most 64')
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__pwned)).toBeUndefined()
    expect(problems).toEqual([])
  })

  it('at 390 px wide: a readable top bar and no view wider than the screen', async () => {
    const dev = sim.devices[0]!.devEui.replace(/-/g, '')
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
    const p = await phone.newPage()
    watch(p)
    try {
      await login(p)
      for (const view of ['gateways', 'devices', `/devices/farm/${dev}`, 'tail', 'rules', 'try']) {
        await p.evaluate(hash => { (globalThis as unknown as PageGlobals).location.hash = hash }, view)
        const name = view.startsWith('/devices/') ? 'device' : view
        await p.locator(`[data-panel="${name}"]`).first().waitFor()
        if (name === 'device') await p.locator('#device-uplinks tr').first().waitFor()
        if (name === 'devices') await p.locator(`tr[data-deveui="${dev}"]`).waitFor()
        if (name === 'tail') await p.locator('#tail li').first().waitFor()
        // The page never scrolls sideways; wide tables scroll inside their own box.
        expect(await p.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth), name).toBeLessThanOrEqual(390)
        // The top bar: brand, user, log-out button and the active tab are on screen, not on top of each other, in a readable size.
        const bar = await p.evaluate(() => {
          const g = globalThis as unknown as PageGlobals
          const box = (sel: string): { x: number, y: number, w: number, h: number, size: number, visible: boolean } => {
            const el = g.document.querySelector(sel)
            const r = el.getBoundingClientRect()
            return { x: r.x, y: r.y, w: r.width, h: r.height, size: parseFloat(g.getComputedStyle(el).fontSize), visible: r.width > 0 && r.height > 0 }
          }
          return { brand: box('.brand'), user: box('#user'), logout: box('#logout'), tab: box('.tabs a.active') }
        })
        for (const [part, b] of Object.entries(bar)) {
          expect(b.visible, `${name}: ${part}`).toBe(true)
          expect(b.x, `${name}: ${part}`).toBeGreaterThanOrEqual(0)
          expect(b.x + b.w, `${name}: ${part}`).toBeLessThanOrEqual(390)
          expect(b.size, `${name}: ${part}`).toBeGreaterThanOrEqual(12)
        }
        const overlap = (a: typeof bar.brand, b: typeof bar.brand): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
        expect(overlap(bar.brand, bar.user) || overlap(bar.brand, bar.logout) || overlap(bar.user, bar.logout) || overlap(bar.tab, bar.brand), name).toBe(false)
        await shot(p, `20-phone-${name}`, false)
      }
      // Still usable: a downlink sent from the phone.
      await p.evaluate(hash => { (globalThis as unknown as PageGlobals).location.hash = hash }, `/devices/farm/${dev}`)
      await p.locator('#device-uplinks tr').first().waitFor()
      await p.fill('#dl-fport', '3')
      await p.fill('#dl-hex', '02')
      await p.click('#dl-send')
      await expect.poll(() => p.locator('#dl-result').textContent(), POLL).toMatch(/^Sent as console-/)
      const id = (await p.locator('#dl-result').getAttribute('data-id'))!
      await expect.poll(() => p.locator(`#device-downlinks tr[data-request="${id}"]`).getAttribute('data-state'), POLL).toBe('queued')
      expect(await p.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    } finally {
      await phone.close()
    }
    expect(problems).toEqual([])
  })
})
