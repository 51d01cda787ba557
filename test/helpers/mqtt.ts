/** Real mqtt.js clients for tests: connect outcomes as CONNACK codes, and message collection. */
import mqtt, { type IClientOptions as MqttOptions, type MqttClient } from 'mqtt'
import type { ConnectionOptions } from 'node:tls'

/** mqtt.js passes TLS options (minVersion, maxVersion, …) through to tls.connect. */
export type IClientOptions = MqttOptions & Pick<ConnectionOptions, 'minVersion' | 'maxVersion'>

export type { MqttClient }

/** Connects and returns the client, or throws with `code` = the CONNACK return code. */
export async function connect (url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  // allowRetries=false: a connection closed before CONNACK rejects instead of waiting for a retry.
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts }, false)
}

/** 0 when the connection is accepted, else the CONNACK return code, or the transport error. */
export async function connackCode (url: string, opts: IClientOptions = {}): Promise<number | string> {
  try {
    const client = await connect(url, opts)
    await client.endAsync()
    return 0
  } catch (err) {
    const e = err as Error & { code?: number | string }
    return e.code ?? e.message
  }
}

/** Subscribes and returns the granted QoS per filter (128 = refused). */
export async function subscribeGranted (client: MqttClient, filter: string, qos: 0 | 1 | 2 = 1): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos })
    return granted[0]?.qos ?? -1
  } catch (err) {
    // mqtt.js rejects on a SUBACK failure code and keeps the SUBACK on the error.
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (granted?.[0] === undefined) throw err
    return granted[0]
  }
}

/** Resolves with the first message on `topic`, or rejects after `timeoutMs`. */
export function nextMessage (client: MqttClient, topic: string, timeoutMs = 10_000): Promise<{ topic: string, payload: Buffer }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.off('message', onMessage); reject(new Error(`no message on ${topic}`)) }, timeoutMs)
    const onMessage = (t: string, payload: Buffer): void => {
      if (t !== topic) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve({ topic: t, payload })
    }
    client.on('message', onMessage)
  })
}

/** Collects every message the client receives. */
export function collect (client: MqttClient): Array<{ topic: string, payload: string }> {
  const got: Array<{ topic: string, payload: string }> = []
  client.on('message', (topic, payload) => { got.push({ topic, payload: payload.toString() }) })
  return got
}

/** Resolves when the broker closes the client's connection (or after timeoutMs with false). */
export function closedByBroker (client: MqttClient, timeoutMs = 5000): Promise<boolean> {
  return new Promise(resolve => {
    if (!client.connected) { resolve(true); return }
    const timer = setTimeout(() => resolve(false), timeoutMs)
    client.once('close', () => { clearTimeout(timer); resolve(true) })
  })
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Polls until `probe` gives a value (not undefined/false), or throws after timeoutMs. */
export async function until<T> (probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** A client subscribed to everything under `root`, collecting what it receives (an admin's view). */
export async function observe (url: string, root = 'lorabridge', clientId = 'observer'): Promise<{ client: MqttClient, seen: Array<{ topic: string, payload: string }> }> {
  const client = await connect(url, { clientId })
  const seen = collect(client)
  await client.subscribeAsync(`${root}/#`, { qos: 1 })
  return { client, seen }
}
