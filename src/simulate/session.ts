/**
 * A simulator run is a fresh LoRaWAN session unless told otherwise: a random DevAddr and a random
 * first frame counter. A run that repeated the last one's DevAddr, counters and payloads would be
 * taken for a replay by a deduplicating back-end (lorabridge drops the same frame seen again
 * within its window) and vanish without a word. DevEUIs stay stable: downlinks are addressed by them.
 */
import { randomInt } from 'node:crypto'

/** First frame counters are drawn below this, so a long run does not wrap the 16-bit FCnt of the frame header. */
const FCNT_SPAN = 0x8000

/** A random DevAddr (8 hex digits, lower case) in NetID 0's range, like a private network server's. */
export function randomDevAddr (): string {
  return (0x26000000 + randomInt(0x01000000)).toString(16).padStart(8, '0')
}

export function randomFcnt (): number {
  return randomInt(FCNT_SPAN)
}

/** `--dev-addr`: 8 hex digits; device i gets this + i. */
export function parseDevAddr (value: string, option = '--dev-addr'): number {
  const h = value.trim().replace(/^0x/i, '')
  if (!/^[0-9a-fA-F]{8}$/.test(h)) throw new Error(`${option} must be 8 hex digits (a DevAddr such as 26011f00), got "${value}"`)
  return Number.parseInt(h, 16)
}

export function devAddrPlus (base: number, i: number): string {
  return ((base + i) >>> 0).toString(16).padStart(8, '0')
}

/** `--fcnt`: the first frame counter of every device, 0 to 2^32 - 1. */
export function parseFcnt (value: number | string | undefined, option = '--fcnt'): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${option} must be an integer from 0 to 4294967295, got "${String(value)}"`)
  return n
}
