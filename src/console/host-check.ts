/**
 * Which `Host` a console request may name. DNS rebinding points a name the attacker controls at
 * this machine: the browser then treats the console as part of the attacker's site, and its
 * requests carry `Host: evil.example`. A browser that names this machine by an IP address, by
 * localhost, by the machine's own name, or by a name the operator listed is not being rebound.
 */
import { hostname } from 'node:os'
import { isIP } from 'node:net'

/** The host name of a Host header, lowercased, without port, brackets or a trailing dot. */
export function hostName (header: string): string {
  let name = header.trim().toLowerCase()
  if (name.startsWith('[')) {
    const end = name.indexOf(']')
    name = end > 0 ? name.slice(1, end) : name
  } else if (name.split(':').length === 2) {
    name = name.slice(0, name.indexOf(':'))
  }
  return name.endsWith('.') ? name.slice(0, -1) : name
}

export class ConsoleHosts {
  private readonly names: Set<string>
  private readonly any: boolean

  /** `listenerHost`: the address the listener binds; `allowed`: http.console.allowedHosts ('*': any). */
  constructor (listenerHost: string, allowed: readonly string[]) {
    const own = hostname().toLowerCase()
    this.names = new Set(['localhost', own, own.split('.')[0]!, hostName(listenerHost), ...allowed.map(hostName)])
    this.any = allowed.includes('*')
  }

  allows (header: string | undefined): boolean {
    // HTTP/1.1 requires Host (Node answers 400 without one); HTTP/1.0 clients are not browsers.
    if (header === undefined || header === '') return false
    if (this.any) return true
    const name = hostName(header)
    return isIP(name) !== 0 || this.names.has(name) || name.endsWith('.localhost')
  }
}
