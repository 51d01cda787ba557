import { resolve } from 'node:path'
import type { Config } from '../config/schema.js'
import { ensureCertificates, writeClientCert } from '../tls/certs.js'

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
  const files = await writeClientCert(dir, name, { notAfter, force: opts.force === true })
  process.stdout.write(`created ${files.cert} and ${files.key} (CN=${name}); add the user with: lorabridge users add ${name} --role …\n`)
}
