/**
 * Counters and gauges of one daemon, in its own prom-client registry (several daemons can share a
 * test process). Exposed on `GET /metrics`. Later features add their families here.
 */
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client'

/** Figures read at scrape time from the components that own them (set when they start). */
export interface MetricSources {
  /** Bytes through the MQTT sockets, by listener protocol (closed sockets included). */
  bytes?: () => Array<{ protocol: string, read: number, written: number }>
  /** Subscriptions held by the connected clients. */
  subscriptions?: () => number
}

export function createMetrics () {
  const registry = new Registry()
  const sources: MetricSources = {}
  // lorabridge_process_cpu_seconds_total, lorabridge_nodejs_heap_size_used_bytes, …
  collectDefaultMetrics({ register: registry, prefix: 'lorabridge_' })
  const m = {
    registry,
    sources,
    mqttConnections: new Counter({ name: 'lorabridge_mqtt_connections_total', help: 'Sockets accepted, by listener protocol', labelNames: ['protocol'] as const, registers: [registry] }),
    mqttRejected: new Counter({ name: 'lorabridge_mqtt_rejected_total', help: 'Connections refused or cut off, by error code', labelNames: ['code'] as const, registers: [registry] }),
    mqttDenied: new Counter({ name: 'lorabridge_mqtt_denied_total', help: 'Publishes and subscriptions refused by the ACL', labelNames: ['action', 'role'] as const, registers: [registry] }),
    mqttClientErrors: new Counter({ name: 'lorabridge_mqtt_client_errors_total', help: 'Clients disconnected for an error, by error code', labelNames: ['code'] as const, registers: [registry] }),
    mqttClients: new Gauge({ name: 'lorabridge_mqtt_clients', help: 'Connected MQTT clients', registers: [registry] }),
    authFailures: new Counter({ name: 'lorabridge_auth_failures_total', help: 'Failed authentications, by error code', labelNames: ['code'] as const, registers: [registry] }),
    tlsFailures: new Counter({ name: 'lorabridge_tls_failures_total', help: 'TLS handshakes or client certificates refused, by error code', labelNames: ['code', 'protocol'] as const, registers: [registry] }),
    eventsPublished: new Counter({ name: 'lorabridge_events_published_total', help: 'Normalized events published, by network and kind', labelNames: ['network', 'kind'] as const, registers: [registry] }),
    duplicates: new Counter({ name: 'lorabridge_duplicates_total', help: 'Duplicates of an already published frame (retained replays, redeliveries, other gateways)', labelNames: ['network', 'kind'] as const, registers: [registry] }),
    ingestErrors: new Counter({ name: 'lorabridge_ingest_errors_total', help: 'Network-server messages refused as malformed, by error code', labelNames: ['network', 'code'] as const, registers: [registry] }),
    ingestIgnored: new Counter({ name: 'lorabridge_ingest_ignored_total', help: 'Network-server messages with nothing to normalize (responses, commands, moved, empty), by reason', labelNames: ['network', 'reason'] as const, registers: [registry] }),
    downlinks: new Counter({ name: 'lorabridge_downlinks_total', help: 'Downlink and clear requests by outcome (queued, sent, failed) and failure reason', labelNames: ['network', 'result', 'reason'] as const, registers: [registry] }),
    downlinkRetries: new Counter({ name: 'lorabridge_thingpark_downlink_retries_total', help: 'ThingPark downlink POSTs retried after a 5xx or a network error', labelNames: ['connection'] as const, registers: [registry] }),
    ruleEvents: new Counter({ name: 'lorabridge_rule_events_total', help: 'Rule evaluations by rule and counter (matched, passed, failed, noResult, suppressed, actionsOk, actionsFailed)', labelNames: ['rule', 'counter'] as const, registers: [registry] }),
    gatewayUplinks: new Counter({ name: 'lorabridge_gateway_uplinks_total', help: 'Uplink and join frames by the gateway that forwarded them (Conduit GW-UUID, ThingPark LRR), published or duplicate', labelNames: ['network', 'gateway', 'result'] as const, registers: [registry] }),
    gatewayErrors: new Counter({ name: 'lorabridge_gateway_errors_total', help: 'Messages from a known gateway refused as malformed, by error code', labelNames: ['network', 'gateway', 'code'] as const, registers: [registry] }),
    thingparkTokenFailures: new Counter({ name: 'lorabridge_thingpark_token_failures_total', help: 'ThingPark reports refused with 401: bad or missing token, time outside the window, replayed token', labelNames: ['connection', 'code'] as const, registers: [registry] }),
    thingparkReplayEvictions: new Counter({ name: 'lorabridge_thingpark_replay_evictions_total', help: 'Unexpired ThingPark tokens the full in-memory replay memory forgot (thingpark.replayMemoryMaxEntries); older reports are then refused', registers: [registry] }),
    mqttSubscriptions: new Gauge({ name: 'lorabridge_mqtt_subscriptions', help: 'Subscriptions of the connected MQTT clients (this instance)', registers: [registry], collect () { if (sources.subscriptions !== undefined) this.set(sources.subscriptions()) } }),
    mqttMessagesReceived: new Counter({ name: 'lorabridge_mqtt_messages_received_total', help: 'PUBLISH packets received from MQTT clients', registers: [registry] }),
    mqttDropped: new Counter({ name: 'lorabridge_mqtt_dropped_total', help: 'Deliveries to MQTT clients not made, by reason (queue-full: the client did not keep up, mqtt.limits.maxQueued*; not-authorized: a stored session\'s message the client may not read)', labelNames: ['reason'] as const, registers: [registry] }),
    mqttThrottled: new Counter({ name: 'lorabridge_mqtt_throttled_total', help: 'PUBLISH packets held back because their client was over mqtt.limits.publishRate', registers: [registry] }),
    mqttRevoked: new Counter({ name: 'lorabridge_mqtt_revoked_total', help: 'Connections ended because their user was removed or changed, or their console session ended', registers: [registry] }),
    mqttRetainRefused: new Counter({ name: 'lorabridge_mqtt_retain_refused_total', help: 'Retained publications kept live only (command topic, per-user or total retained limit), by reason', labelNames: ['reason'] as const, registers: [registry] }),
    mqttMessagesSent: new Counter({ name: 'lorabridge_mqtt_messages_sent_total', help: 'PUBLISH packets delivered to MQTT clients', registers: [registry] }),
    mqttBytesReceived: new Counter({
      name: 'lorabridge_mqtt_bytes_received_total', help: 'Bytes read from MQTT client sockets (on the wire: TLS and WebSocket framing included), by listener protocol', labelNames: ['protocol'] as const, registers: [registry],
      collect () { const b = sources.bytes?.(); if (b !== undefined) { this.reset(); for (const x of b) this.inc({ protocol: x.protocol }, x.read) } },
    }),
    mqttBytesSent: new Counter({
      name: 'lorabridge_mqtt_bytes_sent_total', help: 'Bytes written to MQTT client sockets (on the wire), by listener protocol', labelNames: ['protocol'] as const, registers: [registry],
      collect () { const b = sources.bytes?.(); if (b !== undefined) { this.reset(); for (const x of b) this.inc({ protocol: x.protocol }, x.written) } },
    }),
    codecCalls: new Counter({ name: 'lorabridge_codec_calls_total', help: 'Calls of JavaScript payload codecs, by codec file, operation and result (ok or the LB_ERR_CODEC_… code)', labelNames: ['codec', 'operation', 'result'] as const, registers: [registry] }),
    ruleDeadLetters: new Counter({ name: 'lorabridge_rule_dead_letters_total', help: 'Rule and decoder evaluation errors sent to the dead-letter topic', labelNames: ['stage'] as const, registers: [registry] }),
  }
  return m
}

export type Metrics = ReturnType<typeof createMetrics>

/** The current value of a counter for one label set (0 when never incremented). */
export async function counterValue (c: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await c.get()
  return values.filter(v => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0)
}
