/**
 * The configuration contract (PRODUCT.md §7). This one schema validates the YAML file and the
 * environment overrides, fills defaults, feeds the generated reference in docs/configuration.md,
 * and is the source of the TypeScript `Config` type — nothing here is written twice.
 */
import { EUI_PATTERN } from '../model/eui.js'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { REGIONS } from '../core/regional-limits.js'

const Strict = { additionalProperties: false } as const

const Port = Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port; 0 binds a free port (logged on the `listening` line).' })
const Host = Type.String({ minLength: 1, description: 'Address to bind.' })
const AppName = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'Application name used in topics.' })
const Eui = Type.String({ pattern: EUI_PATTERN, description: 'EUI-64, any of 0011223344556677, 00-11-…, 00:11:….' })

export const ClientCertificateMode = Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')], {
  description: 'off: not requested; optional: verified when presented (a bad one is refused); required: the handshake fails without a valid one.',
})

const TlsFiles = {
  cert: Type.Optional(Type.String({ description: 'Server certificate (PEM). Relative paths are under dataDir. Absent: the development certificate, generated on first start.' })),
  key: Type.Optional(Type.String({ description: 'Server private key (PEM). Relative paths are under dataDir.' })),
  ca: Type.Optional(Type.String({ description: 'CA bundle (PEM) that client certificates must chain to. Relative paths are under dataDir. Absent: the development CA.' })),
}

/**
 * TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only, the Mozilla "intermediate" set without
 * DHE. A Conduit's OpenSSL (TLS 1.2 pinned) offers ECDHE-RSA-AES128/256-GCM; Mosquitto and paho
 * too. TLS 1.3 suites are not named here, so OpenSSL's TLS 1.3 defaults stay as they are.
 */
export const DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

const TlsVersion = Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')])
const CIPHERS_DESCRIPTION = 'OpenSSL cipher list (`:`-separated) for TLS 1.2; names starting with `TLS_` set the TLS 1.3 suites (absent: OpenSSL\'s TLS 1.3 defaults). The default allows only forward-secret AEAD suites (ECDHE with AES-GCM or CHACHA20-POLY1305).'
const CURVE_DESCRIPTION = 'ECDHE groups, `:`-separated OpenSSL names (`X25519:prime256v1:secp384r1`); `auto` lets OpenSSL choose.'
const CRL_DESCRIPTION = 'Certificate revocation list(s), PEM files (relative paths under dataDir). With it, a client certificate is checked against the CRL of each CA that issued a certificate in its chain (with intermediate CAs, one CRL per issuing CA; a missing or expired CRL refuses every certificate of that CA); a revoked one is refused (LB_ERR_TLS_CLIENT_CERT). Connections already open are not closed. The files are re-read when they change (checked every 2 s).'

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
    minVersion: Type.Optional(Type.Union(TlsVersion.anyOf, { description: 'Lowest TLS version; absent: mqtt.tls.minVersion.' })),
    ciphers: Type.Optional(Type.String({ minLength: 1, description: `${CIPHERS_DESCRIPTION} Absent: mqtt.tls.ciphers.` })),
    ecdhCurve: Type.Optional(Type.String({ minLength: 1, description: `${CURVE_DESCRIPTION} Absent: mqtt.tls.ecdhCurve.` })),
    crl: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { description: `${CRL_DESCRIPTION} Absent: mqtt.tls.crl.` })),
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
  maxTimeDeviation: Type.Integer({ minimum: 0, default: 60, description: 'Seconds allowed between the query Time and our clock. Every accepted token is remembered until its Time leaves this window, so a replay is refused either as seen or as too old. 0: no tight window; thingpark.replayHorizonSeconds applies instead.' }),
  downlinkValiditySeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'ValidityTime sent with each downlink: the LRC drops it if not transmitted by then.' })),
}, Strict)

const LogLevel = Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')])

export const ConfigSchema = Type.Object({
  dataDir: Type.String({ default: './data', description: 'Development certificates, users file, local state. Relative to the configuration file (or the working directory without one).' }),
  topics: Type.Object({
    root: Type.String({ default: 'lorabridge', pattern: '^[^/#+$][^/#+]*$', description: 'First level of every normalized topic.' }),
  }, { ...Strict, default: {}, description: 'Normalized topic names (docs/topics.md).' }),
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
      minVersion: Type.Union(TlsVersion.anyOf, { default: 'TLSv1.2', description: 'Lowest TLS version. Conduits pin TLS 1.2.' }),
      ciphers: Type.String({ minLength: 1, default: DEFAULT_CIPHERS, description: CIPHERS_DESCRIPTION }),
      ecdhCurve: Type.String({ minLength: 1, default: 'auto', description: CURVE_DESCRIPTION }),
      crl: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { description: CRL_DESCRIPTION })),
    }, { ...Strict, default: {}, description: 'TLS for mqtts and wss listeners, and for https listeners without their own.' }),
    limits: Type.Object({
      maxPacketSize: Type.Integer({ minimum: 64, default: 262144, description: 'Bytes; a larger packet closes the connection.' }),
      maxTopicLevels: Type.Integer({ minimum: 1, maximum: 100, default: 32, description: 'Levels in a topic or filter (Aedes caps this at 100).' }),
      maxInflightInbound: Type.Integer({ minimum: 0, default: 1000, description: 'Inbound QoS 2 messages awaiting PUBREL per client; 0 = unlimited.' }),
      maxClientIdLength: Type.Integer({ minimum: 23, default: 256, description: 'Conduit client ids (`lorawan/<eui>/<uuid>`) are longer than MQTT 3.1.1’s 23.' }),
      drainTimeout: Type.Integer({ minimum: 0, default: 30000, description: 'Milliseconds a client may leave the broker’s writes unread before it is disconnected; 0 = never. Publishers never wait for a slow reader (see maxQueuedMessages).' }),
      maxQueuedMessages: Type.Integer({ minimum: 1, default: 1000, description: 'Messages written to one client while it has not read the ones before (its outbound queue). Past this, or maxQueuedBytes: a clean-session client misses the message (counted in lorabridge_mqtt_dropped_total); a persistent-session client is disconnected (LB_ERR_MQTT_QUEUE_FULL) and gets its stored QoS 1 messages when it reconnects.' }),
      maxQueuedBytes: Type.Integer({ minimum: 1024, default: 16777216, description: 'Bytes of one client’s outbound queue (see maxQueuedMessages).' }),
      connectTimeout: Type.Integer({ minimum: 1000, default: 30000, description: 'Milliseconds from TCP accept to CONNECT.' }),
      retained: Type.Object({
        perUser: Type.Integer({ minimum: 0, default: 1000, description: 'Retained topics one user (or anonymous) may hold; past it, a retained publication is delivered live only (LB_ERR_MQTT_RETAIN_LIMIT).' }),
        total: Type.Integer({ minimum: 0, default: 100000, description: 'Retained topics all clients together may hold on this instance.' }),
      }, { ...Strict, default: {}, description: 'Retained messages clients may make the broker keep. Command topics (…/down, …/clear) are never retained.' }),
      maxConnections: Type.Integer({ minimum: 1, default: 100000, description: 'Open MQTT connections on this instance, all listeners together; past it new sockets are closed at accept (LB_ERR_MQTT_CONNECTION_LIMIT).' }),
      publishRate: Type.Object({
        messagesPerSecond: Type.Number({ minimum: 0, default: 0, description: 'PUBLISH packets per second one client may send (bursts of one second’s worth); a client over it is slowed down (its socket is not read meanwhile), not disconnected. 0: no limit.' }),
        bytesPerSecond: Type.Number({ minimum: 0, default: 0, description: 'Payload bytes per second one client may publish, in the same way. 0: no limit.' }),
      }, { ...Strict, default: {}, description: 'Per-client publish rate (EMQX messages_rate/bytes_rate). Off by default: a Conduit sends a few messages per second, a bridge or a benchmark thousands; set it for listeners open to untrusted users.' }),
      connectRate: Type.Object({
        perAddress: Type.Integer({ minimum: 0, default: 50, description: 'New connections allowed per address per window (burst); 0 turns the limit off. IPv6 addresses count per /64 (one host’s usual allocation).' }),
        windowSeconds: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'Seconds over which perAddress connections are refilled.' }),
      }, { ...Strict, default: {}, description: 'New connections per remote address; excess sockets are closed at once.' }),
    }, { ...Strict, default: {}, description: 'Limits that protect the broker from faulty or hostile clients.' }),
    sessionOwnerDays: Type.Number({ exclusiveMinimum: 0, default: 30, description: 'A client id belongs to the user that first connects with it, for as long as a persistent session may be resumed (renewed at each connection) or while a clean session is connected; another user is refused with CONNACK 2.' }),
  }, { ...Strict, default: {}, description: 'The embedded MQTT broker.' }),
  http: Type.Object({
    listeners: Type.Array(HttpListener, { default: [{ protocol: 'http', host: '127.0.0.1', port: 8080 }], description: 'HTTP(S) listeners: /healthz, /readyz, /metrics, app-connect HTTP, ThingPark, the web console.' }),
    bodyLimit: Type.Integer({ minimum: 1024, default: 1048576, description: 'Bytes; larger request bodies get 413.' }),
    requestTimeoutMs: Type.Integer({ minimum: 1000, default: 30000, description: 'Milliseconds to receive a whole request (head and body); a slower one gets 408 and its connection is closed, so that senders trickling bytes cannot hold sockets without end.' }),
    console: Type.Object({
      enabled: Type.Boolean({ default: true, description: 'Serve the web console at / on the loopback HTTP listeners, and on others that say `console: true` (docs/console.md). Only admin users of the users file can log in.' }),
      history: Type.Object({
        uplinks: Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'Uplinks kept per device for its console page.' }),
        downlinks: Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'Downlink requests (each with its outcomes) kept per device for its console page.' }),
        maxAgeHours: Type.Number({ exclusiveMinimum: 0, maximum: 720, default: 24, description: 'Older uplinks and downlinks are forgotten.' }),
        devices: Type.Integer({ minimum: 1, maximum: 100000, default: 1000, description: 'Devices with a kept history; the least recently heard are forgotten first. In memory, or in Redis when `redis` is configured (a restart or another instance shows the same history).' }),
      }, { ...Strict, default: {}, description: 'What a device page of the console shows: its recent uplinks and downlinks with their outcomes (docs/console.md#device-pages).' }),
      allowedHosts: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Host names, besides IP addresses, localhost, the machine\'s name and the listener\'s host, under which browsers may reach the console (the `Host` header; anything else gets 421, LB_ERR_CONSOLE_HOST, against DNS rebinding). `*` turns the check off.' }),
      sessionIdleMinutes: Type.Integer({ minimum: 1, default: 30, description: 'A console session unused for this long ends.' }),
      sessionMaxHours: Type.Integer({ minimum: 1, default: 12, description: 'A console session ends this long after its login, used or not.' }),
      ruleEditing: Type.Boolean({ default: false, description: 'Let admins edit the rule files of rules.dir in the console: compile and dry-run drafts, and save them (only when they compile, atomically, logged with the user). Off: the console shows the rule files read-only. Codec files are never editable there (docs/console.md, "Editing rules").' }),
    }, { ...Strict, default: {}, description: 'The admin web console: gateways, devices, a live tail, rules and a dry run.' }),
  }, { ...Strict, default: {}, description: 'The HTTP side of the daemon.' }),
  auth: Type.Object({
    usersFile: Type.Optional(Type.String({ description: 'Users file (YAML, salted scrypt hashes). Default: <dataDir>/users.yaml.' })),
    bansFile: Type.Optional(Type.String({ description: 'Ban list (YAML, written by `lorabridge ban add|remove`): addresses and networks, client ids, user names refused at once. Default: <dataDir>/bans.yaml.' })),
    certificateIdentity: Type.Union([Type.Literal('cn'), Type.Literal('off')], { default: 'cn', description: 'Which part of a verified client certificate names the user (off: certificates authenticate nobody).' }),
    failedAuth: Type.Object({
      perUser: Type.Integer({ minimum: 0, default: 20, description: 'Failed password checks allowed per user name (existing or not) within windowSeconds, over MQTT and the web console together; past it, logins with that name are refused without a check (CONNACK 3, LB_ERR_AUTH_RATE_LIMITED) until the window ends, except a password already verified since the start. 0 turns it off.' }),
      windowSeconds: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'The window of perUser: it starts at a name\'s first failure; a successful login clears the count.' }),
      maxConcurrentHashes: Type.Integer({ minimum: 1, default: 2, description: 'scrypt derivations running at once for passwords not already verified (they share libuv\'s thread pool with file access).' }),
      maxWaitingHashes: Type.Integer({ minimum: 0, default: 256, description: 'Password checks that may wait for a derivation: addresses without a failed check within windowSeconds first, each set served round-robin across source addresses; past it, a waiter of a failing address (else of the address with the most waiting) gives way, or the newcomer is refused (CONNACK 3, LB_ERR_AUTH_RATE_LIMITED).' }),
    }, { ...Strict, default: {}, description: 'Limits on password guessing and on the hashing that unauthenticated clients can cause (docs/security.md).' }),
  }, { ...Strict, default: {}, description: 'Who may connect: see docs/security.md.' }),
  redis: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^rediss?://', description: 'redis:// or rediss:// URL (TLS). A password goes in the URL (`redis://:PASSWORD@host:6379`, or `redis://USER:PASSWORD@…` with Redis ACLs) or in `options.password`; keep it out of the file with LORABRIDGE_REDIS_URL. Absent: in-memory store, single instance.' }),
    keyPrefix: Type.String({ default: '', description: 'Prefix for lorabridge’s own keys (not the broker persistence).' }),
    tls: Type.Optional(Type.Object({
      ca: Type.Optional(Type.String({ minLength: 1, description: 'CA bundle (PEM) that the Redis server certificate must chain to. Absent: the system CAs.' })),
      cert: Type.Optional(Type.String({ minLength: 1, description: 'Client certificate (PEM), for a Redis with `tls-auth-clients yes`.' })),
      key: Type.Optional(Type.String({ minLength: 1, description: 'Private key (PEM) of that client certificate.' })),
      servername: Type.Optional(Type.String({ minLength: 1, description: 'Name the server certificate must carry, when it is not the URL\'s host.' })),
    }, { ...Strict, description: 'TLS to Redis from files (relative paths under dataDir); implies TLS even with a redis:// URL. Merged over `options.tls`. The server certificate is always verified.' })),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Passed through to ioredis (sentinels, password, username, tls, …); for a Redis Cluster, to each node connection.' })),
    cluster: Type.Optional(Type.Array(Type.Object({ host: Type.String({ minLength: 1 }), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, Strict), { minItems: 1, description: 'Redis Cluster start-up nodes; when given, lorabridge connects to the cluster through them (ioredis Cluster) instead of `url`.' })),
  }, { ...Strict, description: 'Redis for persistence and clustering; absent: in memory.' })),
  applications: Type.Array(Type.Object({
    name: AppName,
    region: Type.Optional(Type.Union(REGIONS.map(r => Type.Literal(r)), { description: 'The LoRaWAN region of the application\'s devices: downlinks larger than the region allows at a device\'s latest data rate end in down/failed `too-large` (docs/downlinks.md). Default: downlinks.region.' })),
    match: Type.Object(ApplicationMatch.properties, { ...Strict, default: {}, description: 'A device belongs to the first application that matches it.' }),
  }, Strict), { default: [], description: 'Applications, in topics as {app}; unmatched devices go to `default`.' }),
  events: Type.Object({
    dedupWindowSeconds: Type.Integer({ minimum: 1, default: 300, description: 'How long a frame is remembered: its duplicates (retained replays, QoS 1 redeliveries, other gateways) within this window are not published again.' }),
    dedupSpreadSeconds: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'Copies of one uplink frame (device, DevAddr, counter, payload) are duplicates when the network server\'s receive times are within this many seconds of the first copy (a replay has the same time); further apart, the device restarted its counter and repeats a payload: a new frame, published. Raise it for gateways whose clocks are not synchronized.' }),
    includeRaw: Type.Boolean({ default: false, description: 'Add the network server\'s original message under `raw` in normalized events.' }),
  }, { ...Strict, default: {}, description: 'Normalized events (docs/topics.md).' }),
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
    replayHorizonSeconds: Type.Integer({ minimum: 60, maximum: 604800, default: 86400, description: 'For connections with maxTimeDeviation 0: reports whose query Time is further than this from our clock are refused (LB_ERR_THINGPARK_TIME), and accepted tokens are remembered this long, so a captured request is never accepted twice.' }),
    replayMemoryMaxEntries: Type.Integer({ minimum: 1000, default: 250000, description: 'Tokens the replay memory holds without Redis (about 180 bytes each: 45 MB at the default). When full the oldest are forgotten, and reports whose Time is not later than theirs are refused (LB_ERR_THINGPARK_TIME), counted in lorabridge_thingpark_replay_evictions_total.' }),
    failedTokenLimit: Type.Object({
      perAddress: Type.Integer({ minimum: 0, default: 20, description: 'Refused unauthenticated reports (bad or missing token, wrong AS_ID, Time outside the window, bad query, body or Content-Type) allowed per source address (IPv6: per /64) per window; past it the address gets 429 before its body is read. 0 turns the limit off.' }),
      windowSeconds: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'Seconds over which perAddress failures are refilled.' }),
    }, { ...Strict, default: {}, description: 'Keeps an unauthenticated sender from making lorabridge parse bodies without end. Behind a proxy every sender shares its address: raise perAddress or set it to 0 there.' }),
    answerTimeoutMs: Type.Integer({ minimum: 100, default: 2000, description: 'A report not stored within this time is answered 503 (not acknowledged); ThingPark wants fast answers.' }),
    downlink: Type.Object({
      maxAttempts: Type.Integer({ minimum: 1, default: 6, description: 'POSTs per downlink before it ends in down/failed; 5xx answers and network errors are retried, 4xx are not.' }),
      initialBackoffMs: Type.Integer({ minimum: 1, default: 1000, description: 'First retry delay; doubles each time, with ±50 % jitter.' }),
      maxBackoffMs: Type.Integer({ minimum: 1, default: 60000, description: 'Longest retry delay.' }),
      timeoutMs: Type.Integer({ minimum: 100, default: 10000, description: 'Per-request timeout.' }),
    }, { ...Strict, default: {}, description: 'Token-signed downlink POSTs to the LRC.' }),
  }, { ...Strict, default: {}, description: 'Actility ThingPark HTTPS Generic Application tunnels.' }),
  downlinks: Type.Object({
    conduitAckRetries: Type.Integer({ minimum: 0, maximum: 7, default: 2, description: 'Confirmed downlinks to Conduits: the retransmissions asked of the Conduit\'s network server (app-connect `ack_retries`). A confirmed downlink ends in down/failed `not-acknowledged` after this + 2 uplinks of the device without an ACK since it was handed over (docs/downlinks.md).' }),
    thingparkUplinksWithoutAck: Type.Integer({ minimum: 1, maximum: 16, default: 3, description: 'Confirmed downlinks to ThingPark devices: uplinks without an ACK, after ThingPark reported it sent (or queued it), that end it in down/failed `not-acknowledged`.' }),
    region: Type.Optional(Type.Union(REGIONS.map(r => Type.Literal(r)), { description: 'The LoRaWAN region of devices whose application names none; without one, downlink sizes are not checked.' })),
    ackTimeoutSeconds: Type.Integer({ minimum: 1, default: 86400, description: 'A confirmed downlink of which the device\'s uplinks told nothing within this time ends in down/failed `unknown`.' }),
  }, { ...Strict, default: {}, description: 'Downlink outcomes lorabridge concludes itself (docs/downlinks.md).' }),
  rules: Type.Object({
    dir: Type.String({ default: './rules', description: 'Directory of rule files (*.yaml, *.yml).' }),
    watch: Type.Boolean({ default: true, description: 'Reload rule files when they change.' }),
    timeoutMs: Type.Integer({ minimum: 1, default: 100, description: 'Time budget of one expression evaluation; past it the evaluation fails (counted, dead-lettered).' }),
    maxDepth: Type.Integer({ minimum: 10, default: 500, description: 'Evaluation depth budget of one expression (runaway recursion).' }),
    maxChainDepth: Type.Integer({ minimum: 0, default: 2, description: 'How many times an event produced by a rule (a downlink\'s outcome) may trigger rules again.' }),
    codecs: Type.Object({
      timeoutMs: Type.Integer({ minimum: 1, maximum: 10000, default: 100, description: 'Time limit of one codec call (decodeUplink, encodeDownlink); past it the call fails with LB_ERR_CODEC_TIMEOUT and the codec\'s engine is restarted. A codec that hits its limits 3 times within a minute is suspended for a minute.' }),
      memoryMiB: Type.Integer({ minimum: 20, maximum: 256, default: 32, description: 'Memory of one codec\'s engine (its whole WebAssembly memory, about 2 MiB of which QuickJS itself uses); past it a call fails with LB_ERR_CODEC_MEMORY.' }),
    }, { ...Strict, default: {}, description: 'JavaScript payload codecs named by decoders (`codec:`), each in its own sandboxed engine (docs/codecs.md).' }),
  }, { ...Strict, default: {}, description: 'The rules engine (docs/rules.md).' }),
  log: Type.Object({
    level: Type.Union(LogLevel.anyOf, { default: 'info', description: 'pino log level; logs go to stdout.' }),
    format: Type.Union([Type.Literal('auto'), Type.Literal('pretty'), Type.Literal('json')], { default: 'auto', description: 'json: one JSON object per line (for log collectors); pretty: readable lines (time, level, component, message, then the fields); auto: pretty when stdout is a terminal, json otherwise. `lorabridge start --log-format` overrides it.' }),
  }, { ...Strict, default: {}, description: 'Logging.' }),
}, Strict)

/** The validated configuration, with defaults filled and paths resolved; deep-frozen. */
export type Config = Readonly<Static<typeof ConfigSchema>>
export type MqttListenerConfig = Static<typeof MqttListener>
export type HttpListenerConfig = Static<typeof HttpListener>
export type ClientCertificates = Static<typeof ClientCertificateMode>
export type AnySchema = TSchema
