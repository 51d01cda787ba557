/**
 * Stable error codes. Every log line about bad input or a refused action carries one under
 * `code`, and counters are labelled with it. The table in docs/errors.md is the user-facing
 * copy of this list; test/errors-doc.test.ts keeps the two in step.
 */
export const ErrorCodes = {
  LB_ERR_CONFIG_INVALID: 'the configuration does not match the schema',
  LB_ERR_CONFIG_PARSE: 'the configuration file is not valid YAML',
  LB_ERR_CONFIG_ENV: 'a LORABRIDGE_… environment variable names no option or has a bad value',
  LB_ERR_TLS_FILE: 'a configured certificate or key file cannot be read',
  LB_ERR_TLS_CLIENT_CERT: 'a client presented a certificate that does not verify against the CA (other CA, expired, not yet valid)',
  LB_ERR_TLS_HANDSHAKE: 'a TLS handshake failed (protocol version, cipher, missing required certificate)',
  LB_ERR_USERS_FILE: 'the users file cannot be read or parsed',
  LB_ERR_AUTH_BAD_CREDENTIALS: 'unknown user or wrong password (CONNACK 4)',
  LB_ERR_AUTH_NOT_AUTHORIZED: 'no credentials where anonymous access is off, or a certificate identity with no user (CONNACK 5)',
  LB_ERR_AUTH_IDENTITY_MISMATCH: 'the MQTT username differs from the client certificate identity (CONNACK 5)',
  LB_ERR_MQTT_PUBLISH_DENIED: 'a client published on a topic its role does not allow; the connection is closed [MQTT-3.3.5-2]',
  LB_ERR_MQTT_SUBSCRIBE_DENIED: 'a client subscribed to a filter its role does not allow (SUBACK 128)',
  LB_ERR_MQTT_PROTOCOL: 'a client sent bytes that are not valid MQTT, or broke the protocol; the connection is closed',
  LB_ERR_MQTT_PACKET_TOO_LARGE: 'a packet larger than mqtt.limits.maxPacketSize; the connection is closed',
  LB_ERR_MQTT_TOPIC_LEVELS: 'a topic or filter with more levels than mqtt.limits.maxTopicLevels; the connection is closed',
  LB_ERR_MQTT_CONNECT_RATE: 'too many connections from one address within the rate window; the socket is closed',
  LB_ERR_MQTT_DRAIN_TIMEOUT: 'a client did not read what the broker sent within mqtt.limits.drainTimeout; disconnected',
  LB_ERR_REDIS: 'Redis is unreachable or answered with an error',
  LB_ERR_COMPONENT_START: 'a component failed to start; the daemon stops what it started and exits 1',
} as const

export type ErrorCode = keyof typeof ErrorCodes

/** An error that carries a stable code, for log lines and counters. */
export class LorabridgeError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'LorabridgeError'
  }
}
