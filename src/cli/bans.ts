/** `lorabridge ban add|list|remove`: edits the ban list a running daemon re-reads within a second. */
import type { Config } from '../config/schema.js'
import { parseAddressBan, readBansFile, writeBansFile, type Ban, type BanKind } from '../broker/bans.js'
import { parseDuration } from '../rules/duration.js'

export interface BanAddOptions { address?: string, clientId?: string, user?: string, for?: string, reason?: string }

function target (opts: BanAddOptions): { kind: BanKind, value: string } {
  const given = [
    opts.address !== undefined ? { kind: 'address' as const, value: opts.address } : undefined,
    opts.clientId !== undefined ? { kind: 'client-id' as const, value: opts.clientId } : undefined,
    opts.user !== undefined ? { kind: 'user' as const, value: opts.user } : undefined,
  ].filter(x => x !== undefined)
  if (given.length !== 1) throw new Error('give exactly one of --address, --client-id, --user')
  const t = given[0]!
  if (t.value === '') throw new Error('empty value')
  if (t.kind === 'address' && parseAddressBan(t.value) === undefined) throw new Error(`"${t.value}" is not an address or a CIDR network (10.0.0.7, 10.0.0.0/8, 2001:db8::/32)`)
  return t
}

export async function banAdd (config: Config, opts: BanAddOptions, now: () => Date = () => new Date()): Promise<void> {
  const file = config.auth.bansFile as string
  const { kind, value } = target(opts)
  let until: string | undefined
  if (opts.for !== undefined) {
    const ms = parseDuration(opts.for)
    if (ms === undefined || ms <= 0) throw new Error(`--for "${opts.for}": expected a duration such as 30m, 12h, 7d`)
    until = new Date(now().getTime() + ms).toISOString()
  }
  const bans = (await readBansFile(file)).filter(b => !(b.kind === kind && b.value === value))
  const ban: Ban = { kind, value, at: now().toISOString(), ...(until !== undefined ? { until } : {}), ...(opts.reason !== undefined ? { reason: opts.reason } : {}) }
  bans.push(ban)
  await writeBansFile(file, bans)
  process.stdout.write(`banned ${kind} "${value}"${until !== undefined ? ` until ${until}` : ''} in ${file}; a running daemon closes its connections within a second\n`)
}

export async function banList (config: Config, opts: { json?: boolean }): Promise<void> {
  const bans = await readBansFile(config.auth.bansFile as string)
  if (opts.json === true) { process.stdout.write(JSON.stringify(bans, null, 2) + '\n'); return }
  const rows = [['KIND', 'VALUE', 'UNTIL', 'REASON'], ...bans.map(b => [b.kind, b.value, b.until ?? '-', b.reason ?? '-'])]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n')
}

export async function banRemove (config: Config, value: string): Promise<void> {
  const file = config.auth.bansFile as string
  const bans = await readBansFile(file)
  const kept = bans.filter(b => b.value !== value)
  if (kept.length === bans.length) throw new Error(`no ban on "${value}"`)
  await writeBansFile(file, kept)
  process.stdout.write(`lifted the ban on "${value}"\n`)
}
