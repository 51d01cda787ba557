/**
 * JSON Schemas of everything lorabridge publishes on its normalized topics, and of the commands it
 * accepts there (PRODUCT.md §1, §2). One source: docs/schemas/*.schema.json are generated from
 * these (`npm run docs:config`), the tests validate every message they observe against them, and
 * the type checks at the end of this file fail the build when a schema and the TypeScript type the
 * code publishes (src/model/events.ts, presence, rules) stop agreeing.
 *
 * The schemas describe what the code publishes today, to the field: shapes the daemon emits are
 * closed (`additionalProperties: false`), so a field added without its schema fails the tests.
 * Consumers should still ignore fields they do not know, as later versions may add some.
 */
import { Type, type Static, type TSchema, type TString } from '@sinclair/typebox'
import type { DeviceLocation, DeviceStatus, DownlinkFailure, DownlinkOutcome, EventKind, GatewayReception, Join, MultitechNetwork, Radio, ThingParkNetwork, Uplink } from './events.js'
import type { GatewayStatus } from '../core/presence.js'
import type { DeadLetter, RuleCounters } from '../rules/engine.js'
import type { RuleError } from '../rules/compile.js'
import { NORMALIZED_EUI_PATTERN } from './eui.js'
import type { InstanceStatusBody } from '../core/instance-status.js'

const Closed = { additionalProperties: false } as const

// ---------------------------------------------------------------- building blocks

const DevEui = Type.String({ pattern: NORMALIZED_EUI_PATTERN, description: 'DevEUI: 16 lower-case hex digits, no separators, whatever the network server spelled.' })
const DASHED_EUI = '^[0-9a-f]{2}(?:-[0-9a-f]{2}){7}$'
const DashedEui = (description = 'EUI-64 dashed in lower case, as app-connect spells it.'): TString => Type.String({ pattern: DASHED_EUI, description })
const GatewayUuid = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', description: 'Conduit GW-UUID, dashed lower case, whichever spelling the Conduit used.' })
const AppName = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'Application name from the configuration, `default` when no mapping matches.' })
/** src/model/ids.ts frameId: a UUID of version 8 derived from what identifies the frame. */
const FrameId = Type.String({
  format: 'uuid',
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
  description: 'Event id: a version 8 UUID derived from what identifies the frame, so every duplicate of it (retained replay, QoS 1 redelivery, a second gateway, another instance) carries the same id.',
})
const IsoTime = (description: string): TString => Type.String({ format: 'date-time', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$', description: `${description} ISO-8601 in UTC with milliseconds, as Date.toISOString() writes it.` })
const ReceivedAt = IsoTime('When lorabridge received it (bridge clock).')
const DevAddr = Type.String({ pattern: '^[0-9a-f]{8}$', description: 'DevAddr: 8 lower-case hex digits.' })
const Hex = Type.String({ pattern: '^(?:[0-9a-f]{2})*$', description: 'The application payload in lower-case hex.' })
const BASE64 = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$'
const Base64 = Type.String({ pattern: BASE64, description: 'The application payload in base64.' })
const Raw = Type.Unknown({ description: 'The network server\'s original message, only with `events.includeRaw: true`.' })

export const MultitechNetworkSchema = Type.Object({
  type: Type.Literal('multitech'),
  transport: Type.Union([Type.Literal('mqtt'), Type.Literal('http')], { description: 'How the Conduit reached lorabridge.' }),
  protocol: Type.Union([Type.Literal('1.0'), Type.Literal('1.1'), Type.Literal('1.1.1')], { description: 'The app-connect version the Conduit speaks.' }),
  gateway: Type.Optional(GatewayUuid),
  appEui: Type.Optional(DashedEui('The device\'s AppEUI (JoinEUI), dashed as app-connect spells it.')),
}, { ...Closed, description: 'A MultiTech Conduit running app-connect.' })

export const ThingParkNetworkSchema = Type.Object({
  type: Type.Literal('thingpark'),
  connection: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$', description: 'The configured `thingpark.connections[].name`.' }),
  asId: Type.Optional(Type.String({ minLength: 1, description: 'The connection\'s AS_ID.' })),
  customerId: Type.Optional(Type.String({ description: 'ThingPark `CustomerID` of the report.' })),
  lrcId: Type.Optional(Type.String({ description: 'ThingPark `Lrcid` of the report.' })),
}, { ...Closed, description: 'An Actility ThingPark connection (HTTPS Generic Application tunnel).' })

const NetworkSchema = Type.Union([MultitechNetworkSchema, ThingParkNetworkSchema], { description: 'Where the event came from.' })

export const RadioSchema = Type.Object({
  frequency: Type.Optional(Type.Number({ description: 'MHz.' })),
  dataRate: Type.Optional(Type.String({ description: 'As the network server names it: `SF8BW500` (app-connect), `SF7` (ThingPark).' })),
  spreadingFactor: Type.Optional(Type.Integer({ minimum: 0 })),
  bandwidthKHz: Type.Optional(Type.Integer({ minimum: 0 })),
  codingRate: Type.Optional(Type.String({ description: 'e.g. `4/5`.' })),
}, { ...Closed, description: 'Radio parameters of the frame, as far as the network server reports them.' })

export const GatewayReceptionSchema = Type.Object({
  id: Type.String({ minLength: 1, description: 'Gateway EUI dashed in lower case (app-connect `gweui`), or the ThingPark LRR id (`Lrrid`).' }),
  rssi: Type.Optional(Type.Number({ description: 'dBm.' })),
  snr: Type.Optional(Type.Number({ description: 'dB.' })),
}, Closed)

const Gateways = Type.Array(GatewayReceptionSchema, { minItems: 1, description: 'Gateways (ThingPark: LRRs) that heard the frame, best first where the network server orders them.' })

const EventKindSchema = Type.Union([
  Type.Literal('up'), Type.Literal('join'), Type.Literal('status'), Type.Literal('location'),
  Type.Literal('down/queued'), Type.Literal('down/sent'), Type.Literal('down/acked'), Type.Literal('down/failed'),
], { description: 'An event kind: the suffix of its topic.' })

// ---------------------------------------------------------------- device events

export const UplinkSchema = Type.Object({
  id: FrameId,
  app: AppName,
  devEui: DevEui,
  devAddr: Type.Optional(DevAddr),
  fPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
  fCnt: Type.Optional(Type.Integer({ minimum: 0, description: 'Uplink frame counter.' })),
  confirmed: Type.Optional(Type.Boolean({ description: 'A confirmed data up (when the network server tells).' })),
  adr: Type.Optional(Type.Boolean()),
  ack: Type.Optional(Type.Literal(true, { description: 'Present when the frame\'s ACK bit is set: it acknowledges the device\'s last confirmed downlink (app-connect `ack`, ThingPark `ACKbit`).' })),
  data: Base64,
  hex: Hex,
  decoded: Type.Optional(Type.Unknown({ description: 'What the first matching decoder of the rule files returned (a codec\'s `data`); absent when none matched or it failed.' })),
  decodeWarnings: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'The codec\'s `warnings` (docs/codecs.md); absent when it gave none.' })),
  decodeErrors: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Why the matching decoder gave no `decoded`: a codec\'s own `errors`, or the failure (timeout, exception, malformed result…) with its file and position. The same failure goes to `{root}/_bridge/rules/errors` with its code.' })),
  time: Type.Optional(IsoTime('When the gateway or network server received the frame.')),
  receivedAt: ReceivedAt,
  radio: Type.Optional(RadioSchema),
  gateways: Type.Optional(Gateways),
  network: NetworkSchema,
  raw: Type.Optional(Raw),
}, { ...Closed, title: 'Uplink', description: 'An uplink, published once per frame on `{root}/{app}/devices/{devEui}/up` (docs/topics.md).' })

export const JoinSchema = Type.Object({
  id: FrameId,
  app: AppName,
  devEui: DevEui,
  joinEui: Type.Optional(DashedEui('The JoinEUI, dashed in lower case.')),
  appEui: Type.Optional(DashedEui('The AppEUI, dashed in lower case (app-connect only).')),
  devAddr: Type.Optional(DevAddr),
  time: Type.Optional(IsoTime('When the network server reports the join.')),
  receivedAt: ReceivedAt,
  gateways: Type.Optional(Gateways),
  network: NetworkSchema,
  raw: Type.Optional(Raw),
}, { ...Closed, title: 'Join', description: 'A device joined (app-connect `joined`) or sent a join request (ThingPark), on `{root}/{app}/devices/{devEui}/join`.' })

export const DeviceStatusSchema = Type.Object({
  id: FrameId,
  app: AppName,
  devEui: DevEui,
  receivedAt: ReceivedAt,
  network: ThingParkNetworkSchema,
  type: Type.String({ minLength: 1, description: 'ThingPark notification `Type`: `reset`, `join`, `devstatusans`, or any other the LRC sends.' }),
  time: Type.Optional(IsoTime('When the network server issued the notification.')),
  devAddr: Type.Optional(DevAddr),
  battery: Type.Optional(Type.Number({ description: '`devstatusans` only: the DevStatusAns battery level (0 external power, 1–254, 255 unknown).' })),
  margin: Type.Optional(Type.Number({ description: '`devstatusans` only: the DevStatusAns demodulation margin (dB).' })),
  resetCause: Type.Optional(Type.String({ description: '`reset` only: the reset cause (`Var1`).' })),
  fCntDn: Type.Optional(Type.Integer({ minimum: 0, description: 'The device\'s next downlink frame counter.' })),
  raw: Type.Optional(Raw),
}, { ...Closed, title: 'Status', description: 'A ThingPark device notification (reset, join, DevStatusAns) on `{root}/{app}/devices/{devEui}/status`.' })

export const DeviceLocationSchema = Type.Object({
  id: FrameId,
  app: AppName,
  devEui: DevEui,
  receivedAt: ReceivedAt,
  network: ThingParkNetworkSchema,
  latitude: Type.Number({ description: 'Degrees (`DevLAT`).' }),
  longitude: Type.Number({ description: 'Degrees (`DevLON`).' }),
  altitude: Type.Optional(Type.Number({ description: 'Metres (`DevAlt`).' })),
  radius: Type.Optional(Type.Number({ description: 'Horizontal accuracy in metres (`DevLocRadius`).' })),
  altitudeRadius: Type.Optional(Type.Number({ description: 'Vertical accuracy in metres (`DevAltRadius`).' })),
  algorithm: Type.Optional(Type.Integer({ description: 'ThingPark geolocation algorithm (`NwGeolocAlgoUsed`, else `NwGeolocAlgo`).' })),
  fCnt: Type.Optional(Type.Integer({ minimum: 0, description: 'The uplink frame counter the solution used (`DevUlFCntUpUsed`).' })),
  time: Type.Optional(IsoTime('When the device was located (`DevLocTime`, else `Time`).')),
  raw: Type.Optional(Raw),
}, { ...Closed, title: 'Location', description: 'A ThingPark network geolocation on `{root}/{app}/devices/{devEui}/location`.' })

// ---------------------------------------------------------------- commands

const RequestCommonFields = {
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Correlation id, repeated on the outcome; generated (a UUID) when absent. Rules derive it from the rule and the event.' })),
  confirmed: Type.Optional(Type.Boolean({ default: false })),
  flush: Type.Optional(Type.Boolean({ default: false, description: 'The same as `replace` (its older name).' })),
  replace: Type.Optional(Type.Boolean({ default: false, description: 'Flush what is queued for the device first (at the network server, and what lorabridge holds); the flushed requests end in `down/failed` `replaced` where lorabridge knows them (docs/downlinks.md).' })),
  expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'Drop it if not sent by then (ISO 8601 with a time zone). Not together with `ttlSeconds` (docs/downlinks.md).' })),
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 604800, description: 'Drop it if not sent within this many seconds of the request.' })),
  devEui: Type.Optional(Type.String({ pattern: '^[-:]*(?:[0-9a-fA-F][-:]*){16}$', description: 'If present, must name the topic\'s device (any spelling: case, `-` and `:` are ignored).' })),
}
const RequestFields = { ...RequestCommonFields, fPort: Type.Integer({ minimum: 0, maximum: 255 }) }
export const RequestObject = Type.Record(Type.String(), Type.Unknown(), { description: 'What the device\'s codec encodes (its `encodeDownlink` `data`), instead of a payload (docs/codecs.md).' })
const RequestHex = Type.String({ pattern: '^([0-9a-fA-F]{2})*$', maxLength: 1024, description: 'The payload in hex (either case).' })
const RequestBase64 = Type.String({ pattern: BASE64, maxLength: 1024, description: 'The payload in base64.' })

const DownlinkRequestObject = Type.Union([
  Type.Object({ ...RequestFields, hex: RequestHex, data: Type.Optional(Type.Never()) }),
  Type.Object({ ...RequestFields, data: RequestBase64, hex: Type.Optional(Type.Never()) }),
  Type.Object({ ...RequestCommonFields, fPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'Overrides the fPort the codec names.' })), object: RequestObject, hex: Type.Optional(Type.Never()), data: Type.Optional(Type.Never()) }),
], { description: 'One DownlinkRequest: `fPort` and exactly one of `hex` or `data`; or `object`, encoded by the device\'s codec (`fPort` then optional). Other fields are ignored.' })

export const DownlinkRequestSchema = Type.Union([
  DownlinkRequestObject,
  Type.Array(DownlinkRequestObject, { minItems: 1, description: 'Several requests: each ends in its own outcome, an invalid one does not stop the others.' }),
], { title: 'DownlinkRequest', description: 'A downlink command on `{root}/{app}/devices/{devEui}/down`, published by applications and rules (docs/topics.md). Every request ends in exactly one `down/queued` or `down/failed` with its `id`; an invalid one in `down/failed` `invalid`.' })

export const ClearSchema = Type.Object({
  id: Type.Optional(Type.String({ minLength: 1, description: 'Correlation id for the outcome; generated when absent.' })),
}, { ...Closed, title: 'Clear', description: 'Flush the device\'s downlink queue where the network server supports it, on `{root}/{app}/devices/{devEui}/clear`: `{}`, or `{"id": …}` to name the outcome. (The daemon clears whatever the body; this is what to publish.)' })

// ---------------------------------------------------------------- downlink outcomes

const OutcomeFields = {
  id: Type.String({ minLength: 1, description: 'The request\'s id (for ThingPark reports: found through the CorrelationID).' }),
  app: Type.String({ pattern: '^[^/+#]*$', description: 'The application of the command\'s topic (for a device without a route, whatever the publisher named).' }),
  devEui: DevEui,
  receivedAt: IsoTime('When lorabridge published the outcome.'),
  network: Type.Optional(Type.Union([MultitechNetworkSchema, ThingParkNetworkSchema], { description: 'The route the request took; absent when it had none (`no-route`, `invalid`).' })),
  command: Type.Union([Type.Literal('down'), Type.Literal('clear')], { description: 'Which command this is the outcome of.' }),
}
const Caveats = Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'What the network cannot do of what the request asked, in words: e.g. an expiry a Conduit over MQTT cannot honour, a replace on app-connect v1.1 (docs/downlinks.md).' }))
const AckedBy = Type.Object({ id: Type.String({ description: 'The `id` of the uplink whose ACK bit acknowledged it.' }), fCnt: Type.Optional(Type.Integer({ minimum: 0 })) }, Closed)
const SentFields = {
  fCntDn: Type.Optional(Type.Integer({ minimum: 0, description: 'ThingPark `DevEUI_downlink_Sent`: the downlink frame counter used.' })),
  transmissionSlot: Type.Optional(Type.Integer({ minimum: 0, maximum: 9, description: 'ThingPark `DevEUI_downlink_Sent`: the slot used (1 RX1, 2 RX2, …).' })),
}

export const DownlinkFailureSchema = Type.Union([
  Type.Literal('no-route'), Type.Literal('gateway-offline'), Type.Literal('unsupported'), Type.Literal('invalid'), Type.Literal('encode-failed'), Type.Literal('too-large'),
  Type.Literal('not-acknowledged'), Type.Literal('unknown'), Type.Literal('replaced'),
  Type.Literal('expired'), Type.Literal('queue-full'), Type.Literal('flushed'), Type.Literal('shutdown'),
  Type.Literal('lrc-refused'), Type.Literal('network-error'), Type.Literal('rejected'), Type.Literal('not-transmitted'),
], {
  description: 'no-route: no uplink or join seen from the device in this application; gateway-offline: its Conduit is gone without a persistent session; unsupported: the route cannot do this (e.g. clear on app-connect v1.1 or ThingPark); invalid: the request does not match the DownlinkRequest schema; not-acknowledged: a confirmed downlink the device\'s uplinks show it did not receive; unknown: a confirmed downlink of which nothing could be concluded in downlinks.ackTimeoutSeconds; replaced: flushed by a later request with `replace`; too-large: larger than the device\'s region allows at the data rate of its latest uplink (RP002-1.0.4; the limit is in `detail`); encode-failed: its `object` could not be encoded (no codec with an encoder matches the device, or the codec failed: `codecErrors` has its messages); expired / queue-full / flushed: an HTTP Conduit did not fetch it in time / had too many waiting / a clear or flush dropped it; shutdown: the instance holding it for an HTTP Conduit stopped before the Conduit fetched it; lrc-refused: the ThingPark LRC answered 4xx; network-error: the LRC was unreachable past the retries; rejected: DevEUI_downlink_Rejected; not-transmitted: DevEUI_downlink_Sent with DeliveryStatus 0.',
})

export const DownQueuedSchema = Type.Object({ ...OutcomeFields, caveats: Caveats }, { ...Closed, title: 'Downlink queued', description: 'The network server (or the Conduit) accepted the request, on `{root}/{app}/devices/{devEui}/down/queued`.' })

export const DownSentSchema = Type.Object({ ...OutcomeFields, ...SentFields }, { ...Closed, title: 'Downlink sent', description: 'ThingPark reports the downlink transmitted (`DevEUI_downlink_Sent`, DeliveryStatus 1), on `{root}/{app}/devices/{devEui}/down/sent`.' })

export const DownPendingSchema = Type.Object({
  app: AppName,
  devEui: DevEui,
  pending: Type.Array(Type.Object({
    id: Type.String({ minLength: 1, description: 'The request\'s id.' }),
    fPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'Absent for an `object` not encoded yet that names none.' })),
    size: Type.Optional(Type.Integer({ minimum: 0, description: 'Payload bytes; absent for an `object` not encoded yet.' })),
    confirmed: Type.Boolean(),
    expiresAt: Type.Optional(IsoTime('When it is dropped if not sent by then.')),
    state: Type.Union([Type.Literal('held'), Type.Literal('awaiting-ack')], { description: 'held: lorabridge holds it (an HTTP Conduit has not fetched it, ThingPark retries); awaiting-ack: confirmed, with the network, no ACK yet.' }),
    since: IsoTime('When it entered this state.'),
  }, Closed), { description: 'Oldest first; empty when nothing is pending.' }),
  updatedAt: IsoTime('When the list was published.'),
}, { ...Closed, title: 'Pending downlinks', description: 'Retained on `{root}/{app}/devices/{devEui}/down/pending`: what lorabridge holds for the device or waits to hear acknowledged, republished when it changes (docs/downlinks.md).' })

export const DownAckedSchema = Type.Object({ ...OutcomeFields, ackedBy: AckedBy }, { ...Closed, title: 'Downlink acknowledged', description: 'A confirmed downlink the device acknowledged (the ACK bit of a later uplink), on `{root}/{app}/devices/{devEui}/down/acked` (docs/downlinks.md).' })

export const DownFailedSchema = Type.Object({
  ...OutcomeFields,
  reason: DownlinkFailureSchema,
  detail: Type.String({ minLength: 1, description: 'What happened, in words (the LRC\'s text, the validation errors, …).' }),
  ...SentFields,
  codecErrors: Type.Optional(Type.Array(Type.String(), { description: '`encode-failed`: the codec\'s own messages.' })),
}, { ...Closed, title: 'Downlink failed', description: 'The request (or clear) will not be delivered, on `{root}/{app}/devices/{devEui}/down/failed`: never silently dropped.' })

// ---------------------------------------------------------------- gateways

const GatewayStatusFields = {
  network: Type.Union([Type.Literal('multitech'), Type.Literal('thingpark')]),
  protocol: Type.Optional(Type.Union([Type.Literal('1.0'), Type.Literal('1.1'), Type.Literal('1.1.1')], { description: 'app-connect version.' })),
  transport: Type.Optional(Type.Union([Type.Literal('mqtt'), Type.Literal('http')])),
  gatewayEuis: Type.Array(DashedEui(), { description: 'EUIs of the Conduit\'s radio cards (from its init), dashed lower case; may be empty.' }),
  since: IsoTime('When the gateway went online or offline.'),
  lastSeen: IsoTime('Last evidence of life (moved on at most once a minute while online).'),
}

export const GatewayStatusSchema = Type.Union([
  Type.Object({ online: Type.Literal(true), ...GatewayStatusFields }, Closed),
  Type.Object({
    online: Type.Literal(false),
    ...GatewayStatusFields,
    reason: Type.Union([Type.Literal('close'), Type.Literal('will'), Type.Literal('connection-lost')], { description: 'close: app-connect said so; will: its last will; connection-lost: the socket died without either.' }),
  }, Closed),
], { title: 'Gateway status', description: 'Retained presence of a gateway on `{root}/gateways/{gatewayId}/status`, published on every transition.' })

// ---------------------------------------------------------------- the daemon's own topics

export const RuleErrorSchema = Type.Object({
  file: Type.String({ description: 'File name in rules.dir.' }),
  path: Type.String({ description: 'Where in the file, e.g. `rules[1].if`, or `(file)`.' }),
  line: Type.Integer({ minimum: 1 }),
  column: Type.Integer({ minimum: 0 }),
  message: Type.String(),
  code: Type.Union([Type.Literal('LB_ERR_RULE_FILE'), Type.Literal('LB_ERR_RULE_COMPILE'), Type.Literal('LB_ERR_CODEC_LOAD')]),
  jsonata: Type.Optional(Type.Object({
    code: Type.Optional(Type.String()),
    position: Type.Optional(Type.Integer({ minimum: 0 })),
    token: Type.Optional(Type.String()),
  }, { ...Closed, description: 'JSONata\'s own error code, position in the expression and token.' })),
}, Closed)

const CounterValue = Type.Integer({ minimum: 0 })
export const RuleCountersSchema = Type.Object({
  matched: CounterValue, passed: CounterValue, failed: CounterValue, noResult: CounterValue, suppressed: CounterValue, actionsOk: CounterValue, actionsFailed: CounterValue,
}, { ...Closed, description: 'Counts since the rule was loaded on this instance.' })

export const RulesStatusSchema = Type.Object({
  files: Type.Array(Type.Object({
    file: Type.String(),
    ok: Type.Boolean({ description: 'False when the file\'s latest version failed; its last good version keeps running.' }),
    loadedAt: IsoTime('When the running version was loaded.'),
    rules: Type.Array(Type.String(), { description: 'Names of the running rules.' }),
    decoders: Type.Array(Type.String(), { description: 'Names of the running decoders.' }),
    errors: Type.Optional(Type.Array(RuleErrorSchema, { minItems: 1 })),
  }, Closed)),
  rules: Type.Array(Type.Object({
    name: Type.String(),
    file: Type.String(),
    on: Type.Array(EventKindSchema, { minItems: 1, uniqueItems: true }),
    counters: RuleCountersSchema,
  }, Closed)),
  decoders: Type.Array(Type.Object({
    name: Type.String(),
    file: Type.String(),
    codec: Type.Optional(Type.Object({
      path: Type.String({ description: 'The codec file, relative to the rules directory.' }),
      forms: Type.Array(Type.Union([Type.Literal('ts013'), Type.Literal('ttn-v2'), Type.Literal('chirpstack-v3')]), { description: 'The function forms found in the file.' }),
      encodes: Type.Boolean({ description: 'Whether it can encode downlinks (`object` requests).' }),
      calls: CounterValue,
      ok: CounterValue,
      failed: CounterValue,
      failures: Type.Record(Type.String({ pattern: '^LB_ERR_CODEC_[A-Z]+$' }), CounterValue, { description: 'Failed calls by error code.' }),
      restarts: CounterValue,
    }, { ...Closed, description: 'For a codec decoder: its forms and counters since it was loaded on this instance.' })),
  }, Closed)),
}, { ...Closed, title: 'Rules status', description: 'Retained on `{root}/_bridge/rules`: the loaded rule files, their errors and every rule\'s counters; republished on a change, at most every 5 s.' })

export const RuleDeadLetterSchema = Type.Object({
  rule: Type.String({ description: 'The rule or decoder name.' }),
  file: Type.String(),
  stage: Type.Union([Type.Literal('decode'), Type.Literal('if'), Type.Literal('downlink'), Type.Literal('publish')]),
  eventId: Type.Optional(Type.String({ description: 'The `id` of the event being evaluated.' })),
  event: EventKindSchema,
  app: Type.Optional(Type.String()),
  devEui: Type.Optional(DevEui),
  code: Type.String({ pattern: '^(?:LB_ERR_RULE_(?:EVAL(?::[A-Za-z0-9]+)?|ACTION|TIMEOUT|DEPTH|LIMIT)|LB_ERR_CODEC_[A-Z]+)$', description: 'LB_ERR_RULE_EVAL[:JSONata code], LB_ERR_RULE_ACTION, LB_ERR_RULE_TIMEOUT, LB_ERR_RULE_DEPTH, LB_ERR_RULE_LIMIT, or for a codec decoder LB_ERR_CODEC_… (docs/errors.md).' }),
  message: Type.String({ description: 'One line; for an expression\'s failure `file:line:column: path (rule "name"): $function: what went wrong`.' }),
  position: Type.Optional(Type.Integer({ minimum: 0, description: 'Position in the expression, when JSONata gives one.' })),
  line: Type.Optional(Type.Integer({ minimum: 1, description: 'The line of the rule file where the failing function, operator or expression is.' })),
  column: Type.Optional(Type.Integer({ minimum: 1 })),
  path: Type.Optional(Type.String({ description: 'The expression\'s key in the file, e.g. `rules[0].downlink`.' })),
  function: Type.Optional(Type.String({ description: 'The function that failed, e.g. `$substring`.' })),
  operator: Type.Optional(Type.String({ description: 'The operator that failed, e.g. `+` or `&`.' })),
  at: IsoTime('When the evaluation failed.'),
}, { ...Closed, title: 'Rule dead letter', description: 'One failed rule or decoder evaluation, on `{root}/_bridge/rules/errors` (not retained).' })

export const InstanceStatusSchema = Type.Object({
  name: Type.String({ pattern: '^[a-z0-9_-]+$', description: 'The instance: host name and 8 hex digits of its data directory; stable across restarts.' }),
  instance: Type.String({ format: 'uuid', description: 'Random per start: tells two runs of the same instance apart.' }),
  version: Type.String({ minLength: 1, description: 'lorabridge\'s version.' }),
  online: Type.Boolean({ description: 'False once the instance stopped cleanly. An instance that died cannot say so: its `lastSeen` stops moving.' }),
  startedAt: IsoTime('When this run started.'),
  lastSeen: IsoTime('Moves every 60 s while the instance runs; older than two minutes means it is gone.'),
  stoppedAt: Type.Optional(IsoTime('When it stopped cleanly.')),
  store: Type.Union([Type.Literal('memory'), Type.Literal('redis')], { description: 'Where sessions and shared state live.' }),
  listeners: Type.Array(Type.Object({
    kind: Type.Union([Type.Literal('mqtt'), Type.Literal('http')]),
    protocol: Type.String({ minLength: 1 }),
    address: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
  }, Closed), { description: 'What it listens on.' }),
}, { ...Closed, title: 'Instance status', description: 'Retained on `{root}/_bridge/instances/{name}`: one per lorabridge instance (several in a cluster), published when it starts, refreshed every 60 s, and with `online: false` when it stops.' })

// ---------------------------------------------------------------- the catalogue

export const EVENT_SCHEMAS = {
  uplink: UplinkSchema,
  join: JoinSchema,
  status: DeviceStatusSchema,
  location: DeviceLocationSchema,
  'downlink-request': DownlinkRequestSchema,
  clear: ClearSchema,
  'down-queued': DownQueuedSchema,
  'down-sent': DownSentSchema,
  'down-acked': DownAckedSchema,
  'down-pending': DownPendingSchema,
  'down-failed': DownFailedSchema,
  'gateway-status': GatewayStatusSchema,
  'rules-status': RulesStatusSchema,
  'rules-error': RuleDeadLetterSchema,
  'instance-status': InstanceStatusSchema,
} as const satisfies Record<string, TSchema>

export type EventSchemaName = keyof typeof EVENT_SCHEMAS

/** Which schema each topic carries; `{root}` is `topics.root`, `{…}` one topic level. */
export const TOPIC_SCHEMAS: ReadonlyArray<{ topic: string, schema: EventSchemaName }> = [
  { topic: '{root}/{app}/devices/{devEui}/up', schema: 'uplink' },
  { topic: '{root}/{app}/devices/{devEui}/join', schema: 'join' },
  { topic: '{root}/{app}/devices/{devEui}/status', schema: 'status' },
  { topic: '{root}/{app}/devices/{devEui}/location', schema: 'location' },
  { topic: '{root}/{app}/devices/{devEui}/down', schema: 'downlink-request' },
  { topic: '{root}/{app}/devices/{devEui}/clear', schema: 'clear' },
  { topic: '{root}/{app}/devices/{devEui}/down/queued', schema: 'down-queued' },
  { topic: '{root}/{app}/devices/{devEui}/down/sent', schema: 'down-sent' },
  { topic: '{root}/{app}/devices/{devEui}/down/acked', schema: 'down-acked' },
  { topic: '{root}/{app}/devices/{devEui}/down/pending', schema: 'down-pending' },
  { topic: '{root}/{app}/devices/{devEui}/down/failed', schema: 'down-failed' },
  { topic: '{root}/gateways/{gatewayId}/status', schema: 'gateway-status' },
  { topic: '{root}/_bridge/rules', schema: 'rules-status' },
  { topic: '{root}/_bridge/rules/errors', schema: 'rules-error' },
  { topic: '{root}/_bridge/instances/{name}', schema: 'instance-status' },
]

export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema'

/** `$id` of a schema: a URN, as the files have no canonical web address. */
export function schemaId (name: EventSchemaName): string {
  return `urn:lorabridge:schema:${name}`
}

/** The schema as a standalone JSON Schema document (draft 2020-12), as written to docs/schemas/<name>.schema.json. */
export function schemaDocument (name: EventSchemaName): Record<string, unknown> {
  // JSON round trip: plain data without TypeBox's symbol keys; `$schema`, `$id`, title and description first.
  const { title, description, ...body } = JSON.parse(JSON.stringify(EVENT_SCHEMAS[name])) as Record<string, unknown>
  return { $schema: JSON_SCHEMA_DIALECT, $id: schemaId(name), title, description, ...body }
}

/** Every schema file under docs/schemas/, with its exact text. */
export function schemaFiles (): Array<{ file: string, text: string }> {
  return (Object.keys(EVENT_SCHEMAS) as EventSchemaName[]).map(name => ({ file: `${name}.schema.json`, text: `${JSON.stringify(schemaDocument(name), null, 2)}\n` }))
}

// ---------------------------------------------------------------- the schemas and the code agree
// Type-level only (erased from the build): `npm run build` and `tsc --noEmit` fail here when a
// field is added, removed, renamed or retyped on one side only.

type Keys<T> = T extends object ? keyof T : never
/** `A` and `B` name the same fields (for unions: those of any member). */
type SameKeys<A, B> = [Exclude<Keys<A>, Keys<B>> | Exclude<Keys<B>, Keys<A>>] extends [never] ? true : false
type Extends<A, B> = [A] extends [B] ? true : false
/** `A` and `B` accept the same values and name the same fields. */
type Same<A, B> = [Extends<A, B>, Extends<B, A>, SameKeys<A, B>] extends [true, true, true] ? true : false
/** Every value of `Code` (what the code builds) passes the schema, which names no field the type does not. */
type Covers<Schema, Code> = [Extends<Code, Schema>, SameKeys<Schema, Code>] extends [true, true] ? true : false
type Assert<T extends true> = T

type WithThingPark<T> = Omit<T, 'network'> & { network: ThingParkNetwork }
type Outcome<Omitted extends keyof DownlinkOutcome, Required extends keyof DownlinkOutcome> = Omit<DownlinkOutcome, Omitted | Required> & { [K in Required]-?: NonNullable<DownlinkOutcome[K]> }

export type SchemaTypeChecks = [
  Assert<Same<Static<typeof InstanceStatusSchema>, InstanceStatusBody>>,
  Assert<Same<Static<typeof MultitechNetworkSchema>, MultitechNetwork>>,
  Assert<Same<Static<typeof ThingParkNetworkSchema>, ThingParkNetwork>>,
  Assert<Same<Static<typeof RadioSchema>, Radio>>,
  Assert<Same<Static<typeof GatewayReceptionSchema>, GatewayReception>>,
  Assert<Same<Static<typeof EventKindSchema>, EventKind>>,
  Assert<Same<Static<typeof DownlinkFailureSchema>, DownlinkFailure>>,
  Assert<Same<Static<typeof UplinkSchema>, Uplink>>,
  Assert<Same<Static<typeof JoinSchema>, Join>>,
  // status and location come from ThingPark only (src/thingpark/normalize.ts).
  Assert<Same<Static<typeof DeviceStatusSchema>, WithThingPark<DeviceStatus>>>,
  Assert<Same<Static<typeof DeviceLocationSchema>, WithThingPark<DeviceLocation>>>,
  Assert<SameKeys<Static<typeof DeviceStatusSchema>, DeviceStatus>>,
  Assert<SameKeys<Static<typeof DeviceLocationSchema>, DeviceLocation>>,
  // Every outcome names its command; a failure always has a reason and a detail (src/core/downlinks.ts, the transports).
  Assert<Same<Static<typeof DownQueuedSchema>, Outcome<'reason' | 'detail' | 'fCntDn' | 'transmissionSlot' | 'codecErrors' | 'ackedBy', 'command'>>>,
  Assert<Same<Static<typeof DownSentSchema>, Outcome<'reason' | 'detail' | 'codecErrors' | 'caveats' | 'ackedBy', 'command'>>>,
  Assert<Same<Static<typeof DownAckedSchema>, Outcome<'reason' | 'detail' | 'fCntDn' | 'transmissionSlot' | 'codecErrors' | 'caveats', 'command' | 'ackedBy'>>>,
  Assert<Same<Static<typeof DownFailedSchema>, Outcome<'caveats' | 'ackedBy', 'command' | 'reason' | 'detail'>>>,
  // Every field of the outcome type is in one of the outcome schemas.
  Assert<SameKeys<Static<typeof DownQueuedSchema> | Static<typeof DownSentSchema> | Static<typeof DownAckedSchema> | Static<typeof DownFailedSchema>, DownlinkOutcome>>,
  // The presence type is looser than what it carries (string where a few values occur).
  Assert<Extends<Static<typeof GatewayStatusSchema>, GatewayStatus>>,
  Assert<SameKeys<Static<typeof GatewayStatusSchema>, GatewayStatus>>,
  Assert<Covers<Static<typeof RuleErrorSchema>, RuleError>>,
  Assert<Same<Static<typeof RuleCountersSchema>, RuleCounters>>,
  Assert<Covers<Static<typeof RuleDeadLetterSchema>, DeadLetter>>,
]
