/**
 * Re-reads certificate revocation lists when they change and applies them to running TLS servers,
 * so that revoking a certificate does not need a restart. Polling a few stat() calls every 2 s is
 * cheap and, unlike fs.watch, survives the rename a CA tool does when it publishes a new CRL.
 */
import { readFile, stat } from 'node:fs/promises'
import { createSecureContext, type Server as TlsServer, type TlsOptions } from 'node:tls'
import { LorabridgeError } from '../errors.js'
import type { Logger } from '../log.js'

export const CRL_CHECK_MS = 2000

/** OpenSSL's own check of the settings, at start-up: a typo in a cipher list must not wait for the first client. */
export function checkSecureContext (options: TlsOptions): void {
  try {
    createSecureContext(options)
  } catch (err) {
    throw new LorabridgeError('LB_ERR_TLS_SETTINGS', `TLS settings refused by OpenSSL (ciphers, ecdhCurve, CRL, certificate/key): ${(err as Error).message}`, { cause: err })
  }
}


export class CrlWatcher {
  private readonly servers = new Map<TlsServer, Logger>()
  private timer: NodeJS.Timeout | undefined
  private stamps: string | undefined
  private checking = false

  constructor (private readonly files: string[], private options: TlsOptions) {}

  attach (server: TlsServer, log: Logger): void {
    this.servers.set(server, log)
    server.once('close', () => {
      this.servers.delete(server)
      if (this.servers.size === 0 && this.timer !== undefined) { clearInterval(this.timer); this.timer = undefined }
    })
    if (this.timer === undefined) {
      void this.stampsNow().then(s => { this.stamps ??= s })
      this.timer = setInterval(() => { void this.check() }, CRL_CHECK_MS)
      this.timer.unref()
    }
  }

  private async stampsNow (): Promise<string> {
    const stats = await Promise.all(this.files.map(async f => await stat(f).then(s => `${s.mtimeMs}:${s.size}:${s.ino}`, () => 'missing')))
    return stats.join('|')
  }

  private async check (): Promise<void> {
    if (this.checking) return
    this.checking = true
    try {
      const stamps = await this.stampsNow()
      if (stamps === this.stamps) return
      this.stamps = stamps
      let options: TlsOptions
      try {
        const crl = await Promise.all(this.files.map(async f => await readFile(f)))
        options = { ...this.options, crl }
        checkSecureContext(options)
      } catch (err) {
        // Keep the last good list: a half-written CRL must not let revoked certificates in or lock everyone out.
        for (const log of new Set(this.servers.values())) log.error({ code: 'LB_ERR_TLS_FILE', files: this.files, err }, 'CRL not reloaded; keeping the previous one')
        return
      }
      this.options = options
      for (const [server, log] of this.servers) {
        server.setSecureContext(options)
        log.info({ files: this.files }, 'CRL reloaded')
      }
    } finally {
      this.checking = false
    }
  }
}
