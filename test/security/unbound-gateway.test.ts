/**
 * Issue 12, weakness: the README's client-certificate example made a gateway user bound to no
 * GW-UUID, which reads every Conduit's `lorawan/#` and may publish `api_req` to other Conduits.
 * Gateways are now bound unless the operator opts in with `--any-gateway`, told what that means.
 * - the README's certificate example, run as written, gives a user that cannot subscribe to
 *   `lorawan/#` nor publish another Conduit's `api_req`, while its own topics work;
 * - `users add NAME --role gateway` without `--gateway` is refused; `--any-gateway` opts in and
 *   says plainly what an unbound gateway can do; `users list` shows it as unbound;
 * - a users file that already holds an unbound gateway keeps working, listed as unbound;
 * - every `users add … --role gateway` in README.md and docs/ is bound or opts in explicitly.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { hashPassword } from '../../src/auth/password.js'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { runCli, type RunResult } from '../helpers/cli.js'
import { connect, subscribeGranted, closedByBroker, nextMessage, sleep, type MqttClient } from '../helpers/mqtt.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const OTHER_GW = '11111111-2222-3333-4444-555555555555'

describe('gateway users are bound to a GW-UUID unless explicitly unbound', () => {
  let t: TestDaemon
  const clients: MqttClient[] = []
  const cli = async (...args: string[]): Promise<RunResult> => runCli(['-c', t.configFile, ...args])
  const usersFile = async (): Promise<Record<string, Record<string, unknown>>> =>
    (parse(await readFile(join(t.dataDir, 'users.yaml'), 'utf8')) as { users: Record<string, Record<string, unknown>> }).users

  beforeAll(async () => {
    t = await startTestDaemon({
      mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }, { protocol: 'mqtts', host: '127.0.0.1', port: 0 }] },
    })
  })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync(true)))
    await t?.stop()
  })

  const viaCertificate = async (name: string, clientId: string): Promise<MqttClient> => {
    const c = await connect(`mqtts://localhost:${t.port('mqtts')}`, {
      ca: await readFile(join(t.dataDir, 'ca.crt')),
      cert: await readFile(join(t.dataDir, `${name}.crt`)),
      key: await readFile(join(t.dataDir, `${name}.key`)),
      clientId,
    })
    clients.push(c)
    return c
  }

  it("the README's client-certificate example gives a gateway that cannot read lorawan/# nor command another Conduit", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    const line = readme.split('\n').find(l => /npx lorabridge certs client \S+ && npx lorabridge users add /.test(l))
    expect(line, 'the README shows a client-certificate gateway').toBeDefined()
    const [certCmd, userCmd] = line!.replace(/\s+#.*$/, '').split('&&').map(c => c.trim().replace(/^npx lorabridge /, '').split(/\s+/))
    const name = certCmd![2]!
    for (const cmd of [certCmd!, userCmd!]) {
      const r = await cli(...cmd)
      expect(r.code, `${cmd.join(' ')}: ${r.stderr}`).toBe(0)
    }
    const entry = (await usersFile())[name]
    expect(entry).toMatchObject({ role: 'gateway' })
    const bound = typeof entry!.gateway === 'string' ? entry!.gateway : undefined
    await sleep(1100) // the users file is re-read at most once a second
    const own = bound !== undefined
      ? `${bound.slice(0, 8)}-${bound.slice(8, 12)}-${bound.slice(12, 16)}-${bound.slice(16, 20)}-${bound.slice(20)}`
      : '029998e0-6156-cdd4-4523-264b523115c1'

    const observer = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { clientId: 'observer' })
    clients.push(observer)
    await observer.subscribeAsync('lorawan/#', { qos: 1 })
    const conduit = await viaCertificate(name, `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${own}`)

    // The attack: read every Conduit's traffic, command another Conduit.
    expect(await subscribeGranted(conduit, 'lorawan/#')).toBe(128)
    expect(await subscribeGranted(conduit, `lorawan/${OTHER_GW}/api_res`)).toBe(128)
    const closed = closedByBroker(conduit)
    conduit.publish(`lorawan/${OTHER_GW}/api_req`, '{"rid":1,"method":"POST","path":"/api/command/restart"}', { qos: 1 })
    expect(await closed).toBe(true)
    expect(bound).toMatch(/^[0-9a-f]{32}$/)

    // Its own traffic still flows.
    const again = await viaCertificate(name, `lorawan/ff-ff-ff-ff-ff-ff-ff-ff/${own}`)
    expect(await subscribeGranted(again, `lorawan/${own}/down`)).toBe(1)
    const up = nextMessage(observer, `lorawan/${own}/init`)
    await again.publishAsync(`lorawan/${own}/init`, '{"gateways_euis":["00-80-00-00-a0-00-0f-4d"]}', { qos: 1 })
    expect((await up).payload.toString()).toContain('gateways_euis')
  })

  it('refuses `users add NAME --role gateway` without --gateway, and conflicting or misplaced --any-gateway', async () => {
    const missing = await cli('users', 'add', 'conduit-9', '--role', 'gateway', '--password', 'pw-9')
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/--gateway/)
    expect(missing.stderr).toMatch(/--any-gateway/)
    const both = await cli('users', 'add', 'conduit-9', '--role', 'gateway', '--gateway', OTHER_GW, '--any-gateway', '--password', 'pw-9')
    expect(both.code).toBe(1)
    const consumer = await cli('users', 'add', 'reader', '--role', 'consumer', '--apps', 'farm', '--any-gateway', '--password', 'pw')
    expect(consumer.code).toBe(1)
    const users = await usersFile().catch(() => ({}))
    expect(Object.keys(users)).not.toContain('conduit-9')
    expect(Object.keys(users)).not.toContain('reader')
  })

  it('adds an unbound gateway only with --any-gateway, says what it can do, and lists it as unbound', async () => {
    const added = await cli('users', 'add', 'bridge-gw', '--role', 'gateway', '--any-gateway', '--password', 'bridge-pw')
    expect(added.code, added.stderr).toBe(0)
    const said = added.stdout + added.stderr
    expect(said).toMatch(/unbound/i)
    expect(said).toMatch(/lorawan\/#/)
    expect(said).toMatch(/api_req/)
    expect((await usersFile())['bridge-gw']).not.toHaveProperty('gateway')

    const list = await cli('users', 'list')
    expect(list.code).toBe(0)
    const row = list.stdout.split('\n').find(l => l.startsWith('bridge-gw '))
    expect(row).toMatch(/UNBOUND/)
    const json = JSON.parse((await cli('users', 'list', '--json')).stdout) as Array<Record<string, unknown>>
    expect(json.find(u => u.name === 'bridge-gw')).toMatchObject({ role: 'gateway', unbound: true })
    expect(json.find(u => u.role === 'gateway' && u.gateway !== undefined)).toMatchObject({ unbound: false })
  })

  it('keeps an unbound gateway of an existing users file working, and lists it as unbound', async () => {
    const file = join(t.dataDir, 'users.yaml')
    const doc = parse(await readFile(file, 'utf8')) as { users: Record<string, unknown> }
    // As an older `users add NAME --role gateway` wrote it: no `gateway` key.
    doc.users['legacy-gw'] = { role: 'gateway', apps: [], downlink: false, passwordHash: await hashPassword('legacy-pw') }
    await writeFile(file, stringify(doc), { mode: 0o600 })
    await sleep(1100)
    const legacy = await connect(`mqtt://127.0.0.1:${t.port('mqtt')}`, { username: 'legacy-gw', password: 'legacy-pw', clientId: 'legacy-gw' })
    clients.push(legacy)
    expect(await subscribeGranted(legacy, 'lorawan/#')).toBe(1)
    const row = (await cli('users', 'list')).stdout.split('\n').find(l => l.startsWith('legacy-gw '))
    expect(row).toMatch(/UNBOUND/)
  })

  it('binds or explicitly unbinds every gateway user added in README.md and docs/', async () => {
    const files = ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)]
    const offenders: string[] = []
    let examples = 0
    for (const f of files) {
      for (const l of (await readFile(join(ROOT, f), 'utf8')).split('\n')) {
        if (!/users add \S+ .*--role gateway(\s|$)/.test(l)) continue
        examples++
        if (!/--gateway\s+[^\s`|\]]+|--any-gateway/.test(l)) offenders.push(`${f}: ${l.trim()}`)
      }
    }
    expect(examples).toBeGreaterThan(3)
    expect(offenders).toEqual([])
  })
})
