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
  LB_ERR_TLS_CLIENT_CERT: 'a client presented a certificate that does not verify against the CA (other CA, expired, not yet valid, revoked by a configured CRL)',
  LB_ERR_TLS_SETTINGS: 'the TLS settings (ciphers, ecdhCurve, CRL, certificate and key) are refused by OpenSSL at start-up',
  LB_ERR_TLS_HANDSHAKE: 'a TLS handshake failed (protocol version, cipher, missing required certificate)',
  LB_ERR_USERS_FILE: 'the users file cannot be read or parsed',
  LB_ERR_AUTH_BAD_CREDENTIALS: 'unknown user or wrong password (CONNACK 4)',
  LB_ERR_AUTH_NOT_AUTHORIZED: 'no credentials where anonymous access is off, or a certificate identity with no user (CONNACK 5)',
  LB_ERR_AUTH_CERT_NOT_REGISTERED: 'a verified client certificate names a user, but is not one recorded for it (`certs client`, `users add --cert`), or, for a user without recorded certificates, was issued before the user was added (CONNACK 5)',
  LB_ERR_AUTH_RATE_LIMITED: 'a login refused without a password check: the user name had auth.failedAuth.perUser failures within the window, or too many password checks were waiting (CONNACK 3, server unavailable)',
  LB_ERR_AUTH_IDENTITY_MISMATCH: 'the MQTT username differs from the client certificate identity (CONNACK 5)',
  LB_ERR_MQTT_PUBLISH_DENIED: 'a client published on a topic its role does not allow; the connection is closed [MQTT-3.3.5-2]',
  LB_ERR_MQTT_SUBSCRIBE_DENIED: 'a client subscribed to a filter its role does not allow (SUBACK 128)',
  LB_ERR_MQTT_PROTOCOL: 'a client sent bytes that are not valid MQTT, or broke the protocol; the connection is closed',
  LB_ERR_MQTT_PACKET_TOO_LARGE: 'a packet larger than mqtt.limits.maxPacketSize; the connection is closed',
  LB_ERR_MQTT_TOPIC_LEVELS: 'a topic or filter with more levels than mqtt.limits.maxTopicLevels; the connection is closed',
  LB_ERR_MQTT_CONNECT_RATE: 'too many connections from one address within the rate window; the socket is closed',
  LB_ERR_MQTT_WS_ORIGIN: 'a WebSocket upgrade on a ws/wss listener from a web page whose Origin is not in the listener\'s allowedOrigins (403)',
  LB_ERR_MQTT_DRAIN_TIMEOUT: 'a client did not read what the broker sent within mqtt.limits.drainTimeout; disconnected',
  LB_ERR_MQTT_QUEUE_FULL: 'a client\'s outbound queue passed mqtt.limits.maxQueuedMessages or maxQueuedBytes: messages to a clean-session client are dropped, a persistent-session client is disconnected',
  LB_ERR_MQTT_TOPIC_INVALID: 'a topic name or filter containing U+0000 [MQTT-1.5.3-2]: the publisher is disconnected, the filter refused (SUBACK 128)',
  LB_ERR_MQTT_RETAIN_LIMIT: 'a retained message was refused as retained (command topics, mqtt.limits.retained): it is delivered live but not kept',
  LB_ERR_AUTH_CLIENT_ID: 'a client id the identity may not use: lorawan/… ids are for gateways, a bound gateway only its own GW-UUID (CONNACK 5)',
  LB_ERR_AUTH_CLIENT_ID_TAKEN: 'a client id whose session belongs to another user (CONNACK 2)',
  LB_ERR_MQTT_BANNED: 'a connection from a banned address (closed at accept), or with a banned client id or user name (CONNACK 5); see `lorabridge ban`',
  LB_ERR_MQTT_CONNECTION_LIMIT: 'a new socket past mqtt.limits.maxConnections; closed at accept',
  LB_ERR_BANS_FILE: 'the ban list cannot be read or parsed; the previous list stays in force',
  LB_ERR_AUTH_REVOKED: 'a connection ended because its user was removed or changed in the users file, or its console session ended',
  LB_ERR_APPCONNECT_JSON: 'an app-connect message that should be JSON is not',
  LB_ERR_APPCONNECT_PAYLOAD: 'an app-connect message with a missing field or a field of the wrong type (the log names it)',
  LB_ERR_APPCONNECT_EUI: 'an app-connect message with a malformed EUI, or none where one is needed',
  LB_ERR_APPCONNECT_TOPIC: 'a lorawan/… topic or app-connect HTTP path that is not part of the protocol',
  LB_ERR_APPCONNECT_TOO_LARGE: 'an app-connect message larger than multitech.maxPayloadBytes, or an HTTP batch of more than 100 messages (413)',
  LB_ERR_HTTP_AUTH: 'an app-connect HTTP request without an acceptable client certificate (401/403)',
  LB_ERR_APPCONNECT_OTHER_GATEWAY: 'an uplink or join from a Conduit bound to one GW-UUID that names a gateway EUI another Conduit declared (HTTP 403, nothing is published), or its init declaring one (that EUI is left out)',
  LB_ERR_THINGPARK_TOKEN: 'a ThingPark report with a missing or wrong Token, or an AS_ID that is not the connection\'s (401)',
  LB_ERR_THINGPARK_TIME: 'a ThingPark report whose query Time is missing or further from our clock than maxTimeDeviation (with 0: replayHorizonSeconds), or not later than a token the full replay memory forgot (401)',
  LB_ERR_THINGPARK_REPLAY: 'a ThingPark report whose token was already accepted (401)',
  LB_ERR_THINGPARK_RATE_LIMITED: 'a ThingPark request from an address (IPv6: /64) that spent thingpark.failedTokenLimit; refused before its body is read (429)',
  LB_ERR_THINGPARK_QUERY: 'a ThingPark report without LrnDevEui, with malformed percent-encoding, or naming another device than its body (400)',
  LB_ERR_THINGPARK_BODY: 'a ThingPark body that is not JSON or XML, has no single known root, or declares a DTD (400)',
  LB_ERR_THINGPARK_PAYLOAD: 'a ThingPark report with a missing field or a field of the wrong type (400)',
  LB_ERR_THINGPARK_CONTENT_TYPE: 'a ThingPark request whose Content-Type is neither JSON nor XML (415)',
  LB_ERR_THINGPARK_TOO_LARGE: 'a ThingPark request body larger than thingpark.maxBodyBytes (413)',
  LB_ERR_THINGPARK_KEY: 'a ThingPark connection whose AS key (asKey or the variable named by asKeyEnv) is missing or not 32 hex digits',
  LB_ERR_THINGPARK_DOWNLINK: 'the LRC refused a downlink or could not be reached; the request ends in down/failed after the retries',
  LB_ERR_DOWNLINK_INVALID: 'a DownlinkRequest that is not valid JSON or has bad fields; answered with down/failed reason invalid',
  LB_ERR_RULE_FILE: 'a rule file that is not valid YAML or does not match the rule format; its last good version keeps running',
  LB_ERR_RULE_COMPILE: 'a JSONata expression in a rule file that does not compile (file, line, column and token are given)',
  LB_ERR_RULE_TIMEOUT: 'an expression that ran longer than rules.timeoutMs (an infinite loop); dead-lettered',
  LB_ERR_RULE_LIMIT: 'an expression that asked for more than a size bound allows (a string over 100,000 characters, a range or sequence over 100,000 entries, a regex use over 10,000 matches, $distinct on over 200 values with objects, $eval); dead-lettered',
  LB_ERR_RULE_DEPTH: 'an expression that went deeper than rules.maxDepth (runaway recursion); dead-lettered',
  LB_ERR_CODEC_LOAD: 'a decoder\'s codec file is missing, outside the rules directory, does not parse, or its top level throws or runs past 10 × rules.codecs.timeoutMs (file, line and column given); the rule file\'s last good version keeps running',
  LB_ERR_CODEC_THROWN: 'a codec threw an exception (its message and line:column in the codec file); the uplink is published without decoded, with decodeErrors',
  LB_ERR_CODEC_TIMEOUT: 'a codec call ran past rules.codecs.timeoutMs; its engine is restarted',
  LB_ERR_CODEC_MEMORY: 'a codec call ran out of its engine\'s memory (rules.codecs.memoryMiB); its engine is restarted',
  LB_ERR_CODEC_STACK: 'a codec call recursed deeper than its stack allows (about 300 calls); its engine is restarted',
  LB_ERR_CODEC_RESULT: 'a codec returned something that is not a TS013 result: not an object, data missing or not JSON (a function, NaN, Infinity, a BigInt, a cycle, nesting deeper than 32), bytes not integers 0..255, or more than 64 KiB of JSON',
  LB_ERR_CODEC_ERRORS: 'a codec returned errors of its own (TS013 `errors`); they are the uplink\'s decodeErrors, or a downlink\'s codecErrors',
  LB_ERR_CODEC_CRASHED: 'a codec\'s WebAssembly engine failed or is restarting; the call fails and the engine is rebuilt from the same file',
  LB_ERR_CODEC_SUSPENDED: 'a codec that hit its limits (time, memory, stack, crash) 3 times within a minute is not called for a minute',
  LB_ERR_CODEC_UNSUPPORTED: 'a codec was asked for an operation it has no function for (e.g. encoding with no encodeDownlink, Encoder or Encode)',
  LB_ERR_RULE_EVAL: 'an expression that failed while evaluating (JSONata\'s own code follows, e.g. LB_ERR_RULE_EVAL:T2002); dead-lettered',
  LB_ERR_RULE_ACTION: 'a rule produced an invalid DownlinkRequest, a forbidden topic, or its action could not be carried out; dead-lettered',
  LB_ERR_CONSOLE_LOGIN: 'a failed web console login: unknown user, wrong password, no password, or not an admin — one answer for all (401)',
  LB_ERR_CONSOLE_FORBIDDEN: 'a web console login by a user who is not an admin, with the right password: logged and counted under this code, answered exactly like LB_ERR_CONSOLE_LOGIN (401) so that the answer confirms nothing',
  LB_ERR_CONSOLE_LOGIN_RATE: 'too many failed web console logins from one address within 15 minutes; refused until the window has passed (429)',
  LB_ERR_CONSOLE_SESSION: 'a web console request or WebSocket upgrade without a valid session: none, expired, logged out, or the user is no longer an admin (401)',
  LB_ERR_CONSOLE_HOST: 'a web console request or WebSocket upgrade whose Host is not a name of this machine or of http.console.allowedHosts (DNS rebinding; 421)',
  LB_ERR_CONSOLE_ORIGIN: 'a web console request whose Origin is not the console\'s own (403)',
  LB_ERR_CONSOLE_REQUEST: 'a web console API request that is not application/json (415), not valid JSON, or lacks a field (400)',
  LB_ERR_CONSOLE_TOO_LARGE: 'a web console API request body larger than 64 KiB (413)',
  LB_ERR_CONSOLE_NOT_FOUND: 'a web console device page for a device not heard in the application it names within the history window (404); a device of another application is answered the same',
  LB_ERR_CONSOLE_ASSETS: 'the web console\'s files are missing from the installation; the console answers 503',
  LB_ERR_RULE_EDIT_OFF: 'a web console request to compile, dry-run or save a rule file while http.console.ruleEditing is off (403)',
  LB_ERR_RULE_EDIT_PATH: 'a web console rule-file request naming no rule file of rules.dir: a path, "..", NUL, another extension (codecs are not editable), a bad new name (400), or a symbolic link or non-regular file (403)',
  LB_ERR_RULE_EDIT_NOT_FOUND: 'a web console rule-file request for a file that does not exist, or a dry run on a device with no uplink heard since the start (404)',
  LB_ERR_RULE_EDIT_CONFLICT: 'a rule file saved from the web console had changed (or been created or deleted) since it was read; nothing was written (409)',
  LB_ERR_RULE_EDIT_INVALID: 'a rule file draft that does not compile, sent to be saved or dry-run from the web console; nothing was written, the errors are in the answer (422)',
  LB_ERR_RULE_EDIT_TOO_LARGE: 'a rule file larger than the web console edits (256 KiB; 413)',
  LB_ERR_RULE_EDIT_WRITE: 'a rule file saved from the web console could not be written (no rules directory, no permission, disk full); the file is unchanged (500)',
  LB_ERR_REDIS: 'Redis is unreachable or answered with an error',
  LB_ERR_REDIS_AUTH: 'Redis refused the credentials (wrong or missing password in redis.url or redis.options); start-up fails',
  LB_ERR_UNHANDLED: 'a promise rejected with nobody to hear it (typically a library\'s call on a connection being closed); logged, the daemon keeps running',
  LB_ERR_COMPONENT_STOP: 'a component did not stop within 5 s (typically waiting on a Redis that does not answer); the stop goes on without it and the process exits',
  LB_ERR_COMPONENT_START: 'a component failed to start; the daemon stops what it started and exits 1',
  LB_ERR_LISTEN_IN_USE: 'a listener\'s address and port are in use by another process (EADDRINUSE); start-up fails',
  LB_ERR_LISTEN_DENIED: 'the system refused a listener\'s port (EACCES: ports below 1024 need privileges); start-up fails',
  LB_ERR_FILE_ACCESS: 'at start-up, a file or directory the daemon needs (dataDir and the development certificates in it, the users file, the rules directory) cannot be read or written (permissions, read-only file system, disk full); start-up fails',
  LB_ERR_LISTEN_ADDRESS: 'a listener\'s host is not an address of this machine (EADDRNOTAVAIL, or a name that does not resolve); start-up fails',
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

/** docs/errors.md, generated by `npm run docs:config` from the table above. */
export function errorsReference (): string {
  return [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts by `npm run docs:config`; do not edit by hand. -->',
    '',
    'Every log line about refused or malformed input carries one of these under `code`, and the',
    'matching counters on `/metrics` are labelled with it. Codes are stable: new ones may be added,',
    'existing ones keep their meaning.',
    '',
    '| code | meaning |',
    '|---|---|',
    ...Object.entries(ErrorCodes).map(([code, meaning]) => `| \`${code}\` | ${meaning.replace(/\|/g, '\\|')} |`),
    '',
  ].join('\n')
}
