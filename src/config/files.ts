/**
 * The files a configuration names (certificates, keys, CA bundles, CRLs) must exist, be readable
 * and hold what their option says: `config check` and `start` report each problem with the option's
 * path and the file's, instead of a start that falls back or dies half-way (issue 17).
 */
import { readFileSync, statSync } from 'node:fs'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { isAbsolute, resolve } from 'node:path'
import type { Config } from './schema.js'
import type { ConfigIssue } from './issues.js'

type Kind = 'certificate' | 'key' | 'ca' | 'crl'

interface Reference { path: string, file: string, kind: Kind }

const WHAT: Record<Kind, string> = { certificate: 'certificate', key: 'private key', ca: 'CA bundle', crl: 'CRL' }

function crlList (v: string | readonly string[] | undefined): readonly string[] {
  return v === undefined ? [] : typeof v === 'string' ? [v] : v
}

/** Every file the configuration names, with the option naming it; relative TLS paths are under dataDir. */
export function referencedFiles (c: Config): Reference[] {
  const under = (p: string): string => isAbsolute(p) ? p : resolve(c.dataDir, p)
  const refs: Reference[] = []
  const tls = (prefix: string, t: { cert?: string | undefined, key?: string | undefined, ca?: string | undefined, crl?: string | readonly string[] | undefined } | undefined): void => {
    if (t === undefined) return
    if (t.cert !== undefined) refs.push({ path: `${prefix}.cert`, file: under(t.cert), kind: 'certificate' })
    if (t.key !== undefined) refs.push({ path: `${prefix}.key`, file: under(t.key), kind: 'key' })
    if (t.ca !== undefined) refs.push({ path: `${prefix}.ca`, file: under(t.ca), kind: 'ca' })
    const crls = crlList(t.crl)
    crls.forEach((f, i) => refs.push({ path: typeof t.crl === 'string' ? `${prefix}.crl` : `${prefix}.crl[${i}]`, file: under(f), kind: 'crl' }))
  }
  tls('mqtt.tls', c.mqtt.tls)
  c.http.listeners.forEach((l, i) => { tls(`http.listeners[${i}].tls`, l.tls) })
  // redis.tls paths are already absolute (resolved under dataDir by the loader).
  tls('redis.tls', c.redis?.tls)
  return refs
}

/** Why the content is not what the option wants, or undefined. */
function contentProblem (text: Buffer, kind: Kind): string | undefined {
  try {
    if (kind === 'certificate' || kind === 'ca') {
      if (!text.includes('-----BEGIN CERTIFICATE-----')) return 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)'
      new X509Certificate(text) // parsing it is the check (OpenSSL says what is wrong)
    } else if (kind === 'key') {
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text.toString('latin1'))) return 'holds no PEM private key (-----BEGIN … PRIVATE KEY-----)'
      createPrivateKey(text)
    } else if (!text.includes('-----BEGIN X509 CRL-----')) {
      return 'holds no PEM certificate revocation list (-----BEGIN X509 CRL-----)'
    }
  } catch (err) {
    return `is not a valid PEM ${WHAT[kind]}: ${(err as Error).message}`
  }
  return undefined
}

function fileProblem (ref: Reference): string | undefined {
  let text: Buffer
  try {
    if (statSync(ref.file).isDirectory()) return `${ref.file} is a directory, not a ${WHAT[ref.kind]} file`
    text = readFileSync(ref.file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return `${WHAT[ref.kind]} file ${ref.file} does not exist: fix the path (relative paths are under dataDir)${ref.kind === 'certificate' || ref.kind === 'key' || ref.kind === 'ca' ? ', or remove the option to use the development certificates' : ''}`
    if (code === 'EACCES') return `${WHAT[ref.kind]} file ${ref.file} is not readable by this user: fix its permissions`
    return `cannot read ${WHAT[ref.kind]} file ${ref.file}: ${(err as Error).message}`
  }
  const problem = contentProblem(text, ref.kind)
  return problem === undefined ? undefined : `${ref.file} ${problem}`
}

/** A certificate and the key next to it must be one pair: OpenSSL would refuse them at start. */
function pairProblem (cert: Reference, key: Reference): string | undefined {
  try {
    if (new X509Certificate(readFileSync(cert.file)).checkPrivateKey(createPrivateKey(readFileSync(key.file)))) return undefined
  } catch {
    return undefined // reported for the file itself
  }
  return `${key.file} is not the private key of the certificate ${cert.file} (${cert.path})`
}

/** One issue per referenced file that is missing, unreadable or not the PEM its option wants. */
export function fileIssues (c: Config): ConfigIssue[] {
  const refs = referencedFiles(c)
  const bad = new Set<string>()
  const issues = refs.flatMap(ref => {
    const message = fileProblem(ref)
    if (message !== undefined) bad.add(ref.path)
    return message === undefined ? [] : [{ path: ref.path, message, code: 'LB_ERR_TLS_FILE' as const }]
  })
  for (const key of refs.filter(r => r.kind === 'key' && !bad.has(r.path))) {
    const cert = refs.find(r => r.kind === 'certificate' && r.path === key.path.replace(/\.key$/, '.cert'))
    if (cert === undefined || bad.has(cert.path)) continue
    const message = pairProblem(cert, key)
    if (message !== undefined) issues.push({ path: key.path, message, code: 'LB_ERR_TLS_FILE' })
  }
  return issues
}
