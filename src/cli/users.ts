import type { Config } from '../config/schema.js'
import { hashPassword } from '../auth/password.js'
import { readFile } from 'node:fs/promises'
import { readUsersDocument, readUsersFile, writeUsersDocument, type User } from '../auth/users-file.js'
import { recordOfCertificate, recordOfFingerprint, withRecord } from '../auth/certificate-records.js'
import { normalizeGatewayUuid } from '../auth/acl.js'
import { readPasswordTwice } from './password-prompt.js'

/**
 * The shortest password `users add` accepts (docs/security.md). NIST SP 800-63B asks verifiers to
 * accept nothing shorter than 8 characters; a longer passphrase is better.
 */
export const MIN_PASSWORD_LENGTH = 8

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

/** `--password-stdin`: asked twice without echo on a terminal, read to the end from a pipe (scripts). */
async function passwordFromStdin (): Promise<string> {
  return process.stdin.isTTY ? await readPasswordTwice(process.stdin, process.stderr) : await readStdin()
}

/** Why a password is refused, or undefined. Length counts characters (code points), not bytes. */
export function passwordProblem (password: string): string | undefined {
  if (password === '') return 'empty password'
  const length = [...password].length
  if (length < MIN_PASSWORD_LENGTH) return `the password has ${length} character${length === 1 ? '' : 's'}; at least ${MIN_PASSWORD_LENGTH} are needed (a passphrase of several words is best)`
  return undefined
}

export interface UsersAddOptions {
  role: User['role']
  password?: string
  passwordStdin?: boolean
  apps: string[]
  downlink?: boolean
  gateway?: string
  /** Opt-in for a gateway user bound to no GW-UUID (see UNBOUND_GATEWAY). */
  anyGateway?: boolean
  /** Client certificate files (PEM) to record for the user. */
  cert?: string[]
  /** SHA-256 fingerprints of client certificates to record for the user. */
  fingerprint?: string[]
}

/** What an unbound gateway user may do (src/auth/acl.ts), said wherever one is made or listed. */
export const UNBOUND_GATEWAY = 'it may subscribe to lorawan/# (every Conduit\'s uplinks, downlinks and api/lora/log answers) and publish on every Conduit\'s lorawan/… topics (downlinks, api_req and lora_req commands, init and close in its name)'

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
  // Gateways are bound by default (issue 12): an unbound one is an explicit, informed choice.
  if (opts.anyGateway === true && opts.role !== 'gateway') throw new Error('--any-gateway only applies to --role gateway')
  if (opts.anyGateway === true && gateway !== undefined) throw new Error('--gateway and --any-gateway exclude each other')
  if (opts.role === 'gateway' && gateway === undefined && opts.anyGateway !== true) {
    throw new Error('a gateway user is bound to its Conduit: give --gateway UUID (the content of /sys/devices/platform/mts-io/uuid on the Conduit); ' +
      `--any-gateway makes an unbound gateway instead: ${UNBOUND_GATEWAY}`)
  }
  if (opts.downlink === true && opts.role !== 'consumer') throw new Error('--downlink only applies to --role consumer')
  if (opts.passwordStdin === true && opts.password !== undefined) throw new Error('give --password or --password-stdin, not both')
  const password = opts.passwordStdin === true ? await passwordFromStdin() : opts.password
  const problem = password === undefined ? undefined : passwordProblem(password)
  if (problem !== undefined) throw new Error(problem)
  const records = [
    ...await Promise.all((opts.cert ?? []).map(async f => recordOfCertificate(await readFile(f)))),
    ...(opts.fingerprint ?? []).map(recordOfFingerprint),
  ]
  const doc = await readUsersDocument(file)
  const users = doc.users
  const previous = users.get(name)
  const user: User = {
    name,
    role: opts.role,
    apps: opts.apps,
    downlink: opts.downlink === true,
    ...(password !== undefined ? { passwordHash: await hashPassword(password) } : {}),
    ...(gateway !== undefined ? { gateway } : {}),
    // Replacing a user keeps its creation time (and a user from before `created` existed keeps none).
    ...(previous === undefined ? { created: new Date().toISOString() } : previous.created !== undefined ? { created: previous.created } : {}),
  }
  const replaced = previous !== undefined
  users.set(name, user)
  for (const record of records) doc.certificates.set(name, withRecord(doc.certificates.get(name), record))
  await writeUsersDocument(file, doc)
  process.stdout.write(`${replaced ? 'replaced' : 'added'} ${opts.role} "${name}"${password === undefined ? ' (no password: client certificate only)' : ''} in ${file}\n`)
  if (opts.role === 'gateway' && gateway === undefined) process.stderr.write(`warning: "${name}" is an UNBOUND gateway: ${UNBOUND_GATEWAY}. Bind each Conduit with --gateway UUID instead unless this user is a trusted bridge.\n`)
}

export async function usersList (config: Config, opts: { json?: boolean }): Promise<void> {
  const users = [...(await readUsersFile(config.auth.usersFile as string)).values()]
  if (opts.json === true) {
    process.stdout.write(JSON.stringify(users.map(({ passwordHash, ...u }) => ({ ...u, ...(u.role === 'gateway' ? { unbound: u.gateway === undefined } : {}), password: passwordHash !== undefined })), null, 2) + '\n')
    return
  }
  const rows = [['NAME', 'ROLE', 'APPS', 'DOWNLINK', 'GATEWAY', 'PASSWORD'],
    ...users.map(u => [u.name, u.role, u.apps.join(',') || '-', u.downlink ? 'yes' : 'no', u.role !== 'gateway' ? '-' : u.gateway ?? 'UNBOUND (every Conduit)', u.passwordHash !== undefined ? 'yes' : 'no'])]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n')
  const unbound = users.filter(u => u.role === 'gateway' && u.gateway === undefined).map(u => u.name)
  if (unbound.length > 0) process.stderr.write(`note: ${unbound.join(', ')} ${unbound.length === 1 ? 'is an UNBOUND gateway' : 'are UNBOUND gateways'}: ${UNBOUND_GATEWAY}. Bind with \`users add NAME --role gateway --gateway UUID\`.\n`)
}

export async function usersRemove (config: Config, name: string): Promise<void> {
  const file = config.auth.usersFile as string
  const doc = await readUsersDocument(file)
  const users = doc.users
  // The name's recorded certificates go with it: adding the name again must not revive them.
  doc.certificates.delete(name)
  if (!users.delete(name)) {
    process.stderr.write(`no user "${name}" in ${file}\n`)
    process.exitCode = 1
    return
  }
  await writeUsersDocument(file, doc)
  process.stdout.write(`removed "${name}" from ${file}\n`)
}
