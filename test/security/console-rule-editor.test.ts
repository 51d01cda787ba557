/**
 * The console's rule editor (docs/console.md, "Editing rules") under attack, over raw HTTP against
 * real daemons: editing off, no session, a demoted admin, cross-origin and non-JSON writes, every
 * way of naming a file outside rules.dir (traversal, encoded, absolute, NUL, a symbolic link out,
 * codecs and other extensions), oversized bodies and drafts, drafts that do not compile, and
 * concurrent edits — each refused with a stable code, with nothing written anywhere.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createHash } from 'node:crypto'
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { until } from '../helpers/mqtt.js'
import { putUsers } from '../helpers/users.js'
import { consoleLogin, httpRequest, writeUsers, type RawResponse } from './console-helpers.js'
import { runCli } from '../helpers/cli.js'

const VALVE = `rules:
  - name: close-valve
    on: up
    when: { fPort: 2 }
    downlink: |
      { "fPort": 3, "hex": "01" }
`
const OUTSIDE = 'rules:\n  - name: outside\n    downlink: \'{ "fPort": 1, "hex": "00" }\'\n'
const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')

interface Answer { status: number, json: Record<string, unknown> }

async function setup (ruleEditing: boolean | undefined): Promise<{ t: TestDaemon, dir: string, rules: string, outside: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lorabridge-sec-editor-'))
  const rules = join(dir, 'rules')
  const outside = join(dir, 'outside')
  await mkdir(join(rules, 'codecs'), { recursive: true })
  await mkdir(outside)
  await writeFile(join(rules, 'valve.yaml'), VALVE)
  await writeFile(join(rules, 'codecs', 'sensor.js'), 'function decodeUplink (input) { return { data: { b: input.bytes[0] } } }\n')
  await writeFile(join(outside, 'target.yaml'), OUTSIDE)
  await writeFile(join(outside, 'evil.js'), 'function decodeUplink () { return { data: {} } }\n')
  // A rule file that is a link to a file elsewhere: never opened nor replaced by the console.
  await symlink(join(outside, 'target.yaml'), join(rules, 'linked.yaml'))
  await writeUsers(join(dir, 'data'), [
    { name: 'root', role: 'admin', password: 'admin-secret' },
    { name: 'second', role: 'admin', password: 'second-secret' },
    { name: 'viewer', role: 'consumer', password: 'viewer-secret' },
  ])
  const t = await startTestDaemon({
    mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
    http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }], ...(ruleEditing !== undefined ? { console: { ruleEditing } } : {}) },
    rules: { dir: './rules' },
  }, { dir })
  return { t, dir, rules, outside }
}

/** Every file under `dir` with its content, to show that nothing was written. */
async function snapshot (dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(e.parentPath, e.name)
    const st = await lstat(path)
    out[path] = st.isSymbolicLink() ? 'link' : st.isFile() ? sha256(await readFile(path)) : 'dir'
  }
  return out
}

describe('console rule editor: off by default', () => {
  let t: TestDaemon
  let dir: string
  let rules: string
  let cookie: string

  beforeAll(async () => {
    ({ t, dir, rules } = await setup(undefined))
    const login = await consoleLogin(t.port('http'), 'root', 'admin-secret')
    cookie = String(login.headers['set-cookie']).split(';')[0]!
  })
  afterAll(async () => {
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('shows the files read-only and refuses to compile, dry-run or save them (403 LB_ERR_RULE_EDIT_OFF)', async () => {
    const port = t.port('http')
    const before = await snapshot(dir)
    const list = await httpRequest({ port, path: '/console/api/rule-editor', headers: { cookie } })
    expect(list.status).toBe(200)
    expect(JSON.parse(list.body)).toMatchObject({ editing: false, files: expect.arrayContaining([{ file: 'valve.yaml', size: VALVE.length, editable: true }]) as unknown })
    const read = await httpRequest({ port, path: '/console/api/rule-editor/files/valve.yaml', headers: { cookie } })
    expect(JSON.parse(read.body)).toMatchObject({ file: 'valve.yaml', content: VALVE, etag: sha256(VALVE), editing: false })

    const post = (path: string, body: unknown): Promise<RawResponse> => httpRequest({ port, method: 'POST', path, headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    for (const [path, body] of [
      ['/console/api/rule-editor/save', { file: 'valve.yaml', content: VALVE.replace('"01"', '"02"'), etag: sha256(VALVE) }],
      ['/console/api/rule-editor/save', { file: 'new.yaml', content: VALVE, etag: null }],
      ['/console/api/rule-editor/compile', { file: 'valve.yaml', content: VALVE }],
      ['/console/api/rule-editor/try', { file: 'valve.yaml', content: VALVE, event: { app: 'a', devEui: '0011223344556677', fPort: 2 } }],
    ] as const) {
      const res = await post(path, body)
      expect(res.status, path).toBe(403)
      expect(JSON.parse(res.body), path).toMatchObject({ error: 'LB_ERR_RULE_EDIT_OFF' })
    }
    expect((await httpRequest({ port, path: '/console/api/rule-editor/uplinks', headers: { cookie } })).status).toBe(403)
    expect(t.logs.withCode('LB_ERR_RULE_EDIT_OFF').length).toBe(5)
    expect(await snapshot(dir)).toEqual(before)
    expect(await readFile(join(rules, 'valve.yaml'), 'utf8')).toBe(VALVE)
  })
})

describe('console rule editor: attacks on a daemon with editing on', () => {
  let t: TestDaemon
  let dir: string
  let rules: string
  let outside: string
  let port: number
  let cookie: string

  const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawResponse> =>
    httpRequest({ port, method, path, headers: { cookie, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) })
  const answer = async (res: Promise<RawResponse>): Promise<Answer> => {
    const r = await res
    return { status: r.status, json: r.body === '' ? {} : JSON.parse(r.body) as Record<string, unknown> }
  }
  const save = (file: string, content: string, etag: string | null, headers: Record<string, string> = {}): Promise<Answer> =>
    answer(request('POST', '/console/api/rule-editor/save', { file, content, etag }, headers))

  beforeAll(async () => {
    ({ t, dir, rules, outside } = await setup(true))
    port = t.port('http')
    const login = await consoleLogin(port, 'root', 'admin-secret')
    expect(login.status).toBe(200)
    cookie = String(login.headers['set-cookie']).split(';')[0]!
  })
  afterAll(async () => {
    await t?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('without a session, with a forged cookie, or as a non-admin: 401 on every route, nothing written', async () => {
    const before = await snapshot(dir)
    const routes: Array<[string, string, unknown]> = [
      ['GET', '/console/api/rule-editor', undefined],
      ['GET', '/console/api/rule-editor/files/valve.yaml', undefined],
      ['GET', '/console/api/rule-editor/uplinks', undefined],
      ['POST', '/console/api/rule-editor/compile', { file: 'valve.yaml', content: VALVE }],
      ['POST', '/console/api/rule-editor/try', { file: 'valve.yaml', content: VALVE, event: {} }],
      ['POST', '/console/api/rule-editor/save', { file: 'valve.yaml', content: 'rules: []\n', etag: sha256(VALVE) }],
      ['POST', '/console/api/rule-editor/save', { file: 'planted.yaml', content: 'rules: []\n', etag: null }],
    ]
    // A consumer cannot get a console session at all.
    expect((await consoleLogin(port, 'viewer', 'viewer-secret')).status).toBe(401)
    for (const c of [undefined, 'lorabridge_console=' + 'A'.repeat(43)]) {
      for (const [method, path, body] of routes) {
        const res = await answer(httpRequest({ port, method, path, headers: { ...(c !== undefined ? { cookie: c } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }))
        expect(res.status, `${method} ${path}`).toBe(401)
        expect(res.json).toMatchObject({ error: 'LB_ERR_CONSOLE_SESSION' })
      }
    }
    expect(await snapshot(dir)).toEqual(before)
  })

  it('an admin demoted in the users file loses the editor at once', async () => {
    const login = await consoleLogin(port, 'second', 'second-secret')
    const second = String(login.headers['set-cookie']).split(';')[0]!
    expect((await request('GET', '/console/api/rule-editor', undefined, { cookie: second })).status).toBe(200)
    await putUsers(t, { second: { role: 'consumer', password: 'second-secret', apps: ['*'] } })
    await until(async () => (await request('GET', '/console/api/rule-editor', undefined, { cookie: second })).status === 401, 'the demoted session to end', 10_000)
    const res = await save('valve.yaml', 'rules: []\n', sha256(VALVE), { cookie: second })
    expect(res.status).toBe(401)
    expect(await readFile(join(rules, 'valve.yaml'), 'utf8')).toBe(VALVE)
  })

  it('refuses writes from another origin (403) and bodies that are not JSON (415)', async () => {
    const before = await snapshot(dir)
    const body = { file: 'valve.yaml', content: 'rules: []\n', etag: sha256(VALVE) }
    for (const origin of ['https://evil.example', 'http://127.0.0.1.evil.example', 'null']) {
      const res = await answer(request('POST', '/console/api/rule-editor/save', body, { origin }))
      expect(res.status, origin).toBe(403)
      expect(res.json).toMatchObject({ error: 'LB_ERR_CONSOLE_ORIGIN' })
    }
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await answer(request('POST', '/console/api/rule-editor/save', JSON.stringify(body), { 'content-type': type }))
      expect(res.status, type).toBe(415)
      expect(res.json).toMatchObject({ error: 'LB_ERR_CONSOLE_REQUEST' })
    }
    // A rebound host name gets nothing (the console's Host check applies to the editor too).
    expect((await request('POST', '/console/api/rule-editor/save', body, { host: 'evil.example' })).status).toBe(421)
    expect(await snapshot(dir)).toEqual(before)
  })

  it('never reads or writes outside rules.dir: traversal, encodings, absolute paths, NUL, codecs and other extensions', async () => {
    const before = await snapshot(dir)
    const absolute = join(outside, 'abs.yaml')
    const names = ['../x.yaml', '../outside/target.yaml', 'a/../../b.yaml', '..\\x.yaml', absolute, '/etc/passwd', 'x.yaml\u0000.js', 'valve.yaml\u0000',
      'codecs/sensor.js', 'sensor.js', 'x.js', 'x.mjs', 'x.json', 'x.yaml.bak', '.hidden.yaml', '..yaml', '', 'a'.repeat(200) + '.yaml', 'valve.yaml/']
    for (const file of names) {
      for (const etag of [null, sha256(VALVE)]) {
        const res = await save(file, 'rules: []\n', etag)
        expect(res.status, JSON.stringify(file)).toBe(400)
        expect(res.json, JSON.stringify(file)).toMatchObject({ error: 'LB_ERR_RULE_EDIT_PATH' })
      }
      const compiled = await answer(request('POST', '/console/api/rule-editor/compile', { file, content: VALVE }))
      expect(compiled.status, JSON.stringify(file)).toBe(400)
    }
    // New files need a lowercase name; an existing one may be opened with its own.
    expect((await save('Upper.yaml', VALVE, null)).json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_PATH' })
    // The name as a path parameter, raw and percent-encoded: 400 or no route (404), never a file.
    for (const path of ['%2e%2e%2fx.yaml', '..%2Fvalve.yaml', '%2e%2e%2foutside%2ftarget.yaml', '..%2F..%2F..%2Fetc%2Fpasswd', '%2Fetc%2Fpasswd', 'valve.yaml%00.js', 'codecs%2Fsensor.js', '..%5Cx.yaml', '%2E%2E', '..', '.%2e/outside/target.yaml']) {
      const res = await request('GET', `/console/api/rule-editor/files/${path}`)
      expect([400, 404], path).toContain(res.status)
      expect(res.body, path).not.toContain('name: outside')
      expect(res.body, path).not.toContain('root:')
      if (res.status === 400) expect(JSON.parse(res.body), path).toMatchObject({ error: 'LB_ERR_RULE_EDIT_PATH' })
    }
    // A draft may not name a codec outside the directory either (the daemon's own confinement).
    const codecOut = await answer(request('POST', '/console/api/rule-editor/save', { file: 'codec-out.yaml', content: 'decoders:\n  - name: out\n    codec: ../outside/evil.js\n', etag: null }))
    expect(codecOut.status).toBe(422)
    expect(codecOut.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_INVALID', errors: [{ code: 'LB_ERR_CODEC_LOAD', line: 3, text: expect.stringContaining('codec-out.yaml:3:') as unknown }] })
    expect(await snapshot(dir)).toEqual(before)
    expect(existsSync(absolute)).toBe(false)
    expect(existsSync(join(dir, 'x.yaml'))).toBe(false)
    expect(existsSync(join(dir, 'b.yaml'))).toBe(false)
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
  })

  it('neither opens nor replaces a symbolic link that points out of rules.dir', async () => {
    const before = await snapshot(dir)
    const list = JSON.parse((await request('GET', '/console/api/rule-editor')).body) as { files: Array<{ file: string, editable: boolean, reason?: string }> }
    expect(list.files.find(f => f.file === 'linked.yaml')).toMatchObject({ editable: false, reason: expect.stringContaining('symbolic link') as unknown })
    const read = await answer(request('GET', '/console/api/rule-editor/files/linked.yaml'))
    expect(read.status).toBe(403)
    expect(read.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_PATH' })
    expect(JSON.stringify(read.json)).not.toContain('outside:')
    // With the right version of the target, too: still no.
    const res = await save('linked.yaml', 'rules: []\n', sha256(OUTSIDE))
    expect(res.status).toBe(403)
    expect(res.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_PATH' })
    expect(await readFile(join(outside, 'target.yaml'), 'utf8')).toBe(OUTSIDE)
    expect((await lstat(join(rules, 'linked.yaml'))).isSymbolicLink()).toBe(true)
    expect(await snapshot(dir)).toEqual(before)
  })

  it('refuses oversized bodies and drafts (413) and malformed ones (400)', async () => {
    const before = await snapshot(dir)
    const huge = await answer(request('POST', '/console/api/rule-editor/save', { file: 'valve.yaml', content: '#'.repeat(1_200_000), etag: sha256(VALVE) }))
    expect(huge.status).toBe(413)
    expect(huge.json).toMatchObject({ error: 'LB_ERR_CONSOLE_TOO_LARGE' })
    const big = await answer(request('POST', '/console/api/rule-editor/save', { file: 'valve.yaml', content: VALVE + '#'.repeat(300_000) + '\n', etag: sha256(VALVE) }))
    expect(big.status).toBe(413)
    expect(big.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_TOO_LARGE' })
    for (const [body, code] of [
      ['{"file": "valve.yaml", "content": ', 'LB_ERR_CONSOLE_REQUEST'],
      ['["valve.yaml"]', 'LB_ERR_CONSOLE_REQUEST'],
      [{ file: 'valve.yaml', content: 42, etag: sha256(VALVE) }, 'LB_ERR_CONSOLE_REQUEST'],
      [{ file: 'valve.yaml', content: VALVE }, 'LB_ERR_CONSOLE_REQUEST'],
      [{ file: 'valve.yaml', content: VALVE, etag: '../../etc' }, 'LB_ERR_CONSOLE_REQUEST'],
      [{ file: ['valve.yaml'], content: VALVE, etag: null }, 'LB_ERR_RULE_EDIT_PATH'],
    ] as const) {
      const res = await answer(request('POST', '/console/api/rule-editor/save', body))
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400)
      expect(res.json).toMatchObject({ error: code })
    }
    expect(await snapshot(dir)).toEqual(before)
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
  })

  it('never saves a draft that does not compile (422 with the errors at line:column)', async () => {
    const before = await snapshot(dir)
    const drafts: Array<[string, number | undefined, string]> = [
      [VALVE.replace('on: up', 'on: uplink'), 3, 'LB_ERR_RULE_FILE'],
      [VALVE.replace('{ "fPort": 3, "hex": "01" }', '{ "fPort": 3, "hex": }'), 6, 'LB_ERR_RULE_COMPILE'],
      ['rules:\n  - name: [unclosed\n', undefined, 'LB_ERR_RULE_FILE'],
    ]
    for (const [content, line, code] of drafts) {
      for (const [file, etag] of [['valve.yaml', sha256(VALVE)], ['fresh.yaml', null]] as const) {
        const res = await save(file, content, etag)
        expect(res.status, content).toBe(422)
        expect(res.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_INVALID', errors: expect.arrayContaining([expect.objectContaining({ file, line: line ?? expect.any(Number) as unknown, code })]) as unknown })
      }
    }
    expect(await snapshot(dir)).toEqual(before)
    expect(existsSync(join(rules, 'fresh.yaml'))).toBe(false)
  })

  it('saves over the version read only (409 otherwise); two saves of one version: one wins', async () => {
    const first = VALVE.replace('"01"', '"0a"')
    const ok = await save('valve.yaml', first, sha256(VALVE))
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({ ok: true, file: 'valve.yaml', etag: sha256(first), created: false, reload: { status: 'loaded', rules: ['close-valve'] } })
    expect(await readFile(join(rules, 'valve.yaml'), 'utf8')).toBe(first)
    const line = t.logs.find(l => l.msg === 'rule file saved from the console')
    expect(line).toMatchObject({ user: 'root', file: 'valve.yaml', sha256: sha256(first), previous: sha256(VALVE) })
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(/^lorabridge_console_rule_saves_total 1$/m)

    // A stale version: the file changed since (here, the save above).
    const stale = await save('valve.yaml', VALVE.replace('"01"', '"0b"'), sha256(VALVE))
    expect(stale.status).toBe(409)
    expect(stale.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_CONFLICT', etag: sha256(first) })
    // Someone edits the file on disk meanwhile.
    const byHand = first.replace('"0a"', '"0c"')
    await writeFile(join(rules, 'valve.yaml'), byHand)
    expect((await save('valve.yaml', VALVE, sha256(first))).status).toBe(409)
    expect(await readFile(join(rules, 'valve.yaml'), 'utf8')).toBe(byHand)

    // Two admins save over the same version at once: exactly one is written.
    const [a, b] = await Promise.all([save('valve.yaml', byHand.replace('"0c"', '"0d"'), sha256(byHand)), save('valve.yaml', byHand.replace('"0c"', '"0e"'), sha256(byHand))])
    expect([a.status, b.status].sort()).toEqual([200, 409])
    const winner = a.status === 200 ? '"0d"' : '"0e"'
    expect(await readFile(join(rules, 'valve.yaml'), 'utf8')).toBe(byHand.replace('"0c"', winner))

    // Creating a file that exists, or saving one that was deleted: 409 too.
    expect((await save('valve.yaml', VALVE, null)).json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_CONFLICT' })
    const created = await save('new-rules.yaml', VALVE.replace('close-valve', 'new-rule'), null)
    expect(created.json).toMatchObject({ ok: true, created: true, reload: { status: 'loaded', rules: ['new-rule'] } })
    expect((await save('new-rules.yaml', VALVE, null)).status).toBe(409)
    await rm(join(rules, 'new-rules.yaml'))
    expect((await save('new-rules.yaml', VALVE, sha256(VALVE.replace('close-valve', 'new-rule')))).json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_CONFLICT', etag: null })
    expect(t.logs.withCode('LB_ERR_RULE_EDIT_CONFLICT').length).toBeGreaterThanOrEqual(5)

    // No temporary file is left behind.
    expect((await readdir(rules)).filter(n => n.startsWith('.'))).toEqual([])
  })

  it('dry-runs a draft with the codec it names on a pasted event; a device never heard is 404; nothing is written', async () => {
    const before = await snapshot(dir)
    const draft = 'decoders:\n  - name: sensor\n    codec: codecs/sensor.js\nrules:\n  - name: echo\n    downlink: \'{ "fPort": 9, "hex": $hex([decoded.b]) }\'\n'
    const event = { id: 'e1', app: 'farm', devEui: '0011223344556677', fPort: 2, hex: '2a', data: 'Kg==', receivedAt: '2026-01-01T00:00:00Z', network: { type: 'multitech' } }
    const res = await answer(request('POST', '/console/api/rule-editor/try', { file: 'draft.yaml', content: draft, event }))
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ decoder: 'sensor', codec: 'codecs/sensor.js', decoded: { b: 42 }, downlinks: expect.arrayContaining([expect.objectContaining({ devEui: '0011223344556677', request: expect.objectContaining({ fPort: 9, hex: '2a' }) as unknown })]) as unknown })
    const unheard = await answer(request('POST', '/console/api/rule-editor/try', { file: 'draft.yaml', content: draft, devEui: '0011223344556677' }))
    expect(unheard.status).toBe(404)
    expect(unheard.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_NOT_FOUND' })
    const broken = await answer(request('POST', '/console/api/rule-editor/try', { file: 'draft.yaml', content: draft.replace('$hex(', '$hex(('), event }))
    expect(broken.status).toBe(422)
    expect(broken.json).toMatchObject({ error: 'LB_ERR_RULE_EDIT_INVALID' })
    expect(await snapshot(dir)).toEqual(before)
  })

  it('reports a draft\'s errors as `lorabridge rules check` prints them for the same file', async () => {
    const drafts = [
      // Two format errors.
      VALVE.replace('on: up', 'on: uplink') + '  - name: second\n    on: [up, downlink]\n    downlink: \'{ "fPort": 1, "hex": "00" }\'\n',
      // A JSONata syntax error.
      VALVE.replace('{ "fPort": 3, "hex": "01" }', '{ "fPort": 3, "hex": "01" ]'),
      // A codec file that is not there.
      'decoders:\n  - name: gone\n    codec: codecs/missing.js\n',
      // A misspelt function: whatever `rules check` says of it, the console says the same.
      VALVE.replace('{ "fPort": 3, "hex": "01" }', '{ "fPort": 3, "hex": $hexx([1]) }'),
    ]
    for (const [i, draft] of drafts.entries()) {
      const res = await answer(request('POST', '/console/api/rule-editor/compile', { file: 'check-me.yaml', content: draft }))
      expect(res.status).toBe(200)
      const errors = res.json.errors as Array<{ text: string }>
      if (i < 3) expect(errors.length, draft).toBeGreaterThanOrEqual(i === 0 ? 2 : 1)
      const checkDir = join(dir, `check-${i}`)
      await mkdir(checkDir)
      await writeFile(join(checkDir, 'check-me.yaml'), draft)
      const cli = await runCli(['rules', 'check', checkDir])
      expect(cli.code, draft).toBe(errors.length > 0 ? 1 : 0)
      expect(cli.stderr.split('\n').filter(l => l !== ''), draft).toEqual(errors.map(e => e.text))
    }
    expect(existsSync(join(rules, 'check-me.yaml'))).toBe(false)
  })
})

describe('console rule editor: a rules directory that cannot be written', () => {
  it('answers 500 LB_ERR_RULE_EDIT_WRITE with the cause, and the daemon goes on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lorabridge-sec-editor-nodir-'))
    await writeUsers(join(dir, 'data'), [{ name: 'root', role: 'admin', password: 'admin-secret' }])
    const t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] },
      http: { listeners: [{ protocol: 'http', host: '127.0.0.1', port: 0 }], console: { ruleEditing: true } },
      rules: { dir: './missing-rules' },
    }, { dir })
    try {
      const port = t.port('http')
      const cookie = String((await consoleLogin(port, 'root', 'admin-secret')).headers['set-cookie']).split(';')[0]!
      const list = await httpRequest({ port, path: '/console/api/rule-editor', headers: { cookie } })
      expect(JSON.parse(list.body)).toMatchObject({ editing: true, files: [] })
      const res = await httpRequest({ port, method: 'POST', path: '/console/api/rule-editor/save', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ file: 'new.yaml', content: VALVE, etag: null }) })
      expect(res.status).toBe(500)
      expect(JSON.parse(res.body)).toMatchObject({ error: 'LB_ERR_RULE_EDIT_WRITE', message: expect.stringContaining('ENOENT') as unknown })
      expect(t.logs.withCode('LB_ERR_RULE_EDIT_WRITE')).toHaveLength(1)
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
    } finally {
      await t.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
