/**
 * Certificate revocation lists for tests, made the way a CA does: @peculiar/x509 signs a CRL with
 * the CA's key. (src/tls/certs.ts has set the WebCrypto provider by the time this runs.)
 */
import 'reflect-metadata'
import { webcrypto, createPrivateKey } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import '../../src/tls/certs.js'

export interface CaPair { cert: string, key: string }

/** The serial (hex) of a PEM certificate, as a CRL names it. */
export function serialOf (pem: string): string {
  return new x509.X509Certificate(pem).serialNumber
}

/** A PEM CRL of `ca` revoking `serials`, valid for a day. */
export async function makeCrl (ca: CaPair, serials: string[]): Promise<string> {
  const caCert = new x509.X509Certificate(ca.cert)
  const pkcs8 = createPrivateKey(ca.key).export({ type: 'pkcs8', format: 'der' })
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'])
  const now = Date.now()
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName.toString(),
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 86_400_000),
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as never,
    signingKey: signingKey as never,
    entries: serials.map(serialNumber => ({ serialNumber, revocationDate: new Date(now - 30_000) })),
  })
  // OpenSSL wants the X509 CRL label; the library's own PEM says just CRL.
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n'
}
