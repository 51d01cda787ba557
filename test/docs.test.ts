/** The generated references must match the code they describe (`npm run docs:config` rewrites them). */
import { describe, it, expect } from 'vitest'
import { readFile } from 'node:fs/promises'
import { configurationReference } from '../src/config/reference.js'
import { errorsReference, ErrorCodes } from '../src/errors.js'
import { helpersReference } from '../src/rules/helpers.js'
import { TOPIC_SCHEMAS, schemaFiles } from '../src/model/event-schemas.js'
import { schemaViolations } from './helpers/event-schemas.js'

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

  it('docs/schemas/ holds exactly the event schemas, and docs/topics.md names every topic and links every schema', async () => {
    const dir = new URL('../docs/schemas/', import.meta.url)
    const { readdir } = await import('node:fs/promises')
    const files = schemaFiles()
    expect((await readdir(dir)).sort()).toEqual(files.map(f => f.file).sort())
    for (const { file, text } of files) expect(await readFile(new URL(file, dir), 'utf8'), file).toBe(text)
    const topics = await readFile(new URL('../docs/topics.md', import.meta.url), 'utf8')
    for (const { file } of files) expect(topics).toContain(`](schemas/${file})`)
    for (const { topic } of TOPIC_SCHEMAS) expect(topics).toContain(`\`${topic.replace('{root}', 'lorabridge')}\``)
  })

  it('every example in docs/topics.md matches the schema of its topic', async () => {
    const doc = await readFile(new URL('../docs/topics.md', import.meta.url), 'utf8')
    const examples = doc.split(/^### /m).slice(1).flatMap(section => {
      const topic = /^`([^`]+)`/.exec(section)?.[1] ?? ''
      const concrete = topic.replace('{app}', 'farm').replace('{devEui}', '0123456789abcdef').replace('{gatewayId}', '0000025c-6156-cdd4-4523-264b523115c1')
      return [...section.matchAll(/```json\n([\s\S]*?)```/g)].map(m => ({ topic: concrete, payload: m[1]! }))
    })
    expect(examples.length).toBeGreaterThanOrEqual(TOPIC_SCHEMAS.length)
    expect(schemaViolations(examples)).toEqual([])
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
