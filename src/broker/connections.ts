/**
 * What the broker knows about each connection beyond what Aedes keeps: which listener accepted
 * it, the peer address, the certificate identity, and (after CONNECT) the authenticated identity.
 * Weak maps, so that nothing outlives the socket.
 */
import type { Client } from 'aedes'
import type { MqttListenerConfig } from '../config/schema.js'
import type { Identity } from '../auth/acl.js'
import type { CertificateFacts } from '../tls/server-options.js'

export interface ConnectionInfo {
  protocol: MqttListenerConfig['protocol']
  listener: MqttListenerConfig
  remoteAddress: string
  certificateUser: string | undefined
  /** Fingerprint, serial and issue date of that certificate, checked against the users file's records. */
  certificate?: CertificateFacts | undefined
  /** The console's own live-tail channel: the only place its one-time secrets are accepted. */
  console?: boolean
}

export class ConnectionRegistry {
  private readonly infos = new WeakMap<object, ConnectionInfo>()
  private readonly identities = new WeakMap<Client, Identity>()
  /** The console one-time secret a client authenticated with (identity `via: token`). */
  private readonly secrets = new WeakMap<Client, string>()

  register (stream: object, info: ConnectionInfo): void { this.infos.set(stream, info) }
  get (stream: object): ConnectionInfo | undefined { return this.infos.get(stream) }
  setIdentity (client: Client, identity: Identity): void { this.identities.set(client, identity) }
  identity (client: Client): Identity | undefined { return this.identities.get(client) }
  setSecret (client: Client, secret: string): void { this.secrets.set(client, secret) }
  secret (client: Client): string | undefined { return this.secrets.get(client) }
}
