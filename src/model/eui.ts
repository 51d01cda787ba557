/**
 * EUI-64 spellings. Normalized topics and JSON use 16 lower-case hex digits with no separators
 * (PRODUCT.md §1); app-connect speaks dashed lower case (multitech-app-connect.md §0); some
 * firmware and the accessory cards use colons or upper case.
 */
/** Any spelling: 16 hex digits, optionally separated by `-` or `:` (for JSON Schemas: a pattern string). */
export const EUI_PATTERN = '^([0-9a-fA-F]{2}[-:]?){7}[0-9a-fA-F]{2}$'
/** The normalized spelling: 16 lower-case hex digits. */
export const NORMALIZED_EUI_PATTERN = '^[0-9a-f]{16}$'

const NORMALIZED = new RegExp(NORMALIZED_EUI_PATTERN)
const BARE = /^[0-9a-f]{16}$/i

/** Already in the normalized spelling (16 lower-case hex digits). */
export function isNormalizedEui (value: string): boolean {
  return NORMALIZED.test(value)
}

/** 16 hex digits of either case without separators (ThingPark's spelling). */
export function isBareEui (value: string): boolean {
  return BARE.test(value)
}

/** The value of a hex digit's char code, or -1. */
function hexDigit (c: number): number {
  if (c >= 48 && c <= 57) return c - 48 // 0-9
  if (c >= 97 && c <= 102) return c - 87 // a-f
  if (c >= 65 && c <= 70) return c - 55 // A-F
  return -1
}

const HEX_DIGITS = '0123456789abcdef'

/**
 * `00-80-00-FF-FF-00-00-03` → `008000ffff000003`; undefined when it is not an EUI-64 (EUI_PATTERN:
 * eight pairs of hex digits, each of the first seven optionally followed by `-` or `:`). One pass
 * without regular expressions: every uplink's DevEUI and topic go through it.
 */
export function normalizeEui (value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length < 16 || value.length > 23) return undefined
  // Already normalized (the common case on the hot path): no copies.
  if (value.length === 16 && NORMALIZED.test(value)) return value
  // Devices repeat: each spelling is worked out once.
  return euiSpellings(value)
}

const SPELLINGS_MAX = 20_000

/**
 * `parse`, remembered per input (devices and Conduits repeat): a few thousand spellings in
 * practice, and at most SPELLINGS_MAX before the memory starts over.
 */
function remembered<T> (parse: (value: string) => T): (value: string) => T {
  const seen = new Map<string, T>()
  return value => {
    if (seen.has(value)) return seen.get(value) as T
    const out = parse(value)
    if (seen.size >= SPELLINGS_MAX) seen.clear()
    seen.set(value, out)
    return out
  }
}

const euiSpellings = remembered((value: string) => parseEui(value))

function parseEui (value: string): string | undefined {
  let out = ''
  let i = 0
  for (let pair = 0; pair < 8; pair++) {
    const hi = hexDigit(value.charCodeAt(i))
    const lo = hexDigit(value.charCodeAt(i + 1))
    if (hi < 0 || lo < 0) return undefined
    out += HEX_DIGITS[hi]! + HEX_DIGITS[lo]!
    i += 2
    if (pair < 7 && (value[i] === '-' || value[i] === ':')) i++
  }
  return i === value.length ? out : undefined
}

/** `008000ffff000003` → `00-80-00-ff-ff-00-00-03`, app-connect's spelling. */
export const dashedEui: (normalized: string) => string = remembered(spell)

function spell (n: string): string {
  return `${n.slice(0, 2)}-${n.slice(2, 4)}-${n.slice(4, 6)}-${n.slice(6, 8)}-${n.slice(8, 10)}-${n.slice(10, 12)}-${n.slice(12, 14)}-${n.slice(14, 16)}`
}

export function isEui (value: string): boolean {
  return normalizeEui(value) !== undefined
}

const UUID_32 = /^[0-9a-f]{32}$/i
const UUID_DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * A Conduit GW-UUID in either app-connect spelling (v1.0: 32 upper-case hex digits; v1.1: dashed
 * lower case), as the dashed lower-case form used for gateway ids in normalized topics.
 */
/** Conduits repeat: each spelling is worked out once. */
export const normalizeGatewayId: (value: string) => string | undefined = remembered(parseGatewayId)

function parseGatewayId (value: string): string | undefined {
  if (!UUID_32.test(value) && !UUID_DASHED.test(value)) return undefined
  const hex = value.replace(/-/g, '').toLowerCase()
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export function isGatewayUuid (value: string): boolean {
  return UUID_32.test(value) || UUID_DASHED.test(value)
}
