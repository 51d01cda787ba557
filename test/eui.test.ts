/** EUI-64 spellings: what the networks send, what the normalized topics and JSON carry. */
import { describe, it, expect } from 'vitest'
import { dashedEui, EUI_PATTERN, isEui, normalizeEui } from '../src/model/eui.js'

describe('EUI-64 spellings', () => {
  it('normalizes every spelling the networks use to 16 lower-case hex digits', () => {
    for (const spelling of ['00-80-00-FF-FF-00-00-03', '00:80:00:ff:ff:00:00:03', '008000FFFF000003', '008000ffff000003', '00-80-00-ff-ff-00-00-03']) {
      expect(normalizeEui(spelling), spelling).toBe('008000ffff000003')
    }
  })

  it('refuses what is not an EUI-64', () => {
    for (const bad of ['008000ffff00000', '008000ffff0000033', '008000ffff00000g', '00-80-00-ff-ff-00-00', '', ' 008000ffff000003', 42, undefined, null]) {
      expect(normalizeEui(bad), String(bad)).toBeUndefined()
    }
    expect(isEui('zz-80-00-ff-ff-00-00-03')).toBe(false)
  })

  it('spells a normalized EUI the way app-connect does, and back', () => {
    expect(dashedEui('008000ffff000003')).toBe('00-80-00-ff-ff-00-00-03')
    expect(normalizeEui(dashedEui('0018b20000000b20'))).toBe('0018b20000000b20')
  })

  it('agrees with EUI_PATTERN (the schemas\' spelling) on random near-EUIs', () => {
    const pattern = new RegExp(EUI_PATTERN)
    const alphabet = '0123456789abcdefABCDEF-:gz '
    let seed = 7
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    let accepted = 0
    for (let k = 0; k < 20_000; k++) {
      // Mostly well-formed pairs with random separators, sometimes a stray character or length.
      let s = ''
      for (let p = 0; p < 8; p++) {
        s += alphabet[rand(22)]! + alphabet[rand(22)]!
        if (p < 7 && rand(3) === 0) s += rand(2) === 0 ? '-' : ':'
      }
      if (rand(10) === 0) s = s.slice(0, rand(s.length)) + alphabet[rand(alphabet.length)]! + s.slice(rand(s.length))
      const expected = pattern.test(s) ? s.replace(/[-:]/g, '').toLowerCase() : undefined
      expect(normalizeEui(s), s).toBe(expected)
      if (expected !== undefined) accepted++
    }
    expect(accepted).toBeGreaterThan(5000)
  })
})
