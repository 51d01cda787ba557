import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Config } from '../config/schema.js'
import { ensureCertificates, writeClientCert } from '../tls/certs.js'
import { readUsersDocument, writeUsersDocument } from '../auth/users-file.js'
import { recordOfCertificate, withRecord } from '../auth/certificate-records.js'

export async function certsInit (config: Config, opts: { dir?: string, host: string[] }): Promise<void> {
  const dir = opts.dir !== undefined ? resolve(opts.dir) : config.dataDir
  const { paths, created } = await ensureCertificates(dir, { hosts: opts.host })
  process.stdout.write(created.length > 0
    ? `created ${created.join(', ')}\n`
    : `certificates already present in ${dir} (remove server.crt/server.key to re-issue)\n`)
  process.stdout.write(`CA for clients: ${paths.ca}\n`)
}

export async function certsClient (config: Config, name: string, opts: { dir?: string, days: number, force?: boolean }): Promise<void> {
  const dir = opts.dir !== undefined ? resolve(opts.dir) : config.dataDir
  if (!Number.isFinite(opts.days) || opts.days <= 0) throw new Error('--days must be a positive number')
  const notAfter = new Date(Date.now() + opts.days * 86_400_000)
  // A re-issue (--force) retires the certificate it overwrites: it no longer authenticates the name.
  const replaced = opts.force === true ? await readFile(resolve(dir, `${name}.crt`)).then(recordOfCertificate, () => undefined) : undefined
  const files = await writeClientCert(dir, name, { notAfter, force: opts.force === true })
  // Recorded for the name whether or not the user exists yet (`users add` usually comes next): once a
  // name has recorded certificates, only those authenticate it (docs/security.md).
  const record = recordOfCertificate(await readFile(files.cert))
  const usersFile = config.auth.usersFile as string
  const doc = await readUsersDocument(usersFile)
  const kept = (doc.certificates.get(name) ?? []).filter(r => r.sha256 !== replaced?.sha256)
  doc.certificates.set(name, withRecord(kept, record))
  await writeUsersDocument(usersFile, doc)
  process.stdout.write(`created ${files.cert} and ${files.key} (CN=${name}, serial ${record.serial ?? '?'})\n`)
  process.stdout.write(`recorded its SHA-256 ${record.sha256} for "${name}" in ${usersFile}${replaced !== undefined ? ' (the certificate it replaces no longer authenticates it)' : ''}\n`)
  if (!doc.users.has(name)) process.stdout.write(`add the user with: lorabridge users add ${name} --role …\n`)
}
