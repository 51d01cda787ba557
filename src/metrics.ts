/**
 * Counters and gauges of one daemon, in its own prom-client registry (several daemons can share a
 * test process). Exposed on `GET /metrics`. Later features add their families here.
 */
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client'

export function createMetrics () {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'lorabridge_process_' })
  const m = {
    registry,
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
