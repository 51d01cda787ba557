/**
 * Vendors' codecs (issue 15): the cost of one decode of a typical vendor decoder (the TLV sensor
 * codec of test/fixtures/codecs, a 10-byte payload) as the daemon runs it, against the same logic
 * as JSONata decoders and as plain JavaScript in this process; then the Conduit pipeline's
 * saturation with the codec as its decoder against the same pipeline with the JSONata decoder.
 */
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compileRuleFile } from '../../src/rules/compile.js'
import { RulesEngine } from '../../src/rules/engine.js'
import { round } from '../lib/stats.js'
import { conduitPipeline, type Saturation } from './mqtt.js'

const CODEC = new URL('../../test/fixtures/codecs/tlv-sensor.js', import.meta.url)
/** battery 100 %, 24.6 °C, 65 %RH: three TLV fields, 10 bytes. */
export const PAYLOAD = Buffer.from('0175640367f600046882', 'hex')
const PORT = 85

/** The same fields, read at their fixed offsets: what a JSONata user writes for this payload (compiled). */
const JSONATA_FIXED = '{ "battery": $u8(bytes, 2), "temperature": $s16le(bytes, 5) / 10, "humidity": $u8(bytes, 9) / 2, "receivedHour": $number($substring(receivedAt, 11, 2)) }'
/** The codec's loop over channel and type, in JSONata (a recursive lambda: on the reference evaluator). */
const JSONATA_LOOP = `(
  $parse := function($i, $acc) {
    $i >= $count(bytes) ? $acc : (
      $c := bytes[$i]; $t := bytes[$i + 1];
      $c = 1 and $t = 117 ? $parse($i + 3, $merge([$acc, { "battery": bytes[$i + 2] }])) :
      $c = 3 and $t = 103 ? $parse($i + 4, $merge([$acc, { "temperature": $s16le(bytes, $i + 2) / 10 }])) :
      $c = 4 and $t = 104 ? $parse($i + 3, $merge([$acc, { "humidity": bytes[$i + 2] / 2 }])) :
      $acc
    )
  };
  $merge([$parse(0, {}), { "receivedHour": $number($substring(receivedAt, 11, 2)) }])
)`

const decoderFile = (decoder: string): string => `decoders:\n  - name: sensor\n    when: { fPort: ${PORT} }\n${decoder}\n`
const ECHO = `rules:
  - name: echo-downlink
    on: up
    when: { fPort: ${PORT} }
    downlink: '{ "fPort": 3, "hex": $hex($toU32be(fCnt)) }'
`

export interface DecodeFigure { decoder: string, microsPerDecode: number, decoded: unknown }
export interface CodecBenchResult { decodes: DecodeFigure[], pipeline?: { jsonata: Saturation, codec: Saturation, ratio: number } }

/** µs per call of `f` over about `ms` milliseconds, after a warm-up. */
async function micros (f: () => Promise<unknown> | unknown, ms: number): Promise<number> {
  for (let i = 0; i < 3000; i++) await f()
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < ms) { for (let i = 0; i < 200; i++) await f(); n += 200 }
  return (performance.now() - t0) * 1000 / n
}

async function engineWith (dir: string, decoder: string): Promise<RulesEngine> {
  await writeFile(join(dir, 'sensor.yaml'), decoderFile(decoder))
  const r = await compileRuleFile(join(dir, 'sensor.yaml'))
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  const engine = new RulesEngine({ topicRoot: 'lorabridge', budget: { timeoutMs: 100, maxDepth: 500 }, maxChainDepth: 2, sink: { publish: async () => {}, deadLetter: async d => { throw new Error(d.message) } } })
  engine.setFile(r.compiled)
  return engine
}

export async function codecDecoders (o: { msPerFigure: number, seconds: number, pipeline: boolean }): Promise<CodecBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'lorabridge-bench-codecs-'))
  const decodes: DecodeFigure[] = []
  try {
    await mkdir(join(dir, 'codecs'))
    const source = await readFile(CODEC, 'utf8')
    await writeFile(join(dir, 'codecs', 'tlv-sensor.js'), source)
    // A new event per decode, as in the daemon (the engine caches each event's byte array).
    const event = (): Record<string, unknown> => ({ id: 'x', app: 'farm', devEui: '0018b20000000b20', fPort: PORT, hex: PAYLOAD.toString('hex'), receivedAt: '2026-12-01T10:00:00.000Z', network: { type: 'multitech' } })
    const viaEngine = async (name: string, decoder: string): Promise<void> => {
      const engine = await engineWith(dir, decoder)
      let last: Record<string, unknown> = {}
      const us = await micros(async () => { last = event(); await engine.decode(last) }, o.msPerFigure)
      decodes.push({ decoder: name, microsPerDecode: round(us, 1), decoded: last.decoded })
    }
    await viaEngine('codec (QuickJS sandbox, in the daemon\'s decode step)', '    codec: codecs/tlv-sensor.js')
    await viaEngine('JSONata, fixed offsets (compiled)', `    decode: '${JSONATA_FIXED}'`)
    await viaEngine('JSONata, the same TLV loop (lambda, reference evaluator)', `    decode: |\n${JSONATA_LOOP.split('\n').map(l => '      ' + l).join('\n')}`)
    // The codec's own function in this process: no sandbox, no limits.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const plain = new Function(`${source}; return decodeUplink`)() as (i: unknown) => { data: unknown }
    let plainOut: unknown
    const us = await micros(() => {
      const e = event()
      plainOut = plain({ bytes: [...Buffer.from(e.hex as string, 'hex')], fPort: PORT, recvTime: new Date(e.receivedAt as string) }).data
    }, o.msPerFigure)
    decodes.push({ decoder: 'plain JavaScript (the codec\'s function in Node, unsandboxed)', microsPerDecode: round(us, 2), decoded: plainOut })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  if (!o.pipeline) return { decodes }
  const load = { transport: 'tcp' as const, seconds: o.seconds, rates: [], conduits: 8, devicesPerConduit: 8, window: 8, uplink: { port: PORT, data: PAYLOAD } }
  const jsonata = await conduitPipeline({ ...load, rules: { 'bench.yaml': decoderFile(`    decode: '${JSONATA_FIXED}'`) + ECHO } })
  const codec = await conduitPipeline({ ...load, rules: { 'bench.yaml': decoderFile('    codec: codecs/tlv-sensor.js') + ECHO, 'codecs/tlv-sensor.js': await readFile(CODEC, 'utf8') } })
  return { decodes, pipeline: { jsonata: jsonata.saturation, codec: codec.saturation, ratio: round(codec.saturation.uplinksPerSec / jsonata.saturation.uplinksPerSec) } }
}
