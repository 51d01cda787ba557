import * as crypto from 'node:crypto'
import { createHash, randomUUID } from 'node:crypto'

/** SHA-256 in one call where Node has it (20.12+): no Hash object per id. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash
const sha256 = (text: string): Buffer => oneShot !== undefined ? oneShot('sha256', text, 'buffer') : createHash('sha256').update(text).digest()

/**
 * Event ids derived from what identifies a frame, so that every duplicate of it (a retained
 * replay, a QoS 1 redelivery, a second Conduit, another instance) carries the same id, and a
 * subscriber can deduplicate on its own too. Formatted as a UUID (version 8, RFC 9562 custom).
 */
export function frameId (...parts: Array<string | number | undefined>): string {
  const h = sha256(parts.map(p => p ?? '').join('|'))
  h[6] = (h[6]! & 0x0f) | 0x80
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`
}

export function newId (): string {
  return randomUUID()
}
