/**
 * pino with redaction of secrets. One root logger per daemon (no global singleton: tests run
 * several daemons in one process); components take `logger.child({ component })`.
 */
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino'
import { prettyFactory } from 'pino-pretty'

export type { Logger }

/** What a log line looks like: one JSON object (for collectors), or text for a person at a terminal. */
export type LogFormat = 'pretty' | 'json'

/** `log.format: auto` is pretty when stdout is a terminal, JSON otherwise (a pipe, a file, a collector). */
export function resolveLogFormat (setting: 'auto' | LogFormat, stdoutIsTty = process.stdout.isTTY === true): LogFormat {
  return setting === 'auto' ? (stdoutIsTty ? 'pretty' : 'json') : setting
}

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

/** stdout; see createLogger for minLength. */
function stdoutStream (): ReturnType<typeof pino.destination> {
  return pino.destination({ fd: 1, sync: false, minLength: 1 })
}

/**
 * Formats each JSON line with pino-pretty in this process, then writes it like the JSON lines
 * (same stdout stream, same flush on stop): a worker-thread transport could lose the last lines
 * ("lorabridge stopped") at exit, and the lines stay redacted since formatting follows redaction.
 */
function prettyStdout (out: DestinationStream & { flush?: (cb: (err?: Error) => void) => void }, colorize: boolean): DestinationStream {
  const format = prettyFactory({
    colorize,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}[{component}] {end}{msg}',
  })
  return {
    write: (line: string) => { out.write(format(line)) },
    flush: (cb: (err?: Error) => void) => { if (out.flush !== undefined) out.flush(cb); else cb() },
  } as DestinationStream
}

export function createLogger (level: LevelWithSilent, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // minLength 1 writes each line at once, as 0 would, but makes flush(cb) wait for the write in
    // flight (with 0 it calls back at once). A stop flushes, then exits: exiting during a write
    // that stdout made wait (a full pipe: EAGAIN) let the exit's synchronous flush overtake it —
    // "lorabridge stopped" came out before "stopping".
  }, destination ?? (format === 'pretty' ? prettyStdout(stdoutStream(), process.stdout.isTTY === true && process.env.NO_COLOR === undefined) : stdoutStream()))
}
