/**
 * Defences that act on raw connections before Aedes sees a packet: a per-address connect rate
 * limit, and a cap on MQTT packet size (Aedes has none; mqtt-packet buffers whatever length a
 * header announces).
 */
import type { Duplex } from 'node:stream'
import { TokenBuckets } from '../util/token-buckets.js'

/** Connections per remote address: `perAddress` of them, refilled over `windowSeconds`. */
export class ConnectRateLimiter extends TokenBuckets {
  /** Takes one token for `address`; false when the address is over its rate. */
  allow (address: string): boolean { return this.take(address) }
}

/**
 * Follows MQTT framing (fixed header byte, remaining length varint, body) across arbitrary chunk
 * boundaries and reports the first packet whose total size exceeds the limit, as soon as its
 * header is read — before its body is buffered.
 */
export class PacketSizeTracker {
  /** Bytes of the current packet's body still to skip. */
  private remaining = 0
  /** 0: expecting a fixed header byte; 1..4: reading length varint byte n. */
  private state = 0
  private length = 0
  private multiplier = 1

  constructor (private readonly maxPacketSize: number) {}

  /** Returns the oversized packet's size, or 0 while every packet so far is within the limit. */
  feed (chunk: Buffer): number {
    let i = 0
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, chunk.length - i)
        this.remaining -= skip
        i += skip
        continue
      }
      const byte = chunk[i++] as number
      if (this.state === 0) {
        this.state = 1; this.length = 0; this.multiplier = 1
        continue
      }
      this.length += (byte & 0x7f) * this.multiplier
      this.multiplier *= 128
      if ((byte & 0x80) !== 0 && this.state < 4) { this.state++; continue }
      // A fifth length byte is a protocol error that mqtt-packet reports itself.
      const total = 1 + this.state + this.length
      this.state = 0
      if (total > this.maxPacketSize) return total
      this.remaining = this.length
    }
    return 0
  }
}

/**
 * Makes every `read()` Aedes does on `stream` pass through a PacketSizeTracker. Aedes reads with
 * `conn.read()` on 'readable' (lib/client.js), so watching `read` sees every byte without adding a
 * stream to the pipeline.
 */
export function guardPacketSize (stream: Duplex, maxPacketSize: number, onOversize: (size: number) => void): void {
  const tracker = new PacketSizeTracker(maxPacketSize)
  const read = stream.read.bind(stream)
  let tripped = false
  stream.read = (size?: number) => {
    const chunk: unknown = read(size)
    if (!tripped && Buffer.isBuffer(chunk)) {
      const over = tracker.feed(chunk)
      if (over > 0) {
        tripped = true
        onOversize(over)
        stream.destroy()
        return null
      }
    }
    return chunk
  }
}

/**
 * Holds a socket's writes until the current turn of the event loop ends, then sends them in one
 * system call (and, over TLS, one record). Aedes writes packet by packet, and one uplink gives a
 * Conduit its PUBACK and, a few microtasks later, the rule's downlink: written apart, each is a
 * syscall and a TCP segment of its own. Turned on per socket; Nagle stays off (no 40 ms waits).
 */
export function coalesceWrites (stream: Duplex): void {
  const write = stream.write
  let held = false
  const release = (): void => {
    held = false
    if (!stream.destroyed && stream.writableCorked > 0) stream.uncork()
  }
  stream.write = function (this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
    if (!held) {
      held = true
      stream.cork()
      setImmediate(release)
    }
    return write.apply(this, args)
  } as Duplex['write']
}
