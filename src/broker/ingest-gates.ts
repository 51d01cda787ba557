/**
 * Work done on a client's publication before the broker acknowledges it (Aedes writes PUBACK right
 * after `authorizePublish`): the app-connect ingest, so that a Conduit's uplink is acknowledged
 * only once its normalized event is kept, and the downlink commands of applications. Each gate has
 * an owner and claims the topics it tests for; a publication goes to the first gate that claims it.
 * A gate's rejected promise closes the connection without PUBACK, and the client sends again.
 */
import type { PublishPacket } from 'aedes'

export interface PublishOrigin {
  /** undefined for a will the broker publishes for a client that is gone. */
  clientId: string | undefined
  /** The GW-UUID the sender's credentials are bound to (a gateway user with `gateway`). */
  boundGateway: string | undefined
}

export interface IngestGate {
  /** Who registered it (for errors and logs). */
  readonly owner: string
  /** Cheap: whether this gate takes a publication on `topic`. */
  claims (topic: string): boolean
  /** undefined: nothing to wait for before PUBACK. */
  handle (packet: PublishPacket, origin: PublishOrigin): Promise<void> | undefined
}

export class IngestGates {
  private gates: IngestGate[] = []

  /** Adds a gate; returns its removal. Two gates of one owner are a wiring error. */
  add (gate: IngestGate): () => void {
    if (this.gates.some(g => g.owner === gate.owner)) throw new Error(`an ingest gate of "${gate.owner}" is already registered`)
    this.gates = [...this.gates, gate]
    return () => { this.gates = this.gates.filter(g => g !== gate) }
  }

  run (packet: PublishPacket, origin: PublishOrigin): Promise<void> | undefined {
    for (const g of this.gates) if (g.claims(packet.topic)) return g.handle(packet, origin)
    return undefined
  }
}
