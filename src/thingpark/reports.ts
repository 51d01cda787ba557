/**
 * ThingPark report bodies (thingpark-tunnel.md §1): one root key naming the report, in JSON (typed:
 * numbers are numbers), JSON untyped (every scalar a string) or XML (namespace
 * http://uri.actility.com/lora). Whatever the content type, a report is read into the same
 * scalar values, so the normalized output is identical (§1.8: accept string | number everywhere).
 */
import { XMLParser } from 'fast-xml-parser'

export const KNOWN_REPORTS = ['DevEUI_uplink', 'DevEUI_notification', 'DevEUI_location', 'DevEUI_downlink_Sent', 'DevEUI_downlink_Rejected', 'DevEUI_multicast_summary'] as const
export type KnownReport = typeof KNOWN_REPORTS[number]

export type ContentKind = 'json' | 'xml'

export type Parsed = { ok: true, root: string, report: Record<string, unknown> } | { ok: false, message: string }

/** `application/json`, `text/json`, `application/xml`, `text/xml`, `application/*+xml`; undefined for anything else. */
export function contentKind (header: string | undefined): ContentKind | undefined {
  const type = (header ?? '').split(';')[0]!.trim().toLowerCase()
  if (type === 'application/json' || type === 'text/json') return 'json'
  if (type === 'application/xml' || type === 'text/xml' || /^application\/[a-z0-9.+-]+\+xml$/.test(type)) return 'xml'
  return undefined
}

const xml = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false, // keep every scalar a string, as untyped JSON
  trimValues: true,
  processEntities: false,
  isArray: (name: string) => name === 'Lrr',
})

function single (doc: unknown): Parsed {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, message: 'the body is not an object' }
  const keys = Object.keys(doc).filter(k => k !== '?xml')
  if (keys.length !== 1) return { ok: false, message: `expected one root element, found ${keys.length}` }
  const root = keys[0]!
  const report = (doc as Record<string, unknown>)[root]
  if (report === null || typeof report !== 'object' || Array.isArray(report)) return { ok: false, message: `${root.slice(0, 100)} is not an object` }
  return { ok: true, root, report: report as Record<string, unknown> }
}

/** Parser messages can quote the input (62 KB of it for unclosed XML tags): keep answers and log lines short. */
function shortError (err: unknown): string {
  const m = err instanceof Error ? err.message : String(err)
  return m.length > 200 ? `${m.slice(0, 200)}…` : m
}

export function parseReport (body: Buffer, kind: ContentKind): Parsed {
  const text = body.toString('utf8')
  if (kind === 'json') {
    try {
      return single(JSON.parse(text))
    } catch (err) {
      return { ok: false, message: `not JSON: ${shortError(err)}` }
    }
  }
  // ThingPark sends no DTD; one here is an entity-expansion attack ("billion laughs") or a mistake.
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) return { ok: false, message: 'XML with a DTD or entity declarations is refused' }
  try {
    return single(xml.parse(text, true))
  } catch (err) {
    return { ok: false, message: `not XML: ${shortError(err)}` }
  }
}

/**
 * Reads report fields, accepting a number or its string form for numeric fields, and collecting
 * every type error with the field's name.
 */
export class FieldReader {
  readonly errors: string[] = []
  constructor (private readonly r: Record<string, unknown>) {}

  has (name: string): boolean { return this.r[name] !== undefined && this.r[name] !== '' }

  str (name: string, required = false): string | undefined {
    const v = this.r[name]
    if (v === undefined || v === null || v === '') { if (required) this.errors.push(`${name} is missing`); return undefined }
    if (typeof v === 'string') return v
    if (typeof v === 'number' && Number.isFinite(v)) return String(v)
    this.errors.push(`${name} must be a string`)
    return undefined
  }

  num (name: string, required = false): number | undefined {
    const v = this.r[name]
    if (v === undefined || v === null || v === '') { if (required) this.errors.push(`${name} is missing`); return undefined }
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN
    if (!Number.isFinite(n)) { this.errors.push(`${name} must be a number`); return undefined }
    return n
  }

  int (name: string, required = false, min = -Infinity, max = Infinity): number | undefined {
    const n = this.num(name, required)
    if (n === undefined) return undefined
    if (!Number.isInteger(n) || n < min || n > max) { this.errors.push(`${name} must be an integer in [${min}, ${max}]`); return undefined }
    return n
  }

  hex (name: string, required = false, length?: number): string | undefined {
    const v = this.str(name, required)
    if (v === undefined) return undefined
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(v) || (length !== undefined && v.length !== length)) { this.errors.push(`${name} must be ${length !== undefined ? `${length} ` : ''}hex digits`); return undefined }
    return v.toLowerCase()
  }

  /** `Lrrs.Lrr`: an array in JSON; one `<Lrr>` in XML is still wrapped (isArray above). */
  lrrs (): Array<FieldReader> {
    const lrrs = this.r.Lrrs
    if (lrrs === undefined || lrrs === '') return []
    const list = (lrrs as { Lrr?: unknown })?.Lrr
    const items = Array.isArray(list) ? list : list !== undefined ? [list] : []
    if (items.some(i => i === null || typeof i !== 'object')) { this.errors.push('Lrrs.Lrr must hold objects'); return [] }
    return items.map(i => new FieldReader(i as Record<string, unknown>))
  }

  /** ISO-8601 time, tolerated when malformed (§1.8: one Actility sample has an impossible time). */
  time (name: string): string | undefined {
    const v = this.str(name)
    if (v === undefined) return undefined
    const t = Date.parse(v)
    return Number.isNaN(t) ? undefined : new Date(t).toISOString()
  }
}
