/** The payload helpers of PRODUCT.md §4 against known byte layouts, through real JSONata evaluation. */
import { describe, it, expect } from 'vitest'
import { Expression } from '../src/rules/expression.js'

async function run (source: string, input: unknown = {}): Promise<unknown> {
  const c = Expression.compile(source)
  if (!c.ok) throw new Error(c.error.message)
  return c.expression.evaluate(input, { timeoutMs: 1000, maxDepth: 500 })
}

// A layout with every width: 0xff | 0xfffe | 0x7fff0001 | float 1.5 BE | float -2.25 LE
const BYTES = [0xff, 0xff, 0xfe, 0x7f, 0xff, 0x00, 0x01, 0x3f, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x10, 0xc0]

describe('byte readers', () => {
  it.each([
    ['$u8(bytes, 0)', 255], ['$s8(bytes, 0)', -1],
    ['$u16be(bytes, 1)', 0xfffe], ['$s16be(bytes, 1)', -2], ['$u16le(bytes, 1)', 0xfeff], ['$s16le(bytes, 1)', -257],
    ['$u32be(bytes, 3)', 0x7fff0001], ['$s32be(bytes, 3)', 0x7fff0001], ['$u32le(bytes, 3)', 0x0100ff7f], ['$s32le(bytes, 3)', 0x0100ff7f],
    ['$u32be([255,255,255,255], 0)', 4294967295], ['$s32be([255,255,255,255], 0)', -1],
    ['$f32be(bytes, 7)', 1.5], ['$f32le(bytes, 11)', -2.25],
    ['$u8(bytes)', 255],
  ])('%s = %s', async (expr, value) => {
    expect(await run(expr, { bytes: BYTES })).toBe(value)
  })

  it('gives nothing (not an error) past the end, so a short payload drops the field', async () => {
    expect(await run('$u16be(bytes, 14)', { bytes: BYTES })).toBeUndefined()
    expect(await run('{ "a": $u8(bytes, 0), "b": $u32be(bytes, 13) }', { bytes: BYTES })).toEqual({ a: 255 })
  })
})

describe('bits, hex, base64 and writers', () => {
  it.each([
    ['$bits(178, 0, 1)', 0], ['$bits(178, 1, 1)', 1], ['$bits(178, 4, 4)', 11], ['$bits(4294967295, 16, 16)', 65535],
    ['$hex([1, 171, 255])', '01abff'], ['$bytes("01abff")', [1, 171, 255]],
    ['$base64([109, 101, 115, 115, 97, 103, 101])', 'bWVzc2FnZQ=='], ['$fromBase64("bWVzc2FnZQ==")', [109, 101, 115, 115, 97, 103, 101]],
    ['$toU8(300)', [44]], ['$toU16be(1000)', [3, 232]], ['$toU16le(1000)', [232, 3]], ['$toU16be(-2)', [255, 254]],
    ['$toU32be(305419896)', [0x12, 0x34, 0x56, 0x78]], ['$toU32le(305419896)', [0x78, 0x56, 0x34, 0x12]],
    ['$toF32be(1.5)', [0x3f, 0xc0, 0, 0]], ['$toF32le(-2.25)', [0, 0, 0x10, 0xc0]],
    ['$hex($append([1], $toU16be(513)))', '010201'],
  ])('%s', async (expr, value) => {
    expect(await run(expr)).toEqual(value)
  })

  it('refuses text that is not hex, naming the helper (a mistyped constant fails where it is written)', async () => {
    await expect(run('$bytes("zz")')).rejects.toMatchObject({ token: 'bytes', message: '"zz" is not hex (pairs of hex digits)' })
    await expect(run('$bytes("012")')).rejects.toMatchObject({ token: 'bytes' })
  })

  it('round-trips what the writers produce through the readers', async () => {
    expect(await run('$s16le($toU16le(-1234), 0)')).toBe(-1234)
    expect(await run('$f32be($toF32be(3.25), 0)')).toBe(3.25)
  })
})
