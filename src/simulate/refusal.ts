/**
 * What a simulator says when the broker or server will not have it: the MQTT CONNACK return code
 * with its meaning and what to check, instead of mqtt.js's bare "Connection refused: Not
 * authorized" (the reason itself is only in the daemon's log, where a refused client cannot look).
 */

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3) with the options of `simulate conduit` to check. */
const CONNACK: Record<number, { meaning: string, hint: string }> = {
  1: { meaning: 'unacceptable protocol version', hint: 'the broker does not speak MQTT 3.1.1' },
  2: { meaning: 'identifier rejected', hint: 'another user holds this client id: app-connect derives it from --gw-uuid (lorawan/…/GW-UUID), so use the GW-UUID the user is bound to' },
  3: { meaning: 'server unavailable', hint: 'the broker refuses logins for now (too many password checks or failed logins); wait and retry' },
  4: { meaning: 'bad user name or password', hint: 'check --username and --password (or --password-stdin), or the client certificate (--cert/--key)' },
  5: { meaning: 'not authorized', hint: 'check --username/--password, and --gw-uuid for a gateway user bound to a GW-UUID (users add … --gateway UUID); the daemon\'s log line "authentication refused" gives the reason' },
}

export function connackMessage (code: number): string {
  const c = CONNACK[code]
  if (c === undefined) return `connection refused: CONNACK ${code} (not an MQTT 3.1.1 return code)`
  return `connection refused: CONNACK ${code} ${c.meaning} — ${c.hint}`
}

/** The CONNACK return code carried by an mqtt.js connect error, if it is one. */
export function connackCode (err: unknown): number | undefined {
  if (!(err instanceof Error) || !/^Connection refused/.test(err.message)) return undefined
  const code = (err as Error & { code?: unknown }).code
  return typeof code === 'number' ? code : undefined
}

/** One line for a failed connection, naming the URL and what to check. */
export function connectFailureMessage (url: string, err: unknown): string {
  const code = connackCode(err)
  if (code !== undefined) return connackMessage(code)
  const e = err as NodeJS.ErrnoException
  const text = e instanceof Error ? e.message : String(err)
  if (e?.code === 'ECONNREFUSED') return `cannot connect to ${url}: ${text} — nothing listens there; is the daemon running, and are the host and port right?`
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') return `cannot connect to ${url}: ${text} — the host name does not resolve`
  if (e?.code === 'ETIMEDOUT') return `cannot connect to ${url}: ${text} — no answer; a firewall, or the wrong address?`
  if (/closed before CONNACK/.test(text)) return `${text} — the broker gave no reason; its log says why (a TLS listener needs mqtts:// and --ca, a plain one mqtt://)`
  if (/certificate|self[- ]signed|CERT_|unable to verify/i.test(text)) return `cannot connect to ${url}: ${text} — give the server's CA with --ca (data/ca.crt for the development CA)`
  return `cannot connect to ${url}: ${text}`
}
