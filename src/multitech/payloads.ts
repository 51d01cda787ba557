/**
 * The JSON a Conduit sends (multitech-app-connect.md §2.2), validated once at the boundary.
 * Field presence varies with firmware (§7.13), so almost everything is optional; what is present
 * must have the right type. Unknown fields are kept (they end up under `raw` when asked for).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Ajv, type ErrorObject } from 'ajv'
import { EUI_PATTERN } from '../model/eui.js'
import { formatPointer } from '../config/issues.js'

const EuiString = Type.String({ pattern: EUI_PATTERN })

export const UplinkPayload = Type.Object({
  data: Type.String({ maxLength: 1024 }),
  'data-format': Type.Optional(Type.String()),
  deveui: Type.Optional(EuiString),
  appeui: Type.Optional(Type.Union([EuiString, Type.Literal('')])),
  joineui: Type.Optional(EuiString),
  gweui: Type.Optional(EuiString),
  devaddr: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{8}$' })),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
  fcnt: Type.Optional(Type.Integer({ minimum: 0 })),
  seqn: Type.Optional(Type.Integer({ minimum: 0 })),
  freq: Type.Optional(Type.Number()),
  datr: Type.Optional(Type.String()),
  codr: Type.Optional(Type.String()),
  rssi: Type.Optional(Type.Number()),
  lsnr: Type.Optional(Type.Number()),
  time: Type.Optional(Type.String()),
  tmst: Type.Optional(Type.Number()),
  mhdr: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]*$' })),
  ack: Type.Optional(Type.Boolean()),
  adr: Type.Optional(Type.Boolean()),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  name: Type.Optional(Type.String()),
})
export type UplinkPayload = Static<typeof UplinkPayload>

export const JoinedPayload = Type.Object({
  deveui: Type.Optional(EuiString),
  appeui: Type.Optional(Type.Union([EuiString, Type.Literal('')])),
  joineui: Type.Optional(EuiString),
  gweui: Type.Optional(EuiString),
  name: Type.Optional(Type.String()),
  remote: Type.Optional(Type.Boolean()),
  time: Type.Optional(Type.String()),
})
export type JoinedPayload = Static<typeof JoinedPayload>

export const InitPayload = Type.Object({
  gateways_euis: Type.Optional(Type.Array(EuiString, { maxItems: 64 })),
  time: Type.Optional(Type.String()),
  api_version: Type.Optional(Type.String()),
  app_version: Type.Optional(Type.String()),
})
export type InitPayload = Static<typeof InitPayload>

const ajv = new Ajv({ allErrors: true, strict: false })
const validators = new Map<TSchema, ReturnType<typeof ajv.compile>>()

export type Checked<T> = { ok: true, value: T } | { ok: false, code: 'LB_ERR_APPCONNECT_JSON' | 'LB_ERR_APPCONNECT_PAYLOAD' | 'LB_ERR_APPCONNECT_EUI', message: string }

function describe (errors: ErrorObject[]): { eui: boolean, message: string } {
  const eui = errors.some(e => e.keyword === 'pattern' && /eui/.test(e.instancePath))
  return { eui, message: errors.slice(0, 3).map(e => `${formatPointer(e.instancePath)} ${e.message ?? 'is invalid'}`).join('; ') }
}

export function check<S extends TSchema> (schema: S, value: unknown): Checked<Static<S>> {
  let validate = validators.get(schema)
  if (validate === undefined) { validate = ajv.compile(schema); validators.set(schema, validate) }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, code: 'LB_ERR_APPCONNECT_PAYLOAD', message: 'expected a JSON object' }
  }
  if (validate(value)) return { ok: true, value: value as Static<S> }
  const { eui, message } = describe(validate.errors ?? [])
  return { ok: false, code: eui ? 'LB_ERR_APPCONNECT_EUI' : 'LB_ERR_APPCONNECT_PAYLOAD', message }
}

/** JSON.parse that reports instead of throwing; an empty payload is `undefined`. */
export function parseJson (payload: Buffer | string): { ok: true, value: unknown } | { ok: false, message: string } {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8')
  if (text.length === 0) return { ok: true, value: undefined }
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch (err) {
    return { ok: false, message: (err as Error).message }
  }
}
