import type { Config } from '../config/schema.js'
import { Daemon } from '../daemon.js'
import type { LogFormat } from '../log.js'
import { describeStartupFailure, startupFailureLine } from '../startup-failure.js'

export interface StartOptions {
  /** `--log-format`; default: config.log.format. */
  logFormat?: LogFormat | undefined
}

/**
 * Runs the daemon until SIGINT/SIGTERM: stop accepting, close listeners and broker, flush logs,
 * exit 0. A second signal while stopping exits at once with 1. A failed start ends with one line
 * on stderr (code, what, fix) and exit status 1.
 */
export async function startCommand (config: Config, opts: StartOptions = {}): Promise<void> {
  const daemon = new Daemon({ config, ...(opts.logFormat !== undefined ? { logFormat: opts.logFormat } : {}) })
  let signalled = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(1)
    signalled = true
    daemon.log.info({ signal }, 'stopping')
    daemon.stop().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // A library's promise rejected with no handler (a command on a connection being closed) must
  // not end a daemon that is otherwise fine; it is logged for the record.
  process.on('unhandledRejection', (reason: unknown) => {
    daemon.log.error({ code: 'LB_ERR_UNHANDLED', err: reason instanceof Error ? reason : new Error(String(reason)) }, 'unhandled rejection')
  })
  try {
    await daemon.start()
  } catch (err) {
    await daemon.stop()
    process.stderr.write(startupFailureLine(describeStartupFailure(err, config, 'daemon')) + '\n')
    process.exit(1)
  }
}
