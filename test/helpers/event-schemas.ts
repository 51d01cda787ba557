/**
 * Validates what tests observe on the normalized topics against the published JSON Schemas
 * (src/model/event-schemas.ts, written to docs/schemas/): the schema is picked by topic, the
 * payload checked with Ajv (draft 2020-12, every format checked), and each problem returned as one
 * readable line.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { EVENT_SCHEMAS, TOPIC_SCHEMAS, schemaDocument, type EventSchemaName } from '../../src/model/event-schemas.js'

const ajv = new Ajv2020({ allErrors: true, strict: true })
// ajv-formats is CommonJS with `exports.default`: the default import is the module object.
addFormats.default(ajv)

const validators = new Map<EventSchemaName, ValidateFunction>(
  (Object.keys(EVENT_SCHEMAS) as EventSchemaName[]).map(name => [name, ajv.compile(schemaDocument(name))]),
)

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function topicMatchers (root: string): Array<{ re: RegExp, schema: EventSchemaName }> {
  return TOPIC_SCHEMAS.map(({ topic, schema }) => ({
    // A `{placeholder}` is one topic level; everything else is literal.
    re: new RegExp(`^${topic.split('/').map(l => l === '{root}' ? escape(root) : /^\{\w+\}$/.test(l) ? '[^/]*' : escape(l)).join('/')}$`),
    schema,
  }))
}

const matchersByRoot = new Map<string, ReturnType<typeof topicMatchers>>()

/** The schema a topic carries, or undefined for topics outside the normalized set (rule publications, …). */
export function schemaForTopic (topic: string, root = 'lorabridge'): EventSchemaName | undefined {
  let matchers = matchersByRoot.get(root)
  if (matchers === undefined) { matchers = topicMatchers(root); matchersByRoot.set(root, matchers) }
  return matchers.find(m => m.re.test(topic))?.schema
}

function describeError (e: ErrorObject): string {
  const at = e.instancePath === '' ? '(root)' : e.instancePath
  switch (e.keyword) {
    case 'additionalProperties': return `${at} has an unexpected field "${String((e.params as { additionalProperty: string }).additionalProperty)}"`
    case 'required': return `${at} lacks "${String((e.params as { missingProperty: string }).missingProperty)}"`
    case 'const': return `${at} must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`
    case 'pattern': return `${at} must match ${String((e.params as { pattern: string }).pattern)}`
    case 'not': return `${at} must be absent here`
    default: return `${at} ${e.message ?? 'is invalid'}`
  }
}

export interface Verdict {
  topic: string
  schema: EventSchemaName | undefined
  ok: boolean
  /** Readable problems, one per line; empty when ok. */
  errors: string[]
}

/** Validates one message; a payload given as text or bytes is parsed as JSON first. */
export function validateMessage (topic: string, payload: string | Buffer | unknown, opts: { root?: string } = {}): Verdict {
  const schema = schemaForTopic(topic, opts.root)
  if (schema === undefined) return { topic, schema, ok: false, errors: ['no schema for this topic'] }
  let value: unknown = payload
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
    try {
      value = JSON.parse(payload.toString())
    } catch (err) {
      return { topic, schema, ok: false, errors: [`not JSON: ${(err as Error).message}`] }
    }
  }
  const validate = validators.get(schema)!
  if (validate(value)) return { topic, schema, ok: true, errors: [] }
  // Unions report every branch's errors; the distinct lines are what a reader needs.
  const errors = [...new Set((validate.errors ?? []).map(describeError))]
  return { topic, schema, ok: false, errors }
}

/**
 * Every message that does not match its topic's schema, as `topic (schema): problem; problem —
 * payload` lines: `expect(schemaViolations(seen)).toEqual([])` prints exactly what is wrong.
 */
export function schemaViolations (messages: ReadonlyArray<{ topic: string, payload: string | Buffer }>, opts: { root?: string } = {}): string[] {
  return messages.map(m => ({ m, v: validateMessage(m.topic, m.payload, opts) }))
    .filter(({ v }) => !v.ok)
    .map(({ m, v }) => `${m.topic} (${v.schema ?? 'no schema'}): ${v.errors.join('; ')} — ${m.payload.toString().slice(0, 300)}`)
}
