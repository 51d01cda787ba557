import type { Config } from '../config/schema.js'
import { hashPassword } from '../auth/password.js'
import { readUsersFile, writeUsersFile, type User } from '../auth/users-file.js'
import { normalizeGatewayUuid } from '../auth/acl.js'

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

export interface UsersAddOptions {
  role: User['role']
  password?: string
  passwordStdin?: boolean
  apps: string[]
  downlink?: boolean
  gateway?: string
}

export async function usersAdd (config: Config, name: string, opts: UsersAddOptions): Promise<void> {
  const file = config.auth.usersFile as string
  if (!/^\S+$/.test(name)) throw new Error('user names cannot contain spaces')
  for (const app of opts.apps) {
    if (app !== '*' && !/^[a-z0-9][a-z0-9_-]*$/.test(app)) throw new Error(`"${app}" is not an application name`)
  }
  let gateway: string | undefined
  if (opts.gateway !== undefined) {
    if (opts.role !== 'gateway') throw new Error('--gateway only applies to --role gateway')
    gateway = normalizeGatewayUuid(opts.gateway)
    if (gateway === undefined) throw new Error(`"${opts.gateway}" is not a GW-UUID (32 hex digits, dashed or not)`)
  }
  if (opts.downlink === true && opts.role !== 'consumer') throw new Error('--downlink only applies to --role consumer')
  const password = opts.passwordStdin === true ? await readStdin() : opts.password
  if (password === '') throw new Error('empty password')
  const users = await readUsersFile(file)
  const user: User = {
    name,
    role: opts.role,
    apps: opts.apps,
    downlink: opts.downlink === true,
    ...(password !== undefined ? { passwordHash: await hashPassword(password) } : {}),
    ...(gateway !== undefined ? { gateway } : {}),
  }
  const replaced = users.has(name)
  users.set(name, user)
  await writeUsersFile(file, users)
  process.stdout.write(`${replaced ? 'replaced' : 'added'} ${opts.role} "${name}"${password === undefined ? ' (no password: client certificate only)' : ''} in ${file}\n`)
}

export async function usersList (config: Config, opts: { json?: boolean }): Promise<void> {
  const users = [...(await readUsersFile(config.auth.usersFile as string)).values()]
  if (opts.json === true) {
    process.stdout.write(JSON.stringify(users.map(({ passwordHash, ...u }) => ({ ...u, password: passwordHash !== undefined })), null, 2) + '\n')
    return
  }
  const rows = [['NAME', 'ROLE', 'APPS', 'DOWNLINK', 'GATEWAY', 'PASSWORD'],
    ...users.map(u => [u.name, u.role, u.apps.join(',') || '-', u.downlink ? 'yes' : 'no', u.gateway ?? '-', u.passwordHash !== undefined ? 'yes' : 'no'])]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n')
}

export async function usersRemove (config: Config, name: string): Promise<void> {
  const file = config.auth.usersFile as string
  const users = await readUsersFile(file)
  if (!users.delete(name)) {
    process.stderr.write(`no user "${name}" in ${file}\n`)
    process.exitCode = 1
    return
  }
  await writeUsersFile(file, users)
  process.stdout.write(`removed "${name}" from ${file}\n`)
}
