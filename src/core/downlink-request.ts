/**
 * DownlinkRequest (PRODUCT.md §2) as published on `…/down`: one object or an array of them.
 * Validated here once; each bad element becomes its own `down/failed` with reason `invalid`.
 */
import { Type } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { formatPointer } from '../config/issues.js'
import { newId } from '../model/ids.js'
import type { AnyDownlinkRequest } from '../model/events.js'

const RequestSchema = Type.Object({
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  fPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
  object: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  hex: Type.Optional(Type.String({ pattern: '^([0-9a-fA-F]{2})*$', maxLength: 1024 })),
  data: Type.Optional(Type.String({ pattern: '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$', maxLength: 1024 })),
  confirmed: Type.Optional(Type.Boolean()),
  flush: Type.Optional(Type.Boolean()),
  replace: Type.Optional(Type.Boolean()),
  // RFC 3339 date-time, with its zone, as the published schema says (docs/schemas/downlink-request.schema.json).
  expiresAt: Type.Optional(Type.String({ format: 'date-time', maxLength: 64 })),
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 604800 })),
  devEui: Type.Optional(Type.String()),
})

const ajv = new Ajv({ allErrors: true, strict: false })
// ajv-formats is CommonJS with `exports.default`: the default import is the module object.
;(addFormats as unknown as { default: (a: Ajv, formats: string[]) => Ajv }).default(ajv, ['date-time'])
const validate = ajv.compile(RequestSchema)

export type ParsedRequest = { ok: true, request: AnyDownlinkRequest } | { ok: false, id: string, detail: string }

/** `devEui` in a request must name the topic's device (rules address other devices by topic). */
export function parseDownlinkRequests (payload: Buffer, topicDevEui: string): ParsedRequest[] {
  let body: unknown
  try {
    body = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return [{ ok: false, id: newId(), detail: `not JSON: ${(err as Error).message}` }]
  }
  const items = Array.isArray(body) ? body : [body]
  if (items.length === 0) return [{ ok: false, id: newId(), detail: 'empty array' }]
  return items.map(item => checkDownlinkRequest(item, topicDevEui))
}

/** One request object (a rule's, or one element of a publication). */
export function checkDownlinkRequest (item: unknown, topicDevEui: string, now: number = Date.now()): ParsedRequest {
  const id = typeof (item as { id?: unknown })?.id === 'string' && (item as { id: string }).id !== '' ? (item as { id: string }).id : newId()
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return { ok: false, id, detail: 'expected an object' }
  if (!validate(item)) {
    return { ok: false, id, detail: (validate.errors ?? []).slice(0, 3).map(e => `${formatPointer(e.instancePath)} ${e.message ?? ''}`.trim()).join('; ') }
  }
  const r = item as { fPort?: number, hex?: string, data?: string, object?: Record<string, unknown>, confirmed?: boolean, flush?: boolean, replace?: boolean, expiresAt?: string, ttlSeconds?: number, devEui?: string }
  const payloads = (r.hex !== undefined ? 1 : 0) + (r.data !== undefined ? 1 : 0) + (r.object !== undefined ? 1 : 0)
  if (payloads !== 1) return { ok: false, id, detail: 'needs exactly one of hex, data or object' }
  if (r.devEui !== undefined && r.devEui.replace(/[-:]/g, '').toLowerCase() !== topicDevEui) return { ok: false, id, detail: 'devEui differs from the topic\'s device' }
  if (r.expiresAt !== undefined && r.ttlSeconds !== undefined) return { ok: false, id, detail: 'give expiresAt or ttlSeconds, not both' }
  let expiresAt: number | undefined
  if (r.expiresAt !== undefined) {
    expiresAt = Date.parse(r.expiresAt)
    if (Number.isNaN(expiresAt)) return { ok: false, id, detail: `expiresAt "${r.expiresAt}" is not a time with a zone (e.g. 2026-12-01T10:00:00Z)` }
  } else if (r.ttlSeconds !== undefined) {
    expiresAt = now + r.ttlSeconds * 1000
  }
  // Object literals of one shape, not spreads: this runs for every downlink (rules make one per uplink).
  const confirmed = r.confirmed === true
  const flush = r.flush === true || r.replace === true
  if (r.object !== undefined) {
    const request: AnyDownlinkRequest = { id, fPort: r.fPort, object: r.object, confirmed, flush }
    if (expiresAt !== undefined) request.expiresAt = expiresAt
    return { ok: true, request }
  }
  if (r.fPort === undefined) return { ok: false, id, detail: 'fPort is required with hex or data' }
  const bytes = r.hex !== undefined ? Buffer.from(r.hex, 'hex') : Buffer.from(r.data!, 'base64')
  const request: AnyDownlinkRequest = { id, fPort: r.fPort, bytes, confirmed, flush }
  if (expiresAt !== undefined) request.expiresAt = expiresAt
  return { ok: true, request }
}
