/**
 * The ban list (`lorabridge ban add|list|remove`): addresses and networks (CIDR), client ids and
 * user names refused at once, as EMQX's banned list. Kept in a YAML file beside the users file and
 * re-read when it changes, so a ban reaches a running daemon (and its open connections) within a
 * second. Bans may expire.
 */
import { readFile, stat } from 'node:fs/promises'
import { BlockList, isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { parse, stringify } from 'yaml'
import { LorabridgeError } from '../errors.js'
import { formatPointer } from '../config/issues.js'
import { writeFileAtomic } from '../util/atomic-write.js'

export const BAN_KINDS = ['address', 'client-id', 'user'] as const
export type BanKind = typeof BAN_KINDS[number]

const BanEntry = Type.Object({
  kind: Type.Union(BAN_KINDS.map(k => Type.Literal(k))),
  value: Type.String({ minLength: 1 }),
  /** ISO time; absent: until removed. */
  until: Type.Optional(Type.String({ format: 'date-time' })),
  reason: Type.Optional(Type.String()),
  at: Type.String({ format: 'date-time' }),
}, { additionalProperties: false })

const BansDocument = Type.Object({ bans: Type.Array(BanEntry, { default: [] }) }, { additionalProperties: false })

export type Ban = Static<typeof BanEntry>

const validate = new Ajv({ allErrors: true, useDefaults: true, strict: false, formats: { 'date-time': (s: string) => !Number.isNaN(Date.parse(s)) } }).compile(BansDocument)

/** An address or a CIDR network ("10.0.0.0/8", "2001:db8::/32"), normalized; undefined if neither. */
export function parseAddressBan (value: string): { address: string, prefix: number | undefined, family: 'ipv4' | 'ipv6' } | undefined {
  const [address, prefixText, ...rest] = value.split('/')
  if (address === undefined || rest.length > 0) return undefined
  const v = isIP(address)
  if (v === 0) return undefined
  const family = v === 4 ? 'ipv4' : 'ipv6'
  if (prefixText === undefined) return { address, prefix: undefined, family }
  const prefix = Number(prefixText)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (v === 4 ? 32 : 128)) return undefined
  return { address, prefix, family }
}

export async function readBansFile (file: string): Promise<Ban[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new LorabridgeError('LB_ERR_BANS_FILE', `${file}: ${(err as Error).message}`, { cause: err })
  }
  let doc: unknown
  try {
    doc = parse(text) ?? { bans: [] }
  } catch (err) {
    throw new LorabridgeError('LB_ERR_BANS_FILE', `${file}: ${(err as Error).message}`, { cause: err })
  }
  if (!validate(doc)) {
    throw new LorabridgeError('LB_ERR_BANS_FILE', `${file}: ${(validate.errors ?? []).map(e => `${formatPointer(e.instancePath)}: ${e.message ?? 'invalid'}`).join('; ')}`)
  }
  const bans = (doc as Static<typeof BansDocument>).bans
  const bad = bans.find(b => b.kind === 'address' && parseAddressBan(b.value) === undefined)
  if (bad !== undefined) throw new LorabridgeError('LB_ERR_BANS_FILE', `${file}: "${bad.value}" is not an address or a CIDR network`)
  return bans
}

export async function writeBansFile (file: string, bans: Ban[]): Promise<void> {
  await writeFileAtomic(file, '# lorabridge bans: edit with `lorabridge ban add|remove`.\n' + stringify({ bans }), 0o600)
}

/** What a connection presents, for matching against the bans. */
export interface BanSubject { address?: string | undefined, clientId?: string | undefined, user?: string | undefined }

export class BanList {
  private bans: Ban[] = []
  private addresses = new BlockList()
  private mtimeMs = -1
  private watcher: NodeJS.Timeout | undefined
  private readonly listeners: Array<() => void> = []

  constructor (readonly file: string, private readonly checkIntervalMs = 1000, private readonly onError: (err: Error) => void = () => {}, private readonly now: () => number = Date.now) {}

  /** Called after each reload that changed the list (to end banned connections). */
  onChange (listener: () => void): void { this.listeners.push(listener) }

  async load (): Promise<void> {
    const st = await stat(this.file).catch(() => undefined)
    this.set(await readBansFile(this.file))
    this.mtimeMs = st?.mtimeMs ?? -1
  }

  watch (): void {
    if (this.watcher !== undefined) return
    this.watcher = setInterval(() => { void this.refresh() }, this.checkIntervalMs)
    this.watcher.unref()
  }

  unwatch (): void {
    if (this.watcher !== undefined) clearInterval(this.watcher)
    this.watcher = undefined
  }

  private async refresh (): Promise<void> {
    const st = await stat(this.file).catch(() => undefined)
    const mtimeMs = st?.mtimeMs ?? -1
    if (mtimeMs === this.mtimeMs) return
    try {
      this.set(await readBansFile(this.file))
      this.mtimeMs = mtimeMs
      for (const l of this.listeners) l()
    } catch (err) {
      // Keep the last good list: a half-edited file must not lift every ban.
      this.mtimeMs = mtimeMs
      this.onError(err as Error)
    }
  }

  private set (bans: Ban[]): void {
    this.bans = bans
    const list = new BlockList()
    for (const b of bans) {
      if (b.kind !== 'address' || !this.live(b)) continue
      const a = parseAddressBan(b.value)!
      if (a.prefix === undefined) list.addAddress(a.address, a.family)
      else list.addSubnet(a.address, a.prefix, a.family)
    }
    this.addresses = list
  }

  private live (b: Ban): boolean { return b.until === undefined || Date.parse(b.until) > this.now() }

  /** The ban that applies to this subject, if any. */
  match (s: BanSubject): Ban | undefined {
    if (this.bans.length === 0) return undefined
    for (const b of this.bans) {
      if (!this.live(b)) continue
      switch (b.kind) {
        case 'client-id': if (s.clientId === b.value) return b; break
        case 'user': if (s.user === b.value) return b; break
        case 'address':
          if (s.address !== undefined && isIP(s.address) !== 0 && this.addresses.check(s.address, isIP(s.address) === 4 ? 'ipv4' : 'ipv6')) {
            // The BlockList answers for every address ban at once; report this one if it covers it.
            const one = new BlockList()
            const a = parseAddressBan(b.value)!
            if (a.prefix === undefined) one.addAddress(a.address, a.family); else one.addSubnet(a.address, a.prefix, a.family)
            if (one.check(s.address, isIP(s.address) === 4 ? 'ipv4' : 'ipv6')) return b
          }
          break
      }
    }
    return undefined
  }

  /** Fast path for accept(): is this address banned? */
  addressBanned (address: string): boolean {
    const v = isIP(address)
    return v !== 0 && this.addresses.check(address, v === 4 ? 'ipv4' : 'ipv6') && this.match({ address }) !== undefined
  }
}
