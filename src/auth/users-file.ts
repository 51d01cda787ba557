/**
 * The users file (YAML): who may connect, with which role, and what they may touch. Only salted
 * hashes are stored. The daemon re-reads the file when it changes, so `lorabridge users add`
 * takes effect without a restart.
 */
import { readFile, stat } from 'node:fs/promises'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { parse, stringify } from 'yaml'
import { writeFileAtomic } from '../util/atomic-write.js'
import { LorabridgeError } from '../errors.js'
import { formatPointer } from '../config/issues.js'

export const ROLES = ['gateway', 'consumer', 'admin'] as const
export type Role = typeof ROLES[number]

const UserEntry = Type.Object({
  role: Type.Union([Type.Literal('gateway'), Type.Literal('consumer'), Type.Literal('admin')]),
  passwordHash: Type.Optional(Type.String({ pattern: '^scrypt\\$' })),
  apps: Type.Array(Type.String({ pattern: '^(\\*|[a-z0-9][a-z0-9_-]*)$' }), { default: [] }),
  downlink: Type.Boolean({ default: false }),
  gateway: Type.Optional(Type.String({ minLength: 1 })),
}, { additionalProperties: false })

const UsersDocument = Type.Object({
  users: Type.Record(Type.String({ pattern: '^[^\\s]+$' }), UserEntry, { default: {} }),
}, { additionalProperties: false })

export type UserEntry = Static<typeof UserEntry>
export interface User extends UserEntry { name: string }

const validate = new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(UsersDocument)

export async function readUsersFile (file: string): Promise<Map<string, User>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
    throw new LorabridgeError('LB_ERR_USERS_FILE', `${file}: ${(err as Error).message}`, { cause: err })
  }
  let doc: unknown
  try {
    doc = parse(text) ?? { users: {} }
  } catch (err) {
    throw new LorabridgeError('LB_ERR_USERS_FILE', `${file}: ${(err as Error).message}`, { cause: err })
  }
  if (!validate(doc)) {
    const problems = (validate.errors ?? []).map(e => `${formatPointer(e.instancePath)}: ${e.message ?? 'invalid'}`)
    throw new LorabridgeError('LB_ERR_USERS_FILE', `${file}: ${problems.join('; ')}`)
  }
  const users = new Map<string, User>()
  for (const [name, entry] of Object.entries((doc as Static<typeof UsersDocument>).users)) users.set(name, { name, ...entry })
  return users
}

export async function writeUsersFile (file: string, users: Map<string, User>): Promise<void> {
  const out: Record<string, UserEntry> = {}
  for (const user of [...users.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const { name, ...entry } = user
    out[name] = entry
  }
  const header = '# lorabridge users: edit with `lorabridge users add|remove`; passwords are salted scrypt hashes.\n'
  await writeFileAtomic(file, header + stringify({ users: out }), 0o600)
}

/**
 * Read-through view of the users file for the broker. It checks the file's mtime at most once
 * per `checkIntervalMs`, so a reconnect storm does not turn into a storm of reads.
 */
export class UsersStore {
  private users = new Map<string, User>()
  private mtimeMs = -1
  private checkedAt = 0
  private pending: Promise<void> | undefined
  private watcher: NodeJS.Timeout | undefined
  private readonly changeListeners: Array<(changed: ReadonlySet<string>) => void> = []
  private bound: { users: Map<string, User>, ids: Set<string> } | undefined

  constructor (readonly file: string, private readonly checkIntervalMs = 1000, private readonly onError: (err: Error) => void = () => {}) {}

  /** Called with the names of the users removed or changed by each reload. */
  onChange (listener: (changed: ReadonlySet<string>) => void): void { this.changeListeners.push(listener) }

  /**
   * Checks the file every checkIntervalMs even when nobody connects, so that removing or changing
   * a user reaches the connections it authenticated (onChange) within that interval.
   */
  watch (): void {
    if (this.watcher !== undefined) return
    this.watcher = setInterval(() => {
      if (this.pending !== undefined) return
      this.pending = this.refresh().finally(() => { this.pending = undefined })
    }, this.checkIntervalMs)
    this.watcher.unref()
  }

  unwatch (): void {
    if (this.watcher !== undefined) clearInterval(this.watcher)
    this.watcher = undefined
  }

  async load (): Promise<void> {
    const st = await stat(this.file).catch(() => undefined)
    this.users = await readUsersFile(this.file)
    this.mtimeMs = st?.mtimeMs ?? -1
    this.checkedAt = Date.now()
  }

  async get (name: string): Promise<User | undefined> {
    return (await this.current()).get(name)
  }

  /** GW-UUIDs (32 lower-case hex digits) that some gateway user is bound to. */
  async boundGateways (): Promise<ReadonlySet<string>> {
    const users = await this.current()
    if (this.bound?.users !== users) {
      const ids = [...users.values()].filter(u => u.role === 'gateway' && u.gateway !== undefined).map(u => u.gateway!.replace(/-/g, '').toLowerCase())
      this.bound = { users, ids: new Set(ids) }
    }
    return this.bound.ids
  }

  private async current (): Promise<Map<string, User>> {
    if (this.pending === undefined && Date.now() - this.checkedAt >= this.checkIntervalMs) {
      this.pending = this.refresh().finally(() => { this.pending = undefined })
    }
    // A lookup that arrives while a reload is in flight waits for it: the reload has already
    // moved `checkedAt`, and reading the old map now would refuse a user just added.
    if (this.pending !== undefined) await this.pending
    return this.users
  }

  private async refresh (): Promise<void> {
    this.checkedAt = Date.now()
    const st = await stat(this.file).catch(() => undefined)
    const mtimeMs = st?.mtimeMs ?? -1
    if (mtimeMs === this.mtimeMs) return
    try {
      const previous = this.users
      this.users = await readUsersFile(this.file)
      this.mtimeMs = mtimeMs
      const changed = changedUsers(previous, this.users)
      if (changed.size > 0) for (const listener of this.changeListeners) listener(changed)
    } catch (err) {
      // Keep the last good set: a half-edited file must not lock everyone out.
      this.onError(err as Error)
    }
  }
}

/** Names of the users that `after` removed or changed (role, grants, binding, password…) from `before`. */
export function changedUsers (before: ReadonlyMap<string, User>, after: ReadonlyMap<string, User>): Set<string> {
  const changed = new Set<string>()
  for (const [name, user] of before) {
    const now = after.get(name)
    if (now === undefined || JSON.stringify(now) !== JSON.stringify(user)) changed.add(name)
  }
  return changed
}
