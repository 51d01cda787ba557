/**
 * Editing a rule file in the console (docs/console.md, "Editing rules"), in Debian's Chromium
 * driven by playwright-core, against a real daemon with `http.console.ruleEditing: true` and a
 * simulated Conduit over MQTT: open a rule file, type an error (its line:column shows, Save is
 * disabled), fix it, dry-run it on the device's last uplink, save it — the daemon reloads it (its
 * retained status says so) and the device's next uplink gets the new rule's downlink. Screenshots
 * (desktop and 390 px) go to test-artifacts/console/.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { connect, until } from './helpers/mqtt.js'
import { writeUsers } from './security/console-helpers.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { TANK_DECODER } from './fixtures/farm-rules.js'

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/console/', import.meta.url))
const CHROMIUM = '/usr/bin/chromium'
const FARM_APPEUI = '16-ea-76-f6-ab-66-3d-80'
const GW_UUID = '029998e0-6156-cdd4-4523-264b523115c1'

const VALVE = `rules:
  - name: close-valve
    on: up
    when: { app: farm, fPort: 2 }
    if: decoded.level > 80
    downlink: |
      { "fPort": 3, "hex": $hex([1, decoded.level]) }
`
// The operator's change: a new command byte (02) and a lower threshold.
const FIXED = VALVE.replace('decoded.level > 80', 'decoded.level > 50').replace('$hex([1, decoded.level])', '$hex([2, decoded.level])')
// An unknown event kind, then a JSONata syntax error (a `>` too many).
const UNKNOWN_KIND = FIXED.replace('on: up', 'on: uplink')
const SYNTAX_ERROR = FIXED.replace('decoded.level > 50', 'decoded.level >> 50')
const HOSTILE = '<img src=x onerror=alert(3)>.yaml'

describe.skipIf(!existsSync(CHROMIUM))('console rule editor in Chromium', () => {
  let t: TestDaemon
  let dir: string
  let browser: Browser
  let page: Page
  let sim: ConduitSimulator | undefined
  const problems: string[] = []
  const shot = async (name: string): Promise<void> => {
    // From the top: a full-page screenshot of a scrolled page draws the sticky top bar mid-page.
    await page.evaluate('window.scrollTo(0, 0)')
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })
  }

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true })
    dir = await mkdtemp(join(tmpdir(), 'lorabridge-rule-editor-'))
    await mkdir(join(dir, 'rules'))
    await writeFile(join(dir, 'rules', 'decoders.yaml'), TANK_DECODER)
    await writeFile(join(dir, 'rules', 'valve.yaml'), VALVE)
    // A file name that is markup: listed (not editable), shown as text, never run.
    await writeFile(join(dir, 'rules', HOSTILE), 'rules: []\n')
    await writeUsers(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
    t = await startTestDaemon({
      applications: [{ name: 'farm', match: { appEui: [FARM_APPEUI] } }],
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }], console: { ruleEditing: true } },
      rules: { dir: './rules' },
    }, { dir })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
    // Script errors, CSP violations and dialogs fail the test: the page must run as served, and
    // nothing typed into the editor may run.
    page.on('pageerror', err => { problems.push(`pageerror: ${err.message}`) })
    page.on('console', msg => { if (msg.type() === 'error' && !/\b(401|422)\b/.test(msg.text())) problems.push(`console: ${msg.text()}`) })
    page.on('dialog', d => { problems.push(`dialog: ${d.message()}`); void d.dismiss() })
  })
  afterAll(async () => {
    await sim?.stop()
    await browser?.close()
    await t?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('open a rule file, type an error, fix it, dry-run it on the last uplink, save it: the daemon runs it', async () => {
    // Real traffic first: a Conduit over MQTT, and a tank at 60 % (not enough for the rule as it is).
    sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', gwUuid: GW_UUID, devices: [generatedDevice(40, FARM_APPEUI)] })
    await sim.start()
    const devEui = sim.devices[0]!.devEui.replace(/-/g, '')
    await sim.uplink(0, { port: 2, data: Buffer.from([60, 0x0e, 0x10]) })
    await until(() => t.daemon.console.ruleEditor.uplinks().some(d => d.devEui === devEui), 'the uplink to reach the console', 10_000)
    expect(sim.downlinks).toEqual([])

    const base = `http://127.0.0.1:${t.port('http')}`
    await page.goto(`${base}/`)
    await page.fill('#username', 'root')
    await page.fill('#password', 'admin-secret')
    await page.click('button[type=submit]')
    await page.locator('#user', { hasText: 'root' }).waitFor()
    await page.click('a[data-tab=rules]')

    // The editor opens the first rule file; pick valve.yaml. It compiles as it is.
    const editor = page.locator('#re-text')
    await page.locator('#re-file option[value="valve.yaml"]').waitFor({ state: 'attached' })
    await page.selectOption('#re-file', 'valve.yaml')
    await expect.poll(() => editor.inputValue()).toBe(VALVE)
    await page.locator('#re-compile .re-status.ok').waitFor()
    expect(await page.locator('#re-save').isDisabled()).toBe(true) // nothing changed yet
    const hostile = page.locator('#re-file option', { hasText: '<img' })
    expect(await hostile.isDisabled()).toBe(true)
    expect(await hostile.textContent()).toContain(HOSTILE)

    // An unknown event kind: the error shows where it is, the line is marked, Save stays off.
    await editor.fill(UNKNOWN_KIND)
    const firstError = page.locator('#re-errors li').first()
    await firstError.waitFor()
    expect(await firstError.locator('.where').textContent()).toMatch(/^valve\.yaml:3:\d+$/)
    expect(await firstError.textContent()).toContain('LB_ERR_RULE_FILE')
    await page.locator('#re-gutter div.bad', { hasText: /^3$/ }).waitFor()
    expect(await page.locator('#re-save').isDisabled()).toBe(true)
    await shot('30-rule-editor-error')

    // A JSONata syntax error: its line and column inside the expression.
    await editor.fill(SYNTAX_ERROR)
    await page.locator('#re-errors li', { hasText: 'LB_ERR_RULE_COMPILE' }).waitFor()
    expect(await page.locator('#re-errors li .where').first().textContent()).toMatch(/^valve\.yaml:5:\d+$/)
    expect(await page.locator('#re-save').isDisabled()).toBe(true)

    // Fixed (and with a comment that must stay text): the errors clear, Save is on.
    const fixed = FIXED + '# <img src=x onerror="alert(1)"> </textarea><script>alert(2)</script>\n'
    await editor.fill(fixed)
    await page.locator('#re-compile .re-status.ok', { hasText: 'close-valve' }).waitFor()
    expect(await page.locator('#re-errors').count()).toBe(0)
    expect(await page.locator('#re-gutter div.bad').count()).toBe(0)
    await expect.poll(() => page.locator('#re-save').isDisabled()).toBe(false)

    // Dry run on the device's last uplink (60 %): the draft sends 02 3c; nothing is sent for real.
    await page.locator(`#re-device option[value="${devEui}"]`).waitFor({ state: 'attached' })
    await page.selectOption('#re-device', devEui)
    await page.click('#re-run')
    const downlinks = page.locator('#re-try-downlinks')
    await downlinks.waitFor()
    expect(await downlinks.textContent()).toContain(devEui)
    expect(await downlinks.textContent()).toContain('023c')
    expect(await page.locator('#re-try-result').textContent()).toContain('Decoded by tank')
    expect(sim.downlinks).toEqual([])
    expect(await readFile(join(dir, 'rules', 'valve.yaml'), 'utf8')).toBe(VALVE)
    await shot('31-rule-editor-dry-run')

    // Save: written, reloaded by the daemon (its retained status over MQTT says so), logged.
    const savedAt = Date.now()
    await page.click('#re-save')
    await page.locator('#re-reloaded', { hasText: 'close-valve' }).waitFor()
    expect(await page.locator('#re-outcome').textContent()).toContain('Saved valve.yaml')
    expect(await readFile(join(dir, 'rules', 'valve.yaml'), 'utf8')).toBe(fixed)
    expect((await readdir(join(dir, 'rules'))).sort()).toEqual([HOSTILE, 'decoders.yaml', 'valve.yaml'])
    const watcher = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`)
    try {
      const status = new Promise<Record<string, unknown>>(resolve => {
        watcher.on('message', (_topic, payload) => {
          const s = JSON.parse(payload.toString()) as { files: Array<{ file: string, ok: boolean, loadedAt: string, rules: string[] }> }
          const f = s.files.find(x => x.file === 'valve.yaml')
          if (f?.ok === true && Date.parse(f.loadedAt) >= savedAt) resolve(f)
        })
      })
      await watcher.subscribeAsync('lorabridge/_bridge/rules', { qos: 1 })
      expect(await status).toMatchObject({ file: 'valve.yaml', ok: true, rules: ['close-valve'] })
    } finally {
      await watcher.endAsync()
    }
    expect(t.logs.find(l => l.msg === 'rule file saved from the console')).toMatchObject({ user: 'root', file: 'valve.yaml' })
    await expect.poll(() => page.locator('#re-save').isDisabled()).toBe(true) // saved: no change left
    await shot('32-rule-editor-saved')

    // The device's next uplink (55 %) gets the new rule's downlink, 02 37, at the Conduit.
    await sim.uplink(0, { port: 2, data: Buffer.from([55, 0x0e, 0x10]) })
    const down = await until(() => sim!.downlinks.find(d => d.devEui.replace(/-/g, '').toLowerCase() === devEui.toLowerCase()), 'the new rule\'s downlink at the Conduit', 15_000)
    expect(down.data.toString('hex')).toBe('0237')

    // At phone width the editor stays usable (screenshot for review).
    await page.setViewportSize({ width: 390, height: 844 })
    await page.locator('#rule-editor').scrollIntoViewIfNeeded()
    const box = await page.locator('#re-text').boundingBox()
    expect(box?.width).toBeGreaterThan(200)
    // Nothing of the editor sticks out of it (long lines scroll inside the text area and the result).
    const fit = await page.evaluate(`(() => {
      const el = document.querySelector('#rule-editor')
      const right = el.getBoundingClientRect().right
      return { right, overflow: el.scrollWidth - el.clientWidth, widest: Math.max(...[...el.querySelectorAll('.re-toolbar, .re-editor, .re-try-input, .re-try-result, #re-device')].map(c => c.getBoundingClientRect().right)) }
    })()`) as { right: number, overflow: number, widest: number }
    expect(fit.right).toBeLessThanOrEqual(390)
    expect(fit.overflow).toBeLessThanOrEqual(1)
    expect(fit.widest).toBeLessThanOrEqual(fit.right + 1)
    await page.locator('#re-text').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(ARTIFACTS, '33-rule-editor-390px.png') })

    expect(problems).toEqual([])
  })

  it('with editing off (the default), shows the rule files read-only', async () => {
    const offDir = await mkdtemp(join(tmpdir(), 'lorabridge-rule-editor-off-'))
    await mkdir(join(offDir, 'rules'))
    await writeFile(join(offDir, 'rules', 'valve.yaml'), VALVE)
    await writeUsers(join(offDir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
    const off = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] }, rules: { dir: './rules' } }, { dir: offDir })
    const offPage = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
    offPage.on('pageerror', err => { problems.push(`pageerror: ${err.message}`) })
    try {
      await offPage.goto(`http://127.0.0.1:${off.port('http')}/`)
      await offPage.fill('#username', 'root')
      await offPage.fill('#password', 'admin-secret')
      await offPage.click('button[type=submit]')
      await offPage.locator('#user', { hasText: 'root' }).waitFor()
      await offPage.click('a[data-tab=rules]')
      await offPage.locator('#re-off').waitFor()
      expect(await offPage.locator('#re-off').textContent()).toContain('http.console.ruleEditing: true')
      await expect.poll(() => offPage.locator('#re-text').inputValue()).toBe(VALVE)
      expect(await offPage.locator('#re-text').getAttribute('readonly')).not.toBeNull()
      expect(await offPage.locator('#re-save').isVisible()).toBe(false)
      expect(await offPage.locator('#re-run').isVisible()).toBe(false)
      expect(await offPage.locator('#re-file option', { hasText: 'New file' }).count()).toBe(0)
      await offPage.screenshot({ path: join(ARTIFACTS, '34-rule-editor-read-only.png'), fullPage: true })
      expect(await readFile(join(offDir, 'rules', 'valve.yaml'), 'utf8')).toBe(VALVE)
      expect(problems).toEqual([])
    } finally {
      await offPage.close()
      await off.stop()
      await rm(offDir, { recursive: true, force: true })
    }
  })
})
