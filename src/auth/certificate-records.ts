/**
 * Which client certificates may authenticate a user, beyond "verified and its CN is the name".
 * A CA signs what it is asked to, and a name can be removed and added again; so:
 *  - when certificates are recorded for the name (`certs client NAME`, `users add --cert/--fingerprint`),
 *    only those authenticate it (pinning by SHA-256 of the DER certificate);
 *  - otherwise, when the user has a `created` time (every user `users add` makes), a certificate
 *    issued (notBefore) before that time is refused: it was made for an earlier holder of the name.
 *    Users written by older versions have no `created` and keep the CN-only rule.
 * `users remove` drops the name's records, so re-adding the name starts with nothing recorded.
 */
import { X509Certificate } from 'node:crypto'
import type { CertificateFacts } from '../tls/server-options.js'
import type { RecordedCertificate, User } from './users-file.js'

/** The record of a PEM certificate: SHA-256 (hex, lowercase), serial and expiry. */
export function recordOfCertificate (pem: string | Buffer): RecordedCertificate {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(pem)
  } catch (err) {
    throw new Error('not a PEM or DER certificate', { cause: err })
  }
  return {
    sha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    serial: cert.serialNumber.toUpperCase(),
    notAfter: new Date(cert.validTo).toISOString(),
  }
}

/** A SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` or Node print it (colons optional, any case). */
export function recordOfFingerprint (fingerprint: string): RecordedCertificate {
  const hex = fingerprint.replace(/^sha256\s*fingerprint\s*=\s*/i, '').replace(/:/g, '').toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`"${fingerprint}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`)
  return { sha256: hex }
}

/** Adds `record` to `list` unless the same certificate is there already. */
export function withRecord (list: RecordedCertificate[] | undefined, record: RecordedCertificate): RecordedCertificate[] {
  const others = (list ?? []).filter(r => r.sha256 !== record.sha256)
  return [...others, record]
}

/** Why this verified certificate may not authenticate `user`, or undefined when it may. */
export function certificateRecordRefusal (user: User, cert: CertificateFacts | undefined): string | undefined {
  const recorded = user.certificates ?? []
  const created = user.created !== undefined ? Date.parse(user.created) : undefined
  if (recorded.length === 0 && created === undefined) return undefined
  if (cert === undefined) return `the certificate for "${user.name}" could not be read`
  if (recorded.length > 0) {
    return recorded.some(r => r.sha256 === cert.sha256)
      ? undefined
      : `certificate sha256 ${cert.sha256} (serial ${cert.serial}) is not one recorded for "${user.name}"`
  }
  // Certificate dates have whole seconds; the creation time is compared at the same precision.
  if (created !== undefined && cert.notBefore.getTime() < Math.floor(created / 1000) * 1000) {
    return `certificate (serial ${cert.serial}) was issued ${cert.notBefore.toISOString()}, before "${user.name}" was added (${user.created ?? ''}); record it with \`users add --cert\``
  }
  return undefined
}
