/**
 * Network servers' endpoints read their bodies as bytes and parse them themselves: app-connect
 * sends `Content-type: application/json` with an empty body and `Accept: text/plain` while
 * expecting JSON; ThingPark's token is computed from the body's fields, JSON or XML alike.
 */
import type { FastifyInstance } from 'fastify'

/** Every body in this scope arrives as a Buffer, whatever its Content-Type. */
export function takeRawBodies (scope: FastifyInstance, bodyLimit?: number): void {
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser('*', { parseAs: 'buffer', ...(bodyLimit !== undefined ? { bodyLimit } : {}) }, (_req, body, done) => { done(null, body) })
}

/** The request's body as taken by takeRawBodies (empty when there was none). */
export function rawBody (body: unknown): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0)
}
