/**
 * The configuration contract (PRODUCT.md §7). This one schema validates the YAML file and the
 * environment overrides, fills defaults, feeds the generated reference in docs/configuration.md,
 * and is the source of the TypeScript `Config` type — nothing here is written twice.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const Strict = { additionalProperties: false } as const

const Port = Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port; 0 binds a free port (logged on the `listening` line).' })
const Host = Type.String({ minLength: 1, description: 'Address to bind.' })
const AppName = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'Application name used in topics.' })
const Eui = Type.String({ pattern: '^([0-9a-fA-F]{2}[-:]?){7}[0-9a-fA-F]{2}$', description: 'EUI-64, any of 0011223344556677, 00-11-…, 00:11:….' })

export const ClientCertificateMode = Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')], {
  description: 'off: not requested; optional: verified when presented (a bad one is refused); required: the handshake fails without a valid one.',
})

const TlsFiles = {
  cert: Type.Optional(Type.String({ description: 'Server certificate (PEM). Relative paths are under dataDir. Absent: the development certificate, generated on first start.' })),
  key: Type.Optional(Type.String({ description: 'Server private key (PEM). Relative paths are under dataDir.' })),
  ca: Type.Optional(Type.String({ description: 'CA bundle (PEM) that client certificates must chain to. Relative paths are under dataDir. Absent: the development CA.' })),
}

const MqttListener = Type.Object({
  protocol: Type.Union([Type.Literal('mqtt'), Type.Literal('mqtts'), Type.Literal('ws'), Type.Literal('wss')]),
  host: Host,
  port: Port,
  anonymous: Type.Boolean({ default: false, description: 'Allow clients without credentials (full access). Only on loopback addresses.' }),
  path: Type.String({ default: '/mqtt', pattern: '^/', description: 'WebSocket path (ws, wss).' }),
  allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'ws, wss: web page origins (`https://dashboard.example.com`, scheme://host[:port]) whose browsers may connect. Absent: none. An upgrade with any other Origin gets 403 (LB_ERR_MQTT_WS_ORIGIN); clients that are not browsers send none and are accepted. `*`: any origin.' })),
}, Strict)

const HttpListener = Type.Object({
  protocol: Type.Union([Type.Literal('http'), Type.Literal('https')]),
  host: Host,
  port: Port,
  tls: Type.Optional(Type.Object({
    ...TlsFiles,
    clientCertificates: Type.Optional(ClientCertificateMode),
  }, { ...Strict, description: 'Own TLS settings for this listener; absent: mqtt.tls.' })),
  console: Type.Optional(Type.Boolean({ description: 'Serve the web console on this listener. Absent: http.console.enabled on a loopback host, off elsewhere; set it (on an https listener) to reach the console from other machines.' })),
  metrics: Type.Optional(Type.Boolean({ description: 'Serve /metrics (unauthenticated: gateway ids, rule names, counters) on this listener. Absent: on a loopback host only; set it for a listener your Prometheus reaches over the network. /healthz and /readyz answer on every listener.' })),
}, Strict)

const ApplicationMatch = Type.Object({
  appEui: Type.Array(Eui, { default: [], description: 'AppEUI / JoinEUI values.' }),
  devEui: Type.Array(Eui, { default: [] }),
  gateways: Type.Array(Type.String(), { default: [], description: 'Conduit GW-UUIDs or gateway EUIs.' }),
  thingpark: Type.Array(Type.String(), { default: [], description: 'ThingPark connection names.' }),
}, Strict)

const ThingParkConnection = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$' }),
  path: Type.String({ pattern: '^/', description: 'Uplink URL path given to ThingPark.' }),
  asId: Type.String({ minLength: 1 }),
  asKey: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{32}$', description: 'AS key (32 hex digits). Prefer asKeyEnv.' })),
  asKeyEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Name of the environment variable holding the AS key.' })),
  downlinkUrl: Type.String({ default: 'https://api.thingpark.com/thingpark/lrc/rest/downlink' }),
  maxTimeDeviation: Type.Integer({ minimum: 0, default: 60, description: 'Seconds allowed between the query Time and our clock; 0 turns the check off. Tokens seen within this window are refused as replays.' }),
  downlinkValiditySeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'ValidityTime sent with each downlink: the LRC drops it if not transmitted by then.' })),
}, Strict)

const LogLevel = Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')])

export const ConfigSchema = Type.Object({
  dataDir: Type.String({ default: './data', description: 'Development certificates, users file, local state. Relative to the configuration file (or the working directory without one).' }),
  topics: Type.Object({
    root: Type.String({ default: 'lorabridge', pattern: '^[^/#+$][^/#+]*$', description: 'First level of every normalized topic.' }),
  }, { ...Strict, default: {}, description: 'Normalized topic names (PRODUCT.md §1).' }),
  mqtt: Type.Object({
    listeners: Type.Array(MqttListener, {
      default: [
        { protocol: 'mqtt', host: '127.0.0.1', port: 1883, anonymous: true },
        { protocol: 'mqtts', host: '0.0.0.0', port: 8883 },
      ],
      description: 'MQTT listeners; each logs one `listening` line with its bound port.',
    }),
    tls: Type.Object({
      ...TlsFiles,
      clientCertificates: Type.Union(ClientCertificateMode.anyOf, { default: 'optional', description: ClientCertificateMode.description }),
      minVersion: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { default: 'TLSv1.2', description: 'Conduits pin TLS 1.2.' }),
    }, { ...Strict, default: {}, description: 'TLS for mqtts and wss listeners, and for https listeners without their own.' }),
    limits: Type.Object({
      maxPacketSize: Type.Integer({ minimum: 64, default: 262144, description: 'Bytes; a larger packet closes the connection.' }),
      maxTopicLevels: Type.Integer({ minimum: 1, maximum: 100, default: 32, description: 'Levels in a topic or filter (Aedes caps this at 100).' }),
      maxInflightInbound: Type.Integer({ minimum: 0, default: 1000, description: 'Inbound QoS 2 messages awaiting PUBREL per client; 0 = unlimited.' }),
      maxClientIdLength: Type.Integer({ minimum: 23, default: 256, description: 'Conduit client ids (`lorawan/<eui>/<uuid>`) are longer than MQTT 3.1.1’s 23.' }),
      drainTimeout: Type.Integer({ minimum: 0, default: 30000, description: 'Milliseconds a client may leave the broker’s writes unread before it is disconnected; 0 = never.' }),
      connectTimeout: Type.Integer({ minimum: 1000, default: 30000, description: 'Milliseconds from TCP accept to CONNECT.' }),
      connectRate: Type.Object({
        perAddress: Type.Integer({ minimum: 0, default: 50, description: 'New connections allowed per address per window (burst); 0 turns the limit off.' }),
        windowSeconds: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'Seconds over which perAddress connections are refilled.' }),
      }, { ...Strict, default: {}, description: 'New connections per remote address; excess sockets are closed at once.' }),
    }, { ...Strict, default: {}, description: 'Limits that protect the broker from faulty or hostile clients.' }),
  }, { ...Strict, default: {}, description: 'The embedded MQTT broker.' }),
  http: Type.Object({
    listeners: Type.Array(HttpListener, { default: [{ protocol: 'http', host: '127.0.0.1', port: 8080 }], description: 'HTTP(S) listeners: /healthz, /readyz, /metrics, app-connect HTTP, ThingPark, the web console.' }),
    bodyLimit: Type.Integer({ minimum: 1024, default: 1048576, description: 'Bytes; larger request bodies get 413.' }),
    console: Type.Object({
      enabled: Type.Boolean({ default: true, description: 'Serve the web console at / on the loopback HTTP listeners, and on others that say `console: true` (docs/console.md). Only admin users of the users file can log in.' }),
      allowedHosts: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Host names, besides IP addresses, localhost, the machine\'s name and the listener\'s host, under which browsers may reach the console (the `Host` header; anything else gets 421, LB_ERR_CONSOLE_HOST, against DNS rebinding). `*` turns the check off.' }),
      sessionIdleMinutes: Type.Integer({ minimum: 1, default: 30, description: 'A console session unused for this long ends.' }),
      sessionMaxHours: Type.Integer({ minimum: 1, default: 12, description: 'A console session ends this long after its login, used or not.' }),
    }, { ...Strict, default: {}, description: 'The admin web console: gateways, devices, a live tail, rules and a dry run.' }),
  }, { ...Strict, default: {}, description: 'The HTTP side of the daemon.' }),
  auth: Type.Object({
    usersFile: Type.Optional(Type.String({ description: 'Users file (YAML, salted scrypt hashes). Default: <dataDir>/users.yaml.' })),
    certificateIdentity: Type.Union([Type.Literal('cn'), Type.Literal('off')], { default: 'cn', description: 'Which part of a verified client certificate names the user (off: certificates authenticate nobody).' }),
    failedAuth: Type.Object({
      perUser: Type.Integer({ minimum: 0, default: 20, description: 'Failed password checks allowed per user name (existing or not) within windowSeconds, over MQTT and the web console together; past it, logins with that name are refused without a check (CONNACK 3, LB_ERR_AUTH_RATE_LIMITED) until the window ends, except a password already verified since the start. 0 turns it off.' }),
      windowSeconds: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'The window of perUser: it starts at a name\'s first failure; a successful login clears the count.' }),
      maxConcurrentHashes: Type.Integer({ minimum: 1, default: 2, description: 'scrypt derivations running at once for passwords not already verified (they share libuv\'s thread pool with file access).' }),
      maxWaitingHashes: Type.Integer({ minimum: 0, default: 256, description: 'Password checks that may wait for a derivation: addresses without a failed check within windowSeconds first, each set served round-robin across source addresses; past it, a waiter of a failing address (else of the address with the most waiting) gives way, or the newcomer is refused (CONNACK 3, LB_ERR_AUTH_RATE_LIMITED).' }),
    }, { ...Strict, default: {}, description: 'Limits on password guessing and on the hashing that unauthenticated clients can cause (docs/security.md).' }),
  }, { ...Strict, default: {}, description: 'Who may connect: see docs/security.md.' }),
  redis: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^rediss?://', description: 'redis:// or rediss:// URL. Absent: in-memory store, single instance.' }),
    keyPrefix: Type.String({ default: '', description: 'Prefix for lorabridge’s own keys (not the broker persistence).' }),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Passed through to ioredis (sentinels, tls, …); for a Redis Cluster, to each node connection.' })),
    cluster: Type.Optional(Type.Array(Type.Object({ host: Type.String({ minLength: 1 }), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, Strict), { minItems: 1, description: 'Redis Cluster start-up nodes; when given, lorabridge connects to the cluster through them (ioredis Cluster) instead of `url`.' })),
  }, { ...Strict, description: 'Redis for persistence and clustering; absent: in memory.' })),
  applications: Type.Array(Type.Object({
    name: AppName,
    match: Type.Object(ApplicationMatch.properties, { ...Strict, default: {}, description: 'A device belongs to the first application that matches it.' }),
  }, Strict), { default: [], description: 'Applications, in topics as {app}; unmatched devices go to `default`.' }),
  events: Type.Object({
    dedupWindowSeconds: Type.Integer({ minimum: 1, default: 300, description: 'How long a frame is remembered: its duplicates (retained replays, QoS 1 redeliveries, other gateways) within this window are not published again.' }),
    includeRaw: Type.Boolean({ default: false, description: 'Add the network server\'s original message under `raw` in normalized events.' }),
  }, { ...Strict, default: {}, description: 'Normalized events (PRODUCT.md §2).' }),
  multitech: Type.Object({
    maxPayloadBytes: Type.Integer({ minimum: 1024, default: 65536, description: 'Largest app-connect message accepted (an uplink is under 2 KB); larger ones are refused and counted.' }),
    http: Type.Object({
      enabled: Type.Boolean({ default: true, description: 'Serve app-connect\'s HTTP(S) mode on the HTTP listeners.' }),
      pathPrefix: Type.String({ default: '', pattern: '^(/[^/]+)*$', description: 'Prefix before /api/v1/lorawan/… (the path part of the Conduit\'s URL).' }),
      pollIntervalSeconds: Type.Integer({ minimum: 1, default: 30, description: '`downlink_query_interval` answered to init: seconds between the Conduit\'s downlink polls.' }),
      silentAfterSeconds: Type.Integer({ minimum: 1, default: 600, description: 'An HTTP Conduit that sends nothing for this long goes offline (reason `silent`). Its downlink polls count when its client certificate\'s user is bound to it (`users add --gateway`); otherwise only init, uplinks and joins do, so keep this above the devices\' longest quiet spell.' }),
      queueSize: Type.Integer({ minimum: 1, default: 10, description: '`queue_size` answered to init: the Conduit\'s uplink retention queue.' }),
      downlinkTtlSeconds: Type.Integer({ minimum: 1, default: 600, description: 'A downlink not fetched by the Conduit within this time ends in down/failed `expired`.' }),
      maxPendingPerDevice: Type.Integer({ minimum: 1, default: 16, description: 'Downlinks held per device for HTTP Conduits; more end in down/failed `queue-full`.' }),
      anonymous: Type.Boolean({ default: false, description: 'Accept app-connect HTTP requests without a client certificate on non-loopback listeners.' }),
    }, { ...Strict, default: {}, description: 'app-connect over HTTP(S).' }),
  }, { ...Strict, default: {}, description: 'MultiTech Conduits running app-connect.' }),
  thingpark: Type.Object({
    connections: Type.Array(ThingParkConnection, { default: [], description: 'One uplink endpoint per connection.' }),
    maxBodyBytes: Type.Integer({ minimum: 1024, default: 65536, description: 'Largest report body accepted (reports are a few kB); larger ones get 413.' }),
    answerTimeoutMs: Type.Integer({ minimum: 100, default: 2000, description: 'A report not stored within this time is answered 503 (not acknowledged); ThingPark wants fast answers.' }),
    downlink: Type.Object({
      maxAttempts: Type.Integer({ minimum: 1, default: 6, description: 'POSTs per downlink before it ends in down/failed; 5xx answers and network errors are retried, 4xx are not.' }),
      initialBackoffMs: Type.Integer({ minimum: 1, default: 1000, description: 'First retry delay; doubles each time, with ±50 % jitter.' }),
      maxBackoffMs: Type.Integer({ minimum: 1, default: 60000, description: 'Longest retry delay.' }),
      timeoutMs: Type.Integer({ minimum: 100, default: 10000, description: 'Per-request timeout.' }),
    }, { ...Strict, default: {}, description: 'Token-signed downlink POSTs to the LRC.' }),
  }, { ...Strict, default: {}, description: 'Actility ThingPark HTTPS Generic Application tunnels.' }),
  rules: Type.Object({
    dir: Type.String({ default: './rules', description: 'Directory of rule files (*.yaml, *.yml).' }),
    watch: Type.Boolean({ default: true, description: 'Reload rule files when they change.' }),
    timeoutMs: Type.Integer({ minimum: 1, default: 100, description: 'Time budget of one expression evaluation; past it the evaluation fails (counted, dead-lettered).' }),
    maxDepth: Type.Integer({ minimum: 10, default: 500, description: 'Evaluation depth budget of one expression (runaway recursion).' }),
    maxChainDepth: Type.Integer({ minimum: 0, default: 2, description: 'How many times an event produced by a rule (a downlink\'s outcome) may trigger rules again.' }),
  }, { ...Strict, default: {}, description: 'The rules engine (PRODUCT.md §4).' }),
  log: Type.Object({
    level: Type.Union(LogLevel.anyOf, { default: 'info', description: 'pino log level; logs are JSON lines on stdout.' }),
  }, { ...Strict, default: {}, description: 'Logging.' }),
}, Strict)

/** The validated configuration, with defaults filled and paths resolved; deep-frozen. */
export type Config = Readonly<Static<typeof ConfigSchema>>
export type MqttListenerConfig = Static<typeof MqttListener>
export type HttpListenerConfig = Static<typeof HttpListener>
export type ClientCertificates = Static<typeof ClientCertificateMode>
export type AnySchema = TSchema
