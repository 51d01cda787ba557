/** The generated references must match the code they describe (`npm run docs:config` rewrites them). */
import { describe, it, expect } from 'vitest'
import { readFile } from 'node:fs/promises'
import { configurationReference } from '../src/config/reference.js'
import { errorsReference, ErrorCodes } from '../src/errors.js'
import { helpersReference } from '../src/rules/helpers.js'

describe('generated documentation', () => {
  it('docs/configuration.md lists every option of the schema', async () => {
    const doc = await readFile(new URL('../docs/configuration.md', import.meta.url), 'utf8')
    expect(doc).toBe(configurationReference())
    expect(doc).toContain('| `mqtt.limits.connectRate.perAddress` |')
  })

  it('docs/errors.md lists every error code', async () => {
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8')
    expect(doc).toBe(errorsReference())
    for (const code of Object.keys(ErrorCodes)) expect(doc).toContain(`\`${code}\``)
  })

  it('docs/rules.md lists every rule helper', async () => {
    const doc = await readFile(new URL('../docs/rules.md', import.meta.url), 'utf8')
    expect(doc).toContain(`<!-- helpers:start -->\n${helpersReference()}\n<!-- helpers:end -->`)
  })

  it('every error code used in the source is in the table', async () => {
    const { readdir } = await import('node:fs/promises')
    const files = (await readdir(new URL('../src', import.meta.url), { recursive: true })).filter(f => f.endsWith('.ts'))
    const used = new Set<string>()
    for (const f of files) {
      const text = await readFile(new URL(`../src/${f}`, import.meta.url), 'utf8')
      for (const m of text.matchAll(/'(LB_ERR_[A-Z_]+)'/g)) used.add(m[1] as string)
    }
    expect([...used].filter(c => !(c in ErrorCodes))).toEqual([])
  })
})
