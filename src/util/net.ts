import { isIP } from 'node:net'

/** True for addresses that only this machine can reach. Anonymous access is limited to these (PRODUCT.md §6). */
export function isLoopbackHost (host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return /^::ffff:127\./i.test(host)
}

/** The address of a peer without the IPv4-mapped prefix, so that rate limits key on one spelling. */
export function normalizeAddress (address: string | undefined): string {
  if (address === undefined) return 'unknown'
  return address.startsWith('::ffff:') ? address.slice(7) : address
}

/**
 * The key a per-source limit counts under: the address for IPv4, and the /64 prefix for IPv6 — one
 * IPv6 host usually holds a whole /64 and can pick a new address for every request.
 */
export function rateLimitKey (address: string | undefined): string {
  const a = normalizeAddress(address)
  if (isIP(a.split('%')[0]!) !== 6) return a
  const groups = expandIpv6(a.split('%')[0]!)
  return `${groups.slice(0, 4).map(g => g.replace(/^0+(?=.)/, '')).join(':')}::/64`
}

/** The eight 16-bit groups of an IPv6 address (lower-case hex); an embedded IPv4 tail becomes two groups. */
function expandIpv6 (address: string): string[] {
  let a = address.toLowerCase()
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a)
  if (v4 !== null) {
    const [b1, b2, b3, b4] = v4.slice(1).map(Number) as [number, number, number, number]
    a = a.slice(0, v4.index) + `${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`
  }
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined]
  const left = head === '' ? [] : head.split(':')
  if (tail === undefined) return left
  const right = tail === '' ? [] : tail.split(':')
  return [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
}
