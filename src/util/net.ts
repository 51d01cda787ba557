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
 * The key per-address limits count under: an IPv4 address as it is, an IPv6 address by its /64
 * network — one host usually holds a whole /64 and can pick any address in it, so limits per
 * IPv6 address would be limits per connection.
 */
export function rateLimitKey (address: string): string {
  if (isIP(address) !== 6) return address
  const [head = '', tail = ''] = address.toLowerCase().split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === '' ? [] : tail.split(':')
  // An embedded IPv4 tail (::ffff:1.2.3.4 is normalized away earlier) counts as two groups.
  const width = (groups: string[]): number => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0)
  const groups = address.includes('::')
    ? [...headGroups, ...Array(8 - width(headGroups) - width(tailGroups)).fill('0'), ...tailGroups]
    : headGroups
  return `${groups.slice(0, 4).map(g => g.replace(/^0+(?=.)/, '')).join(':')}::/64`
}
