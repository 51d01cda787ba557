/**
 * pino with redaction of secrets. One root logger per daemon (no global singleton: tests run
 * several daemons in one process); components take `logger.child({ component })`.
 */
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino'

export type { Logger }

// STYLE §7: passwords, AS keys and private keys never reach a log line.
export const REDACT_PATHS = [
  'password', '*.password', '*.*.password',
  'passwordHash', '*.passwordHash',
  'asKey', '*.asKey', '*.*.asKey', '*.*.*.asKey',
  'key', 'tls.key', '*.tls.key',
  'authorization', '*.authorization', 'headers.authorization',
  // A Redis URL may carry the password (redis://:pw@host); should a configuration ever be logged.
  'redis.url', '*.redis.url', 'redis.options.password', '*.redis.options.password',
]

export function createLogger (level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // minLength 1 writes each line at once, as 0 would, but makes flush(cb) wait for the write in
    // flight (with 0 it calls back at once). A stop flushes, then exits: exiting during a write
    // that stdout made wait (a full pipe: EAGAIN) let the exit's synchronous flush overtake it —
    // "lorabridge stopped" came out before "stopping".
  }, destination ?? pino.destination({ fd: 1, sync: false, minLength: 1 }))
}
