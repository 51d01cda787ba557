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
