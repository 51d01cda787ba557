import type { ErrorCode } from '../errors.js'
import { LorabridgeError } from '../errors.js'

/** One problem in the configuration, located by a path such as `mqtt.listeners[0].port`. */
export interface ConfigIssue {
  path: string
  message: string
  code: ErrorCode
}

export class ConfigError extends LorabridgeError {
  readonly issues: readonly ConfigIssue[]
  readonly file: string | undefined
  constructor (issues: ConfigIssue[], file: string | undefined) {
    super(issues[0]?.code ?? 'LB_ERR_CONFIG_INVALID',
      `${file ?? 'configuration'}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n` +
      issues.map(i => `  ${i.path}: ${i.message}`).join('\n'))
    this.issues = issues
    this.file = file
    this.name = 'ConfigError'
  }
}

/** `/mqtt/listeners/0/port` → `mqtt.listeners[0].port` */
export function formatPointer (pointer: string): string {
  if (pointer === '') return '(root)'
  return pointer.split('/').slice(1).map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => /^\d+$/.test(seg) ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`, '')
}
