// Why this module exists: TLS for the broker must work out of the box, without openssl on the
// host and without asking users to run a PKI. @peculiar/x509 over Node's WebCrypto builds the
// certificates in-process, so there is no shelling out and no hand-written ASN.1 to get wrong.
// Why RSA 2048 with SHA-256 and not EC: MultiTech Conduits ship old OpenSSL / Python ssl builds,
// and RSA PKCS#1 v1.5 is the one combination every one of them accepts.
// Why PKCS#8 PEM: Node, mosquitto and Python ssl all read "BEGIN PRIVATE KEY" without a passphrase.

import { webcrypto, randomBytes, createPrivateKey, createPublicKey } from 'node:crypto'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { access, readFile } from 'node:fs/promises'
import { writeFileAtomic } from '../util/atomic-write.js'

// @peculiar/x509 resolves its ASN.1 providers through tsyringe, which needs the Reflect metadata
// polyfill loaded first (its README asks for reflect-metadata).
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'

// The library types its provider as the DOM `Crypto`, which this project's libs leave out; naming the
// parameter type keeps the cast valid whether or not the DOM lib is present.
type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>
x509.cryptoProvider.set(webcrypto as unknown as X509Crypto)

const subtle = webcrypto.subtle

export interface PemPair { cert: string, key: string }
export interface Validity { notBefore?: Date, notAfter?: Date }

const RSA_ALG = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
} as const

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE
// Backdated so that a peer whose clock is a little behind still accepts a certificate made just now.
const CLOCK_SKEW = 5 * MINUTE
const CA_LIFETIME = 3652 * DAY
// 825 days is the longest leaf lifetime Apple platforms accept; staying under it avoids surprises.
const LEAF_LIFETIME = 825 * DAY

export const DEV_SERVER_HOSTS: string[] = ['localhost', '127.0.0.1', '::1']

export interface DevCertPaths { ca: string, caKey: string, cert: string, key: string }

const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
// These would overwrite the CA or the server pair written by ensureCertificates.
const RESERVED_NAMES = new Set(['ca', 'server'])

interface Signer { cert: x509.X509Certificate, key: webcrypto.CryptoKey, signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams }

/** 16 random bytes, first byte forced into 0x01..0x7f so the DER INTEGER is positive and minimal. */
function randomSerial (): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) || 0x01
  return bytes.toString('hex')
}

function validity (opts: Validity | undefined, lifetime: number, cap?: Date): { notBefore: Date, notAfter: Date } {
  const notBefore = opts?.notBefore ?? new Date(Date.now() - CLOCK_SKEW)
  let notAfter = opts?.notAfter
  if (notAfter === undefined) {
    notAfter = new Date(notBefore.getTime() + lifetime)
    // A leaf outliving its CA fails verification anyway; cap the default so the dates tell the truth.
    if (cap !== undefined && notAfter > cap) notAfter = cap
  }
  if (notAfter <= notBefore) throw new RangeError('certificate notAfter must be later than notBefore')
  return { notBefore, notAfter }
}

async function generateRsaKeys (): Promise<webcrypto.CryptoKeyPair> {
  return await subtle.generateKey(RSA_ALG, true, ['sign', 'verify'])
}

/** PEM files end with a newline: some old PEM readers and `cat a.crt b.crt > chain` expect it. */
function pemLine (pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`
}

async function exportKeyPem (key: webcrypto.CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key)
  return pemLine(x509.PemConverter.encode(der, 'PRIVATE KEY'))
}

/** A JSON name, so a CN containing ',' or '=' is taken literally instead of parsed as a DN string. */
function cnName (commonName: string): x509.JsonName {
  if (commonName.length === 0) throw new RangeError('certificate commonName must not be empty')
  return [{ CN: [commonName] }]
}

/** Loads a CA pair for signing; accepts RSA or EC keys so a user-supplied CA also works. */
async function loadSigner (ca: PemPair): Promise<Signer> {
  let cert: x509.X509Certificate
  try {
    cert = new x509.X509Certificate(ca.cert)
  } catch (err) {
    throw new Error('the CA certificate is not a valid PEM certificate', { cause: err })
  }
  let keyObject
  try {
    keyObject = createPrivateKey(ca.key)
  } catch (err) {
    throw new Error('the CA key is not a valid unencrypted PEM private key', { cause: err })
  }
  const spki = createPublicKey(keyObject).export({ type: 'spki', format: 'der' })
  if (!Buffer.from(cert.publicKey.rawData).equals(spki)) {
    throw new Error('the CA key does not belong to the CA certificate')
  }
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' })
  const type = keyObject.asymmetricKeyType
  if (type === 'rsa') {
    const key = await subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'])
    return { cert, key, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } }
  }
  if (type === 'ec') {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : undefined
    if (namedCurve === undefined) throw new Error(`the CA key uses an unsupported EC curve (${curve ?? 'unknown'})`)
    const hash = namedCurve === 'P-256' ? 'SHA-256' : namedCurve === 'P-384' ? 'SHA-384' : 'SHA-512'
    const key = await subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve }, false, ['sign'])
    return { cert, key, signingAlgorithm: { name: 'ECDSA', hash } as webcrypto.EcdsaParams }
  }
  throw new Error(`the CA key type ${type ?? 'unknown'} is not supported (use RSA or EC)`)
}

/** Prefer the CA's own SKI so the AKI matches even for a CA made by another tool with another key-id method. */
async function authorityKeyId (caCert: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension)
  if (ski !== null) return new x509.AuthorityKeyIdentifierExtension(ski.keyId)
  return await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey)
}

async function createLeaf (ca: PemPair, commonName: string, extensions: x509.Extension[], opts: Validity | undefined): Promise<PemPair> {
  const signer = await loadSigner(ca)
  const keys = await generateRsaKeys()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: cnName(commonName),
    issuer: signer.cert.subjectName,
    ...validity(opts, LEAF_LIFETIME, signer.cert.notAfter),
    publicKey: keys.publicKey,
    signingKey: signer.key,
    signingAlgorithm: signer.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...extensions,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await authorityKeyId(signer.cert),
    ],
  })
  return { cert: pemLine(cert.toString('pem')), key: await exportKeyPem(keys.privateKey) }
}

export async function createCa (opts?: { commonName?: string } & Validity): Promise<PemPair> {
  const keys = await generateRsaKeys()
  const name = cnName(opts?.commonName ?? 'lorabridge development CA')
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: name,
    issuer: name,
    ...validity(opts, CA_LIFETIME),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  return { cert: pemLine(cert.toString('pem')), key: await exportKeyPem(keys.privateKey) }
}

/** The IPv6 parser in @peculiar/asn1-x509 does not accept an embedded dotted quad (::ffff:1.2.3.4). */
function ipv6WithoutDottedQuad (ip: string): string {
  const m = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip)
  if (m === null) return ip
  const [a, b, c, d] = [m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number]
  return `${m[1]!}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
}

export async function createServerCert (ca: PemPair, opts: { hosts: string[], commonName?: string } & Validity): Promise<PemPair> {
  const hosts = opts.hosts.map(h => h.trim()).filter(h => h.length > 0)
  if (hosts.length === 0) throw new RangeError('createServerCert needs at least one host')
  const names: x509.JsonGeneralName[] = hosts.map(h => {
    const family = isIP(h)
    if (family === 4) return { type: 'ip', value: h }
    if (family === 6) return { type: 'ip', value: ipv6WithoutDottedQuad(h) }
    return { type: 'dns', value: h }
  })
  return await createLeaf(ca, opts.commonName ?? hosts[0]!, [
    new x509.SubjectAlternativeNameExtension(names),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
  ], opts)
}

export async function createClientCert (ca: PemPair, opts: { commonName: string } & Validity): Promise<PemPair> {
  return await createLeaf(ca, opts.commonName, [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
  ], opts)
}

export function devCertPaths (dir: string): DevCertPaths {
  return {
    ca: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  }
}

async function exists (file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}

/** Key first, certificate last: a certificate on disk then always has its key next to it. */
async function writePair (pair: PemPair, certFile: string, keyFile: string): Promise<void> {
  await writeFileAtomic(keyFile, pair.key, 0o600)
  await writeFileAtomic(certFile, pair.cert, 0o644)
}

/** Both present, both absent, or a clear error: replacing half a pair would silently break trust. */
async function pairState (certFile: string, keyFile: string, what: string): Promise<boolean> {
  const [c, k] = await Promise.all([exists(certFile), exists(keyFile)])
  if (c && k) return true
  if (!c && !k) return false
  const [present, missing] = c ? [certFile, keyFile] : [keyFile, certFile]
  throw new Error(`${what}: ${present} exists but ${missing} does not; restore it or remove ${present} to have both generated again`)
}

/** Only names that are valid in a DNS SAN; a hostname with spaces or non-ASCII would make a bad certificate. */
function usableHostname (): string | undefined {
  const h = hostname().trim()
  return /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(h) ? h : undefined
}

function dedupeHosts (hosts: string[]): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  for (const raw of hosts) {
    const h = raw.trim()
    if (h.length === 0) continue
    const key = h.toLowerCase()
    if (seen.has(key)) continue
    seen.add(key)
    out.push(h)
  }
  return out
}

/**
 * Creates ca.crt/ca.key/server.crt/server.key in dir when absent (mkdir -p, keys mode 0600, written
 * atomically: temp file + rename). Reuses an existing CA if ca.crt+ca.key exist but the server pair does
 * not. Returns paths and which files it created. `hosts` are added to DEV_SERVER_HOSTS (deduplicated),
 * and os.hostname() is added too.
 *
 * An existing complete server pair is never replaced, even when the CA had to be created: it may be a
 * certificate from a real CA, with the dev CA only used for client certificates.
 */
export async function ensureCertificates (dir: string, opts?: { hosts?: string[] }): Promise<{ paths: DevCertPaths, created: string[] }> {
  const paths = devCertPaths(dir)
  const created: string[] = []
  const haveCa = await pairState(paths.ca, paths.caKey, 'CA')
  const haveServer = await pairState(paths.cert, paths.key, 'server certificate')

  let ca: PemPair
  if (haveCa) {
    if (haveServer) return { paths, created }
    ca = { cert: await readFile(paths.ca, 'utf8'), key: await readFile(paths.caKey, 'utf8') }
  } else {
    ca = await createCa()
    await writePair(ca, paths.ca, paths.caKey)
    created.push(paths.ca, paths.caKey)
  }

  if (!haveServer) {
    const host = usableHostname()
    const hosts = dedupeHosts([...DEV_SERVER_HOSTS, ...(opts?.hosts ?? []), ...(host !== undefined ? [host] : [])])
    const server = await createServerCert(ca, { hosts })
    await writePair(server, paths.cert, paths.key)
    created.push(paths.cert, paths.key)
  }
  return { paths, created }
}

/**
 * Writes NAME.crt/NAME.key into dir signed by dir/ca.crt + dir/ca.key (error with a clear message if
 * the CA is missing). NAME must match /^[A-Za-z0-9][A-Za-z0-9._-]*$/ (throw otherwise). Returns the
 * paths. Optional validity. Refuses to overwrite existing files unless `force`.
 */
export async function writeClientCert (dir: string, name: string, opts?: Validity & { force?: boolean }): Promise<{ cert: string, key: string }> {
  if (!CLIENT_NAME.test(name)) {
    throw new RangeError(`client certificate name ${JSON.stringify(name)} is not allowed: use letters, digits, '.', '_' and '-', starting with a letter or digit`)
  }
  if (RESERVED_NAMES.has(name.toLowerCase())) {
    throw new RangeError(`client certificate name ${JSON.stringify(name)} is reserved: it would replace the ${name.toLowerCase()} files in ${dir}`)
  }
  const paths = devCertPaths(dir)
  if (!(await exists(paths.ca)) || !(await exists(paths.caKey))) {
    throw new Error(`no CA in ${dir}: ${paths.ca} and ${paths.caKey} are both needed to sign a client certificate (create them with ensureCertificates first)`)
  }
  const out = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) }
  if (opts?.force !== true) {
    const existing = []
    for (const f of [out.cert, out.key]) if (await exists(f)) existing.push(f)
    if (existing.length > 0) throw new Error(`refusing to overwrite ${existing.join(' and ')} (use force to replace)`)
  }
  const ca = { cert: await readFile(paths.ca, 'utf8'), key: await readFile(paths.caKey, 'utf8') }
  const pair = await createClientCert(ca, { commonName: name, notBefore: opts?.notBefore, notAfter: opts?.notAfter })
  await writePair(pair, out.cert, out.key)
  return out
}
