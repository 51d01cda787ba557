/**
 * ThingPark tunnel tokens (thingpark-tunnel.md §2, §3).
 *
 * Uplink reports: `sha256_hex(bodyElements + queryParameters + AsKey)`, where queryParameters is
 * rebuilt from the URL-DECODED values in the fixed order LrnDevEui, LrnFPort, LrnInfos, AS_ID, Time
 * (§2.2: not the raw substring — a real capture arrived in another order, and the published tokens
 * match only the decoded canonical form) and `+` stays `+`.
 *
 * Downlink requests: `sha256_hex(<params before Token, values not encoded, in the order sent> + AsKey)`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

export const QUERY_ORDER = ['LrnDevEui', 'LrnFPort', 'LrnInfos', 'AS_ID', 'Time'] as const

/** Parses a raw query string keeping `+` as `+` (§2.2): split on `&` and the first `=`, then decodeURIComponent. */
export function parseRawQuery (raw: string): { ok: true, params: Record<string, string> } | { ok: false, message: string } {
  const params: Record<string, string> = {}
  for (const part of raw.replace(/^\?/, '').split('&')) {
    if (part === '') continue
    const i = part.indexOf('=')
    try {
      const key = decodeURIComponent(i < 0 ? part : part.slice(0, i))
      params[key] = i < 0 ? '' : decodeURIComponent(part.slice(i + 1))
    } catch {
      return { ok: false, message: `malformed percent-encoding in "${part.slice(0, 40)}"` }
    }
  }
  return { ok: true, params }
}

const s = (v: unknown): string => (v === undefined || v === null ? '' : String(v))

/**
 * The report fields that enter the token (§2.3). Documented: uplink, downlink_Sent, location.
 * Not documented (notification, downlink_Rejected, multicast summary, join-request uplinks): the
 * candidates of §6.1 and §6.3 — CustomerID + DevEUI, and for a join request empty counters with FPort 0.
 * Returns every candidate; a token matching any of them is accepted.
 */
export function bodyElementCandidates (root: string, r: Record<string, unknown>): string[] {
  switch (root) {
    case 'DevEUI_uplink':
      return [s(r.CustomerID) + s(r.DevEUI) + s(r.FPort ?? 0) + s(r.FCntUp) + s(r.payload_hex)]
    case 'DevEUI_downlink_Sent':
      return [s(r.CustomerID) + s(r.DevEUI) + s(r.FPort ?? 0) + s(r.FCntDn)]
    case 'DevEUI_location':
      return [s(r.CustomerID) + s(r.DevEUI).toLowerCase()]
    default:
      return [s(r.CustomerID) + s(r.DevEUI), s(r.CustomerID) + s(r.DevEUI).toLowerCase(), s(r.CustomerID) + s(r.DevEUI).toUpperCase()]
  }
}

export function canonicalQuery (q: Record<string, string>): string | undefined {
  if (QUERY_ORDER.some(k => q[k] === undefined)) return undefined
  return QUERY_ORDER.map(k => `${k}=${q[k]!}`).join('&')
}

export function sha256Hex (text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

export function uplinkToken (bodyElements: string, query: Record<string, string>, asKey: string): string | undefined {
  const qp = canonicalQuery(query)
  return qp === undefined ? undefined : sha256Hex(bodyElements + qp + asKey)
}

/** Constant-time, case-insensitive comparison of two hex tokens. */
export function tokensEqual (received: string, expected: string): boolean {
  const a = Buffer.from(received.toLowerCase())
  const b = Buffer.from(expected.toLowerCase())
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * Keys to try: as configured, then lower case (§2.2: platform keys are lower-case hex, while
 * Actility's published examples hash a key with an upper-case `E` unchanged).
 */
export function keyVariants (asKey: string): string[] {
  return asKey === asKey.toLowerCase() ? [asKey] : [asKey, asKey.toLowerCase()]
}

export function verifyReportToken (root: string, report: Record<string, unknown>, query: Record<string, string>, asKey: string): boolean {
  const received = query.Token
  if (received === undefined || !/^[0-9a-fA-F]{64}$/.test(received)) return false
  let ok = false
  // Every candidate is computed (no early exit), so timing does not tell which one matched.
  for (const key of keyVariants(asKey)) {
    for (const elements of bodyElementCandidates(root, report)) {
      const expected = uplinkToken(elements, query, key)
      if (expected !== undefined && tokensEqual(received, expected)) ok = true
    }
  }
  return ok
}

export type QueryParam = readonly [string, string]

/** Signs downlink parameters in the order given (§3.3); returns the query string to send. */
export function signDownlinkQuery (params: readonly QueryParam[], asKey: string): { token: string, query: string } {
  const plain = params.map(([k, v]) => `${k}=${v}`).join('&')
  const token = sha256Hex(plain + asKey)
  const query = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&') + `&Token=${token}`
  return { token, query }
}

/** What the LRC checks on a downlink: the token over the received parameters before Token, decoded, in received order. */
export function verifyDownlinkQuery (rawQuery: string, asKey: string): boolean {
  const parts = rawQuery.replace(/^\?/, '').split('&')
  const last = parts[parts.length - 1] ?? ''
  if (!last.startsWith('Token=')) return false
  const parsed = parseRawQuery(parts.slice(0, -1).join('&'))
  if (!parsed.ok) return false
  const plain = parts.slice(0, -1).map(p => {
    const i = p.indexOf('=')
    return `${decodeURIComponent(p.slice(0, i))}=${decodeURIComponent(p.slice(i + 1))}`
  }).join('&')
  return keyVariants(asKey).some(key => tokensEqual(last.slice('Token='.length), sha256Hex(plain + key)))
}

/** The Time format for downlink requests (§3.3 "safest"): UTC, milliseconds, explicit +00:00. */
export function lrcTime (d: Date): string {
  return d.toISOString().replace('Z', '+00:00')
}
