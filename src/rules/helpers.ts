/**
 * LoRaWAN payload helpers available in every rule and decoder expression (PRODUCT.md §4):
 * typed reads at an offset, bits, hex and base64 — and the matching writers for composing
 * downlink payloads. A read outside the array gives undefined (JSONata's "nothing"), so a short
 * payload makes a field disappear instead of failing the whole expression.
 */
type Bytes = number[]

function buf (bytes: unknown, offset: unknown, size: number): Buffer | undefined {
  if (!Array.isArray(bytes) || typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset + size > bytes.length) return undefined
  return Buffer.from(bytes.slice(offset, offset + size) as number[])
}

const readers: Record<string, [number, (b: Buffer) => number]> = {
  u8: [1, b => b.readUInt8(0)],
  s8: [1, b => b.readInt8(0)],
  u16be: [2, b => b.readUInt16BE(0)],
  u16le: [2, b => b.readUInt16LE(0)],
  s16be: [2, b => b.readInt16BE(0)],
  s16le: [2, b => b.readInt16LE(0)],
  u32be: [4, b => b.readUInt32BE(0)],
  u32le: [4, b => b.readUInt32LE(0)],
  s32be: [4, b => b.readInt32BE(0)],
  s32le: [4, b => b.readInt32LE(0)],
  f32be: [4, b => b.readFloatBE(0)],
  f32le: [4, b => b.readFloatLE(0)],
}

const writers: Record<string, [number, (b: Buffer, v: number) => void]> = {
  toU8: [1, (b, v) => { b.writeUInt8(v & 0xff) }],
  toU16be: [2, (b, v) => { b.writeUInt16BE(v & 0xffff) }],
  toU16le: [2, (b, v) => { b.writeUInt16LE(v & 0xffff) }],
  toU32be: [4, (b, v) => { b.writeUInt32BE(v >>> 0) }],
  toU32le: [4, (b, v) => { b.writeUInt32LE(v >>> 0) }],
  toF32be: [4, (b, v) => { b.writeFloatBE(v) }],
  toF32le: [4, (b, v) => { b.writeFloatLE(v) }],
}

export interface Helper { name: string, fn: (...args: unknown[]) => unknown, signature: string, doc: string }

export const HELPERS: Helper[] = [
  ...Object.entries(readers).map(([name, [size, read]]): Helper => ({
    name,
    fn: (bytes: unknown, offset: unknown) => { const b = buf(bytes, offset ?? 0, size); return b === undefined ? undefined : read(b) },
    signature: '<an?:n>',
    doc: `\`$${name}(bytes, offset)\`: the ${name.startsWith('f') ? '32-bit float' : `${name.startsWith('s') ? 'signed' : 'unsigned'} ${size * 8}-bit integer`}${size > 1 ? `, ${name.endsWith('be') ? 'big' : 'little'}-endian,` : ''} at \`offset\` (default 0)`,
  })),
  ...Object.entries(writers).map(([name, [size, write]]): Helper => ({
    name,
    fn: (value: unknown) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) return undefined
      const b = Buffer.alloc(size)
      write(b, name.startsWith('toF') ? value : Math.trunc(value))
      return [...b]
    },
    signature: '<n:a<n>>',
    doc: `\`$${name}(value)\`: the ${size} byte${size > 1 ? 's' : ''} of \`value\` as ${name.startsWith('toF') ? 'a 32-bit float' : `a ${size * 8}-bit integer (negative values in two's complement)`}${size > 1 ? `, ${name.endsWith('be') ? 'big' : 'little'}-endian` : ''}`,
  })),
  {
    name: 'bits',
    fn: (value: unknown, start: unknown, length: unknown) => {
      if (typeof value !== 'number' || typeof start !== 'number' || typeof length !== 'number' || length < 1 || length > 32 || start < 0) return undefined
      return Math.floor(value / 2 ** start) % 2 ** length
    },
    signature: '<nnn:n>',
    doc: '`$bits(value, start, length)`: `length` bits of `value` from bit `start` (0 = least significant)',
  },
  {
    name: 'hex',
    fn: (bytes: unknown) => Array.isArray(bytes) ? Buffer.from((bytes as unknown[]).map(n => Number(n) & 0xff)).toString('hex') : undefined,
    signature: '<a:s>',
    doc: '`$hex(bytes)`: lower-case hex of a byte array',
  },
  {
    name: 'bytes',
    fn: (hex: unknown) => {
      if (typeof hex !== 'string') return undefined
      // Not nothing: a downlink built from a mistyped constant must fail where it is written.
      if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new Error(`${JSON.stringify(hex.length > 40 ? hex.slice(0, 40) + '…' : hex)} is not hex (pairs of hex digits)`)
      return [...Buffer.from(hex, 'hex')]
    },
    signature: '<s:a<n>>',
    doc: '`$bytes(hexString)`: the byte array of a hex string (an error if it is not hex)',
  },
  {
    name: 'base64',
    fn: (bytes: unknown) => Array.isArray(bytes) ? Buffer.from((bytes as unknown[]).map(n => Number(n) & 0xff)).toString('base64') : undefined,
    signature: '<a:s>',
    doc: '`$base64(bytes)`: base64 of a byte array',
  },
  {
    name: 'fromBase64',
    fn: (text: unknown) => typeof text === 'string' ? [...Buffer.from(text, 'base64')] : undefined,
    signature: '<s:a<n>>',
    doc: '`$fromBase64(string)`: the byte array of a base64 string',
  },
]

/** The helper table of docs/rules.md, generated so that it lists exactly what is registered. */
export function helpersReference (): string {
  return ['| helper | gives |', '|---|---|', ...HELPERS.map(h => {
    const [, call, text] = /^(`[^`]+`): (.*)$/.exec(h.doc) ?? ['', `\`$${h.name}\``, h.doc]
    return `| ${call} | ${text} |`
  })].join('\n')
}
