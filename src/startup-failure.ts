/**
 * Why the daemon could not start, said once for a person: a stable code, what failed (with the
 * configuration path it comes from), and the fix — the line `lorabridge start` ends with on stderr,
 * instead of a stack trace that repeats the message (issue 17).
 */
import type { Config } from './config/schema.js'
import { LorabridgeError, type ErrorCode } from './errors.js'

export interface StartupFailure {
  code: ErrorCode
  /** What failed, with the option or listener it comes from. */
  message: string
  /** What to do about it. */
  fix: string
  /** False for a failure nobody foresaw (a bug): its stack belongs in the log. */
  known: boolean
}

/** Thrown by Daemon.start: the failure described, the original error as its cause. */
export class StartupError extends LorabridgeError {
  readonly failure: StartupFailure
  constructor (failure: StartupFailure, cause: unknown) {
    super(failure.code, `${failure.message} — ${failure.fix}`, { cause })
    this.failure = failure
    this.name = 'StartupError'
  }
}

/** The one line `lorabridge start` prints on stderr before exiting 1. */
export function startupFailureLine (f: Pick<StartupFailure, 'code' | 'message' | 'fix'>): string {
  return `lorabridge: ${f.code}: ${f.message} — ${f.fix}`
}

interface ListenError { code?: string, syscall?: string, address?: string, port?: number, hostname?: string, path?: string }

/** File-system errors a person fixes (permissions, space), as opposed to bugs. */
const FILE_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
}

const LISTENER_LISTS: Record<string, 'mqtt' | 'http'> = { 'mqtt-listeners': 'mqtt', 'http-listeners': 'http' }

/** The configured listener a bind error is about: same port, and the same host when several share it. */
function listenerOf (config: Config, component: string, e: ListenError): { url: string, path: string } | undefined {
  const kind = LISTENER_LISTS[component]
  if (kind === undefined) return undefined
  const list: ReadonlyArray<{ protocol: string, host: string, port: number }> = kind === 'mqtt' ? config.mqtt.listeners : config.http.listeners
  const samePort = list.map((l, i) => ({ l, i })).filter(({ l }) => e.port === undefined || l.port === e.port)
  const hit = samePort.find(({ l }) => l.host === e.address || l.host === e.hostname) ?? samePort[0]
  if (hit === undefined) return undefined
  const host = hit.l.host.includes(':') ? `[${hit.l.host}]` : hit.l.host
  return { url: `${hit.l.protocol}://${host}:${hit.l.port}`, path: `${kind}.listeners[${hit.i}]` }
}

const FIXES: Partial<Record<ErrorCode, string>> = {
  LB_ERR_TLS_FILE: 'fix the path in the configuration (relative paths are under dataDir), or remove the option to use the development certificates; `lorabridge config check` lists every such problem',
  LB_ERR_TLS_SETTINGS: 'check that the certificate and key are PEM files of one pair, and the ciphers, ecdhCurve and crl settings',
  LB_ERR_REDIS_AUTH: 'put the right password in redis.url (or LORABRIDGE_REDIS_URL) or redis.options.password',
  LB_ERR_REDIS: 'check redis.url and that Redis is running',
  LB_ERR_USERS_FILE: 'fix the users file (YAML), or move it away and add the users again with `lorabridge users add`',
  LB_ERR_BANS_FILE: 'fix the ban list (YAML), or move it away and ban again with `lorabridge ban add`',
  LB_ERR_CODEC_LOAD: 'fix the codec file named above; `lorabridge rules check` shows the problem',
  LB_ERR_RULE_FILE: 'fix the rule file named above; `lorabridge rules check` shows every problem',
  LB_ERR_RULE_COMPILE: 'fix the expression named above; `lorabridge rules check` shows every problem',
}

export function describeStartupFailure (err: unknown, config: Config, component: string): StartupFailure {
  if (err instanceof StartupError) return err.failure
  const e = (err ?? {}) as ListenError
  const reason = err instanceof Error ? err.message : String(err)
  if (e.syscall === 'listen' || e.syscall === 'bind' || e.syscall === 'getaddrinfo') {
    const at = listenerOf(config, component, e)
    const where = at === undefined ? `${e.address ?? e.hostname ?? '?'}:${e.port ?? '?'}` : `${at.url} (${at.path})`
    if (e.code === 'EADDRINUSE') {
      return { code: 'LB_ERR_LISTEN_IN_USE', message: `cannot listen on ${where}: the address is in use by another process`, fix: `stop it or choose another port (${at?.path ?? 'the listener'}.port)`, known: true }
    }
    if (e.code === 'EACCES') {
      return { code: 'LB_ERR_LISTEN_DENIED', message: `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`, fix: 'choose a port of 1024 or more, or give node the capability to bind low ports (setcap cap_net_bind_service=+ep, or systemd AmbientCapabilities=CAP_NET_BIND_SERVICE)', known: true }
    }
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
      return { code: 'LB_ERR_LISTEN_ADDRESS', message: `cannot listen on ${where}: the host is not an address of this machine (${e.code})`, fix: `set ${at?.path ?? 'the listener'}.host to one of this machine's addresses, 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)`, known: true }
    }
  }
  if (e.path !== undefined && e.code !== undefined && FILE_ERRORS[e.code] !== undefined) {
    const full = e.code === 'ENOSPC' || e.code === 'EDQUOT'
    return {
      code: 'LB_ERR_FILE_ACCESS',
      message: `${component} cannot ${e.syscall === 'open' || e.syscall === 'scandir' || e.syscall === 'read' ? 'open' : 'write'} ${e.path}: ${FILE_ERRORS[e.code]} (dataDir is ${config.dataDir})`,
      fix: full ? 'free space on that file system' : 'let the user running lorabridge write dataDir (chown it to that user), or set dataDir to a directory it owns',
      known: true,
    }
  }
  if (err instanceof LorabridgeError) {
    return { code: err.code, message: reason, fix: FIXES[err.code] ?? 'see docs/errors.md for this code', known: true }
  }
  return { code: 'LB_ERR_COMPONENT_START', message: `${component} failed to start: ${reason}`, fix: 'the JSON log line above has the details; please report it if the cause is not in your setup', known: false }
}
