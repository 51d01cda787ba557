/**
 * `--payload` of the simulators: hex digits with counters in braces, so that every uplink of a run
 * can differ (a deduplicating back-end drops a repeated frame) and a rule's answer can be told
 * apart per uplink.
 *
 *   {n}       the uplink's number in this run (0, 1, 2, … per device), one byte
 *   {fcnt}    the uplink's frame counter, two bytes big-endian
 *   {n:W}, {fcnt:W}   the same on W bytes (1-4), big-endian, wrapping
 *
 * e.g. `01{n}` (the default of `simulate conduit`) sends 0100, 0101, 0102, …
 */

export interface PayloadCounters {
  /** the uplink's number in this run, per device, from 0 */
  n: number
  /** the frame counter the uplink carries */
  fcnt: number
}

export type PayloadTemplate = (c: PayloadCounters) => Buffer

const PART = /([0-9a-fA-F]+)|\{(n|fcnt)(?::([1-4]))?\}/y
const DEFAULT_WIDTH = { n: 1, fcnt: 2 } as const

function bigEndian (value: number, width: number): string {
  const mod = 2 ** (8 * width)
  return (((Math.trunc(value) % mod) + mod) % mod).toString(16).padStart(width * 2, '0')
}

/** Compiles a template; throws an Error naming the problem (the CLI prints it with the option). */
export function compilePayloadTemplate (template: string, option = '--payload'): PayloadTemplate {
  const parts: Array<string | { name: 'n' | 'fcnt', width: number }> = []
  let hexDigits = 0
  PART.lastIndex = 0
  while (PART.lastIndex < template.length) {
    const at = PART.lastIndex
    const m = PART.exec(template)
    if (m === null) {
      throw new Error(`${option}: unexpected "${template.slice(at, at + 8)}" at character ${at + 1}: use hex digits and {n}, {fcnt}, {n:W} or {fcnt:W} (W = 1-4 bytes)`)
    }
    if (m[1] !== undefined) {
      hexDigits += m[1].length
      // A placeholder splits the hex, so each hex run must be whole bytes on its own.
      if (m[1].length % 2 !== 0) throw new Error(`${option}: an odd number of hex digits before character ${PART.lastIndex + 1} ("${m[1]}"): every byte needs two digits`)
      parts.push(m[1].toLowerCase())
    } else {
      const name = m[2] as 'n' | 'fcnt'
      parts.push({ name, width: m[3] !== undefined ? Number(m[3]) : DEFAULT_WIDTH[name] })
    }
  }
  if (parts.length === 0) throw new Error(`${option}: empty; give hex digits, e.g. 01{n}`)
  if (parts.every(p => typeof p === 'string') && hexDigits > 0) {
    const fixed = Buffer.from(parts.join(''), 'hex')
    return () => fixed
  }
  return c => Buffer.from(parts.map(p => typeof p === 'string' ? p : bigEndian(c[p.name], p.width)).join(''), 'hex')
}
