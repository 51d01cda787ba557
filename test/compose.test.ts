/**
 * docker-compose.yml cannot be run here (no container engine); check what can be checked without
 * one: it is valid against the Compose Specification's JSON Schema (vendored in
 * test/fixtures/compose-spec/), every file it and the Dockerfile refer to exists, the container's
 * lorabridge configuration passes `config check`, and mosquitto/mosquitto.conf bridges what the
 * product needs. test/mosquitto-bridge.test.ts runs that Mosquitto configuration for real.
 */
import { describe, it, expect, beforeAll } from 'vitest'
import { readFile, access } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import { parse } from 'yaml'
import { runCli } from './helpers/cli.js'
import { filterMatches } from '../src/multitech/downlink.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)

/**
 * What Ajv's strict mode reports for the vendored schema, as warnings: `gpus` (the list form) puts
 * `additionalProperties`/`patternProperties` on an array schema, where they do nothing. An upstream
 * slip, pinned here so that any other strict-mode finding in a new schema fails the test.
 */
const KNOWN_STRICT_WARNINGS = [
  'strict mode: missing type "object" for keyword "additionalProperties" at "compose_spec.json#/oneOf/1" (strictTypes)',
  'strict mode: missing type "object" for keyword "patternProperties" at "compose_spec.json#/oneOf/1" (strictTypes)',
]

async function composeValidator (): Promise<{ validate: ValidateFunction, warnings: string[], errors: string[] }> {
  const schema = JSON.parse(await readFile(join(root, 'test', 'fixtures', 'compose-spec', 'compose-spec.json'), 'utf8')) as Record<string, unknown>
  const warnings: string[] = []
  const errors: string[] = []
  const ajv = new Ajv({
    allErrors: true,
    // Every strict-mode check stays an error (unknown keywords, formats, numbers, tuples,
    // required), except strictTypes: the schema uses union types on purpose (`"type": ["string",
    // "number"]`), allowed below, and its one slip (KNOWN_STRICT_WARNINGS) is logged, collected
    // and compared instead of thrown.
    strict: true,
    allowUnionTypes: true,
    strictTypes: 'log',
    logger: { log: (...a: unknown[]) => { errors.push(a.join(' ')) }, warn: (...a: unknown[]) => { warnings.push(a.join(' ')) }, error: (...a: unknown[]) => { errors.push(a.join(' ')) } },
  })
  // The schema names the draft-07 meta-schema by its https URL; Ajv registers it under
  // http://json-schema.org/draft-07/schema. The same meta-schema, also under the https name, so the
  // schema itself is still validated against it.
  const draft07 = require('ajv/dist/refs/json-schema-draft-07.json') as Record<string, unknown>
  expect(schema.$schema).toBe('https://json-schema.org/draft-07/schema')
  ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' })
  return { validate: ajv.compile(schema), warnings, errors }
}


const problems = (v: ValidateFunction): string[] => (v.errors ?? []).map(e => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`)

describe('docker-compose.yml against the Compose Specification schema', () => {
  let v: Awaited<ReturnType<typeof composeValidator>>
  let compose: Record<string, unknown>

  beforeAll(async () => {
    v = await composeValidator()
    compose = parse(await readFile(join(root, 'docker-compose.yml'), 'utf8')) as Record<string, unknown>
  })

  it('compiles the schema in strict mode with only the known findings', () => {
    expect(v.errors).toEqual([])
    expect(v.warnings).toEqual(KNOWN_STRICT_WARNINGS)
  })

  it('is valid', () => {
    const ok = v.validate(compose)
    expect(problems(v.validate)).toEqual([])
    expect(ok).toBe(true)
  })

  const services = (c: Record<string, unknown>): Record<string, Record<string, unknown>> => c.services as Record<string, Record<string, unknown>>
  it.each([
    ['ports as a string', (c: Record<string, unknown>) => { services(c).lorabridge!.ports = 'oops' }, '/services/lorabridge/ports must be array'],
    ['an unknown top-level key', (c: Record<string, unknown>) => { c.servics = {} }, '(root) must NOT have additional properties {"additionalProperty":"servics"}'],
    ['an unknown service key', (c: Record<string, unknown>) => { services(c).mosquitto!.volume = [] }, '/services/mosquitto must NOT have additional properties {"additionalProperty":"volume"}'],
    ['an unknown depends_on condition', (c: Record<string, unknown>) => { (services(c).mosquitto!.depends_on as Record<string, Record<string, unknown>>).lorabridge!.condition = 'service_ready' }, '/services/mosquitto/depends_on/lorabridge/condition must be equal to one of the allowed values'],
  ])('rejects a copy with %s', (_what, spoil, problem) => {
    const bad = structuredClone(compose)
    spoil(bad)
    expect(v.validate(bad)).toBe(false)
    expect(problems(v.validate).some(p => p.startsWith(problem)), problems(v.validate).join('\n')).toBe(true)
  })
})

describe('docker-compose.yml', () => {
  it('refers only to files that exist', async () => {
    const compose = parse(await readFile(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { build?: string, volumes?: string[] }> }
    expect(Object.keys(compose.services).sort()).toEqual(['lorabridge', 'mosquitto', 'redis'])
    await access(join(root, compose.services.lorabridge!.build ?? '', 'Dockerfile'))
    for (const service of Object.values(compose.services)) {
      for (const v of service.volumes ?? []) {
        const source = v.split(':')[0] as string
        if (source.startsWith('./')) await access(join(root, source))
      }
    }
    const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8')
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = (m[1] as string).trim().split(/\s+/)
      for (const src of parts.slice(0, -1)) await access(join(root, src))
    }
  })

  it('gives the container a configuration that passes config check', async () => {
    const r = await runCli(['-c', join(root, 'docker', 'lorabridge.yaml'), 'config', 'check'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('bridges with a Mosquitto configured for a non-Mosquitto broker over TLS 1.2', async () => {
    const conf = await readFile(join(root, 'mosquitto', 'mosquitto.conf'), 'utf8')
    expect(conf).toMatch(/^try_private false$/m)
    // A will or notifications on $SYS/… would make lorabridge refuse the bridge (consumers publish only commands).
    expect(conf).toMatch(/^notifications_local_only true$/m)
    expect(conf).toMatch(/^bridge_tls_version tlsv1\.2$/m)
  })

  it('bridges events in and only commands out, with no topic in both directions', async () => {
    const conf = await readFile(join(root, 'mosquitto', 'mosquitto.conf'), 'utf8')
    const lines = [...conf.matchAll(/^topic (\S+) (in|out|both) (\d)$/gm)].map(m => ({ filter: m[1] as string, direction: m[2] as string }))
    const filters = (direction: string): string[] => lines.filter(l => l.direction === direction).map(l => l.filter)
    expect(filters('both')).toEqual([])
    expect(filters('out').sort()).toEqual(['lorabridge/+/devices/+/clear', 'lorabridge/+/devices/+/down'])
    const dev = 'lorabridge/farm/devices/0080000000015834'
    const events = [`${dev}/up`, `${dev}/join`, `${dev}/status`, `${dev}/location`, `${dev}/down/queued`, `${dev}/down/sent`, `${dev}/down/failed`,
      'lorabridge/gateways/029998e06156cdd44523264b523115c1/status', 'lorabridge/_bridge/rules', 'lorabridge/_bridge/rules/errors']
    for (const topic of events) expect(filters('in').some(f => filterMatches(f, topic)), topic).toBe(true)
    for (const topic of [`${dev}/down`, `${dev}/clear`]) expect(filters('in').some(f => filterMatches(f, topic)), topic).toBe(false)
  })
})
