/**
 * `lorabridge codecs test FILE …`: a codec file run by the daemon's own sandbox and limits, on one
 * payload, one object to encode, or a file of examples (docs/codecs.md).
 */
import { readFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import type { Config } from '../config/schema.js'
import { Codec, CodecError, type CodecResult } from '../codecs/codec.js'
import { formatTable, parseExamples, runExample } from '../codecs/examples.js'

export interface CodecTestOptions { fport?: string, hex?: string, recvTime?: string, encode?: string, examples?: string }

function fail (message: string): never {
  throw Object.assign(new Error(message), { exitCode: 2 })
}

function port (v: string | undefined, required: boolean): number | undefined {
  if (v === undefined) {
    if (required) fail('--fport N is required with --hex')
    return undefined
  }
  const n = Number(v)
  if (!/^\d{1,3}$/.test(v) || n > 255) fail(`--fport must be an integer 0..255, not "${v}"`)
  return n
}

/** Prints what the codec printed (console.log …) on stderr: stdout stays JSON. */
function printLogs (r: CodecResult<unknown>): void {
  for (const l of r.logs) process.stderr.write(`codec ${l}\n`)
}

export async function codecsTest (config: Config, file: string, opts: CodecTestOptions): Promise<void> {
  const modes = [opts.hex !== undefined, opts.encode !== undefined, opts.examples !== undefined].filter(Boolean).length
  if (modes !== 1) fail('give exactly one of --hex HEX (with --fport), --encode JSON, or --examples FILE.yaml')
  // The arguments are checked before the codec loads: a usage mistake is told as one.
  if (opts.hex !== undefined) {
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(opts.hex)) fail('--hex must be an even number of hex digits')
    port(opts.fport, true)
    if (opts.recvTime !== undefined && Number.isNaN(new Date(opts.recvTime).getTime())) fail(`--recv-time is not an ISO time: "${opts.recvTime}"`)
  }
  if (opts.encode !== undefined) port(opts.fport, false)
  const limits = { timeoutMs: config.rules.codecs.timeoutMs, memoryBytes: config.rules.codecs.memoryMiB * 1024 * 1024 }
  let codec: Codec
  try {
    codec = await Codec.fromFile(resolve(file), basename(file), limits)
  } catch (err) {
    if (!(err instanceof CodecError)) throw err
    process.stderr.write(`${err.code}: ${err.message}\n`)
    process.exitCode = 1
    return
  }
  try {
    if (opts.hex !== undefined) {
      const fPort = port(opts.fport, true)!
      const recv = opts.recvTime !== undefined ? new Date(opts.recvTime) : new Date()
      const r = codec.decodeUplink([...Buffer.from(opts.hex, 'hex')], fPort, recv)
      printLogs(r)
      process.stdout.write(JSON.stringify(r.ok ? { data: r.value, warnings: r.warnings, errors: [] } : { warnings: r.warnings, errors: r.errors }) + '\n')
      if (!r.ok) process.exitCode = 1
    } else if (opts.encode !== undefined) {
      let data: unknown
      try {
        data = JSON.parse(opts.encode)
      } catch (err) {
        fail(`--encode is not JSON: ${(err as Error).message}`)
      }
      const r = codec.encodeDownlink(data, port(opts.fport, false))
      printLogs(r)
      // As the daemon: a payload needs a port, the request's or the codec's.
      const noPort = r.ok && r.value.fPort === undefined ? [`${basename(file)} named no fPort: give --fport`] : []
      process.stdout.write(JSON.stringify(r.ok && noPort.length === 0 ? { bytes: r.value.bytes, fPort: r.value.fPort, warnings: r.warnings, errors: [] } : { warnings: r.warnings, errors: r.ok ? noPort : r.errors }) + '\n')
      if (!r.ok || noPort.length > 0) process.exitCode = 1
    } else {
      let examples
      try {
        examples = parseExamples(await readFile(resolve(opts.examples!), 'utf8'))
      } catch (err) {
        fail(`${opts.examples!}: ${(err as Error).message}`)
      }
      const outcomes = []
      for (const e of examples) {
        const o = await runExample(codec, e)
        for (const l of o.logs) process.stderr.write(`codec ${l}\n`)
        outcomes.push(o)
      }
      process.stdout.write(formatTable(outcomes))
      if (outcomes.some(o => !o.pass)) process.exitCode = 1
    }
  } finally {
    codec.dispose()
  }
}
