/**
 * `lorabridge codecs test FILE` as an operator runs it (the built executable, one process per
 * invocation): decoding and encoding in the three codec forms (TS013, TTN v2, ChirpStack v3),
 * the receive time reaching the codec, codec errors and failures (thrown, endless loop, NaN,
 * syntax error) as exit 1 with clear messages, bad arguments, what the codec prints going to
 * stderr while stdout stays JSON, and example files (pass/fail table, summary, exit code).
 *
 * Expected values are worked out by hand from the fixture codecs' source (test/fixtures/codecs/),
 * never by running the codec in-process.
 */
import { describe, it, beforeAll, afterAll } from 'vitest'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli, type RunResult } from './helpers/cli.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/codecs/', import.meta.url))
const fixture = (name: string): string => join(FIXTURES, name)
const TLV = fixture('tlv-sensor.js')
const TTN = fixture('ttn-v2.js')
const CHIRPSTACK = fixture('chirpstack-v3.js')

/**
 * The sandbox's limits are wall-clock: a cold engine's first call takes a few milliseconds, so
 * too many processes at once on a small machine could push a plain decode past the default
 * 100 ms. Invocations run concurrently, but at most one per CPU (and at least two).
 */
const MAX_PARALLEL = Math.max(2, availableParallelism())
/** Tests run concurrently and wait for their turn in that queue: their time includes the wait. */
const TIMEOUT = 180_000
let active = 0
const waiting: Array<() => void> = []

// No LORABRIDGE_… setting of the environment the tests run in may reach the CLI.
const cleanEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.keys(process.env).filter(k => k.startsWith('LORABRIDGE_')).map(k => [k, undefined]))

/** Directories: `roomy` holds a lorabridge.yaml with a generous codec time limit; `plain` has no configuration (the defaults). */
let dir: string
let roomy: string
let plain: string

async function cli (args: string[], opts: { cwd?: string } = {}): Promise<RunResult> {
  while (active >= MAX_PARALLEL) await new Promise<void>(resolve => waiting.push(resolve))
  active++
  try {
    return await runCli(args, { cwd: opts.cwd ?? roomy, env: cleanEnv })
  } finally {
    active--
    waiting.shift()?.()
  }
}

const codecsTest = async (file: string, ...args: string[]): Promise<RunResult> => cli(['codecs', 'test', file, ...args])

/** stdout must be exactly one line of JSON. */
function json (r: RunResult): Record<string, unknown> {
  if (!r.stdout.endsWith('\n') || r.stdout.trimEnd().includes('\n')) throw new Error(`stdout is not one line of JSON: ${JSON.stringify(r.stdout)}; stderr: ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lorabridge-codecs-cli-'))
  roomy = join(dir, 'roomy')
  plain = join(dir, 'plain')
  await mkdir(roomy)
  await mkdir(plain)
  await writeFile(join(roomy, 'lorabridge.yaml'), 'rules:\n  codecs:\n    timeoutMs: 5000\n')
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe.concurrent('lorabridge codecs test: decoding (--fport, --hex)', { timeout: TIMEOUT }, () => {
  it('TS013 decodeUplink: device information and seven channels, exact JSON on stdout, exit 0', async ({ expect }) => {
    // ff 01 03        protocolVersion 3
    // ff 0a 01 04     firmwareVersion v1.4
    // 01 75 5a        battery 0x5a = 90
    // 03 67 9c ff     temperature 0xff9c = 65436 → -100 → -10.0
    // 04 68 7b        humidity 0x7b = 123 → 61.5
    // 05 6a 2c 01     activity 0x012c = 300
    // 09 73 f5 27     pressure 0x27f5 = 10229 → 1022.9
    // 0a 00 01        door open
    const r = await codecsTest(TLV, '--fport', '85', '--hex', 'FF0103ff0a010401755a03679cff04687b056a2c010973f5270a0001', '--recv-time', '2026-06-15T08:45:00Z')
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toStrictEqual({
      data: { protocolVersion: 3, firmwareVersion: 'v1.4', battery: 90, temperature: -10, humidity: 61.5, activity: 300, pressure: 1022.9, door: 'open', receivedHour: 8 },
      warnings: [],
      errors: [],
    })
    expect(r.stderr).toBe('')
  })

  it('TS013 decodeUplink: warnings come through with the data, exit 0', async ({ expect }) => {
    // 03 67 e8 03: 0x03e8 = 1000 → 100.0 °C (out of range); 02 01: unknown channel, decoding stops.
    const r = await codecsTest(TLV, '--fport', '85', '--hex', '0367e8030201', '--recv-time', '2026-06-15T00:00:00Z')
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toStrictEqual({
      data: { temperature: 100, receivedHour: 0 },
      warnings: ['unknown channel 0x2 type 0x1', 'temperature out of the sensor range'],
      errors: [],
    })
  })

  it('TTN v2 Decoder(bytes, port)', async ({ expect }) => {
    const counter = await codecsTest(TTN, '--fport', '1', '--hex', '012c01')
    expect(counter.code, counter.stderr).toBe(0)
    expect(json(counter)).toStrictEqual({ data: { counter: 300, led: true }, warnings: [], errors: [] })
  })

  it('ChirpStack v3 Decode(fPort, bytes, variables)', async ({ expect }) => {
    const [high, edge] = await Promise.all([
      codecsTest(CHIRPSTACK, '--fport', '3', '--hex', '0190'),
      codecsTest(CHIRPSTACK, '--fport', '0', '--hex', '00fa'),
    ])
    expect(high.code, high.stderr).toBe(0)
    expect(json(high)).toStrictEqual({ data: { tankLevelCm: 400, fPort: 3, alarm: true }, warnings: [], errors: [] })
    // 0x00fa = 250 is not above 250; FPort 0 reaches the codec as 0.
    expect(edge.code, edge.stderr).toBe(0)
    expect(json(edge)).toStrictEqual({ data: { tankLevelCm: 250, fPort: 0, alarm: false }, warnings: [], errors: [] })
  })
})

describe.concurrent('lorabridge codecs test: --recv-time', { timeout: TIMEOUT }, () => {
  it('reaches decodeUplink as the receive time (receivedHour is its UTC hour)', async ({ expect }) => {
    const [utc, offset] = await Promise.all([
      // The byte layout of tlv-sensor.examples.yaml; stdout is exactly this line.
      codecsTest(TLV, '--fport', '85', '--hex', '0175640367f600046882', '--recv-time', '2026-03-04T17:30:00Z'),
      // 23:30 at UTC+02:00 is 21:30 UTC.
      codecsTest(TLV, '--fport', '85', '--hex', '017564', '--recv-time', '2026-03-04T23:30:00+02:00'),
    ])
    for (const r of [utc, offset]) expect(r.code, r.stderr).toBe(0)
    expect(utc.stdout).toBe('{"data":{"battery":100,"temperature":24.6,"humidity":65,"receivedHour":17},"warnings":[],"errors":[]}\n')
    expect(json(offset)).toStrictEqual({ data: { battery: 100, receivedHour: 21 }, warnings: [], errors: [] })
  })

  it('defaults to now', async ({ expect }) => {
    const before = new Date().getUTCHours()
    const r = await codecsTest(TLV, '--fport', '85', '--hex', '017564')
    const after = new Date().getUTCHours()
    expect(r.code, r.stderr).toBe(0)
    const out = json(r) as { data: { battery: number, receivedHour: number } }
    expect(out.data.battery).toBe(100)
    expect([before, after]).toContain(out.data.receivedHour)
  })
})

describe.concurrent('lorabridge codecs test: encoding (--encode)', { timeout: TIMEOUT }, () => {
  it('TS013 encodeDownlink: bytes and the codec\'s own FPort', async ({ expect }) => {
    const [interval, both] = await Promise.all([
      // 1200 = 0x04b0, little-endian
      codecsTest(TLV, '--encode', '{"interval":1200}'),
      // 600 = 0x0258, then the reboot command
      codecsTest(TLV, '--encode', '{"interval":600,"reboot":true}'),
    ])
    expect(interval.code, interval.stderr).toBe(0)
    expect(interval.stdout).toBe('{"bytes":[255,3,176,4],"fPort":85,"warnings":[],"errors":[]}\n')
    expect(both.code, both.stderr).toBe(0)
    expect(json(both)).toStrictEqual({ bytes: [0xff, 0x03, 0x58, 0x02, 0xff, 0x10, 0xff], fPort: 85, warnings: [], errors: [] })
  })

  it('--fport overrides the codec\'s own FPort, as a request\'s fPort does in the daemon; with neither, exit 1', async ({ expect }) => {
    const [override, none] = await Promise.all([
      codecsTest(TLV, '--encode', '{"interval":1200}', '--fport', '7'),
      codecsTest(CHIRPSTACK, '--encode', '{"threshold":300}'),
    ])
    expect(override.code, override.stderr).toBe(0)
    expect(json(override)).toStrictEqual({ bytes: [255, 3, 176, 4], fPort: 7, warnings: [], errors: [] })
    expect(none.code).toBe(1)
    expect(json(none)).toStrictEqual({ warnings: [], errors: ['chirpstack-v3.js named no fPort: give --fport'] })
  })

  it('TTN v2 Encoder(object, port) takes --fport', async ({ expect }) => {
    const on = await codecsTest(TTN, '--encode', '{"led":true}', '--fport', '9')
    expect(on.code, on.stderr).toBe(0)
    expect(json(on)).toStrictEqual({ bytes: [1, 9], fPort: 9, warnings: [], errors: [] })
  })

  it('ChirpStack v3 Encode(fPort, obj, variables) takes --fport', async ({ expect }) => {
    // 4660 = 0x1234
    const r = await codecsTest(CHIRPSTACK, '--encode', '{"threshold":4660}', '--fport', '255')
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toStrictEqual({ bytes: [2, 0x12, 0x34], fPort: 255, warnings: [], errors: [] })
  })
})

describe.concurrent('lorabridge codecs test: codec errors and failures exit 1', { timeout: TIMEOUT }, () => {
  it('errors the codec returns are in errors (decode and encode), with its warnings', async ({ expect }) => {
    const [fport, truncated, withWarning, badInterval] = await Promise.all([
      codecsTest(TLV, '--fport', '2', '--hex', '01'),
      codecsTest(TLV, '--fport', '85', '--hex', '01'),
      // temperature 100.0 (a warning), then humidity with no value byte
      codecsTest(TLV, '--fport', '85', '--hex', '0367e8030468'),
      codecsTest(TLV, '--encode', '{"interval":5}'),
    ])
    for (const r of [fport, truncated, withWarning, badInterval]) expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(fport.stdout).toBe('{"warnings":[],"errors":["unknown FPort 2"]}\n')
    expect(json(truncated)).toStrictEqual({ warnings: [], errors: ['truncated at byte 1'] })
    expect(json(withWarning)).toStrictEqual({ warnings: ['temperature out of the sensor range'], errors: ['humidity truncated'] })
    expect(json(badInterval)).toStrictEqual({ warnings: [], errors: ['interval must be 60..64800 seconds'] })
  })

  it('a throwing codec: exit 1, the exception and where it was thrown in errors', async ({ expect }) => {
    const file = fixture('cli/throwing.js')
    const [thrown, ok, thrownString] = await Promise.all([
      codecsTest(file, '--fport', '1', '--hex', '07'),
      codecsTest(file, '--fport', '1', '--hex', '0102'),
      codecsTest(file, '--encode', '[1,2]'),
    ])
    expect(thrown.code, thrown.stderr).toBe(1)
    // `throw new RangeError(` on line 4: QuickJS places the throw at the call's parenthesis, column 25.
    expect(json(thrown)).toStrictEqual({ warnings: [], errors: ['throwing.js: RangeError: need 2 bytes, got 1 at throwing.js:4:25'] })
    expect(ok.code, ok.stderr).toBe(0)
    expect(json(ok)).toStrictEqual({ data: { value: 258 }, warnings: [], errors: [] })
    expect(thrownString.code, thrownString.stderr).toBe(1)
    expect(json(thrownString)).toStrictEqual({ warnings: [], errors: ['throwing.js: threw "cannot encode [1,2]"'] })
  })

  it('an endless loop is stopped by the time limit (default configuration): exit 1, says so', async ({ expect }) => {
    const r = await cli(['codecs', 'test', fixture('cli/endless-loop.js'), '--fport', '1', '--hex', '00'], { cwd: plain })
    expect(r.code, r.stderr).toBe(1)
    expect(json(r)).toStrictEqual({ warnings: [], errors: ['endless-loop.js: ran past its time limit (an endless loop?)'] })
  })

  it('NaN or Infinity in what the codec returns: exit 1, the path of the bad value in errors', async ({ expect }) => {
    const file = fixture('cli/nan.js')
    const [nan, infinity, bytes] = await Promise.all([
      codecsTest(file, '--fport', '1', '--hex', '0000'), // 0 / 0
      codecsTest(file, '--fport', '1', '--hex', '0100'), // 1 / 0
      codecsTest(file, '--encode', '{}'),
    ])
    for (const r of [nan, infinity, bytes]) expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(json(nan)).toStrictEqual({ warnings: [], errors: ['nan.js: data.ratio is NaN'] })
    expect(json(infinity)).toStrictEqual({ warnings: [], errors: ['nan.js: data.ratio is Infinity'] })
    expect(json(bytes)).toStrictEqual({ warnings: [], errors: ['nan.js: bytes[1] is NaN, not an integer 0..255'] })
  })

  it('an operation the codec has no function for: exit 1, named', async ({ expect }) => {
    const r = await codecsTest(fixture('cli/endless-loop.js'), '--encode', '{}')
    expect(r.code, r.stderr).toBe(1)
    expect(json(r)).toStrictEqual({ warnings: [], errors: ['endless-loop.js has no encodeDownlink, Encoder or Encode function'] })
  })

  it('a codec file with a syntax error: exit 1, LB_ERR_CODEC_LOAD with line:column on stderr, nothing on stdout', async ({ expect }) => {
    const [decode, examples] = await Promise.all([
      codecsTest(fixture('cli/syntax-error.js'), '--fport', '1', '--hex', '00'),
      codecsTest(fixture('cli/syntax-error.js'), '--examples', fixture('tlv-sensor.examples.yaml')),
    ])
    for (const r of [decode, examples]) {
      expect(r.code, r.stderr).toBe(1)
      expect(r.stdout).toBe('')
      // Line 4, `  return { data: data }`: `return` is read as a property name, and `{` at column 10 is not the ':' expected.
      expect(r.stderr).toBe('LB_ERR_CODEC_LOAD: SyntaxError: expecting \':\' at syntax-error.js:4:10\n')
    }
  })

  it('a codec file that does not exist: exit 1, LB_ERR_CODEC_LOAD', async ({ expect }) => {
    const r = await codecsTest(join(dir, 'missing.js'), '--fport', '1', '--hex', '00')
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe('LB_ERR_CODEC_LOAD: cannot read missing.js: ENOENT\n')
  })
})

describe.concurrent('lorabridge codecs test: bad arguments', { timeout: TIMEOUT }, () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['odd hex', [TLV, '--fport', '85', '--hex', '017'], /--hex must be an even number of hex digits/],
    ['--fport 300', [TLV, '--fport', '300', '--hex', '01'], /--fport must be an integer 0\.\.255, not "300"/],
    ['--fport -1 with --encode', [TTN, '--fport', '-1', '--encode', '{}'], /--fport must be an integer 0\.\.255, not "-1"/],
    ['--hex without --fport', [TLV, '--hex', '01'], /--fport N is required with --hex/],
    ['no mode', [TLV], /give exactly one of --hex HEX \(with --fport\), --encode JSON, or --examples FILE\.yaml/],
    ['two modes', [TLV, '--fport', '85', '--hex', '01', '--encode', '{}'], /give exactly one of --hex/],
    ['--encode not JSON', [TTN, '--fport', '1', '--encode', '{led: true}'], /--encode is not JSON: /],
    ['--recv-time not a time', [TLV, '--fport', '85', '--hex', '01', '--recv-time', 'yesterday'], /--recv-time is not an ISO time: "yesterday"/],
    ['no file', [], /missing required argument 'file'/],
  ]
  it('each gives a non-zero exit, a message on stderr and no JSON on stdout', async ({ expect }) => {
    const results = await Promise.all(cases.map(async ([, args]) => cli(['codecs', 'test', ...args])))
    results.forEach((r, i) => {
      const [name, , message] = cases[i]!
      expect(r.code, `${name}: ${r.stderr}`).not.toBe(0)
      expect(r.code, name).not.toBeNull()
      expect(r.stderr, name).toMatch(message)
      expect(r.stdout, name).toBe('')
    })
  })
})

describe.concurrent('lorabridge codecs test: what the codec prints', { timeout: TIMEOUT }, () => {
  it('console lines go to stderr prefixed "codec ", stdout stays one line of JSON', async ({ expect }) => {
    const file = fixture('cli/console-log.js')
    const [decoded, failed, encoded, thrown] = await Promise.all([
      codecsTest(file, '--fport', '12', '--hex', '0507'),
      codecsTest(file, '--fport', '12', '--hex', '00'),
      codecsTest(file, '--encode', '{"value":258}'),
      codecsTest(file, '--fport', '12', '--hex', 'ff'),
    ])
    expect(decoded.code, decoded.stderr).toBe(0)
    expect(json(decoded)).toStrictEqual({ data: { first: 5 }, warnings: [], errors: [] })
    expect(decoded.stderr).toBe('codec log: decoding 2 bytes on port 12\ncodec warn: {"first":5}\n')

    // A call that returns errors keeps what it printed.
    expect(failed.code, failed.stderr).toBe(1)
    expect(json(failed)).toStrictEqual({ warnings: ['check the device'], errors: ['first byte is zero'] })
    expect(failed.stderr).toBe('codec log: decoding 1 bytes on port 12\ncodec warn: {"first":0}\ncodec error: zero is not a valid first byte\n')

    // 258 & 0xff = 2
    expect(encoded.code, encoded.stderr).toBe(0)
    expect(json(encoded)).toStrictEqual({ bytes: [2], fPort: 4, warnings: [], errors: [] })
    expect(encoded.stderr).toBe('codec log: encoding {"value":258}\n')

    // A call that throws keeps what it printed before it threw: when it matters most.
    expect(thrown.code).toBe(1)
    expect(thrown.stderr).toBe('codec log: decoding 1 bytes on port 12\ncodec warn: {"first":255}\n')
    expect((json(thrown).errors as string[])[0]).toMatch(/^console-log\.js: Error: 0xff: the device is in factory mode at console-log\.js:5:\d+$/)
  })
})

describe.concurrent('lorabridge codecs test --examples', { timeout: TIMEOUT }, () => {
  it('a file of passing and failing examples of every type: table, mismatches, summary, exit 1', async ({ expect }) => {
    const r = await codecsTest(TLV, '--examples', fixture('cli/mixed.examples.yaml'))
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^#\s+type\s+description\s+result$/)
    expect(lines[1]).toMatch(/^-+(\s+-+){3}$/)
    const rows = lines.filter(l => /^\d+ {2}/.test(l))
    expect(rows).toHaveLength(7)
    const expected: Array<[string, string, 'pass' | 'FAIL']> = [
      ['uplink', 'uplink decodes battery, temperature and humidity', 'pass'],
      ['uplink', 'uplink with a wrong battery', 'FAIL'],
      ['uplink', 'uplink on an unknown FPort', 'pass'],
      ['downlink-encode', 'encode a 10 minute interval', 'pass'],
      ['downlink-encode', 'encode expecting the wrong FPort', 'FAIL'],
      ['downlink-decode', 'decode an interval and a reboot', 'pass'],
      ['downlink-decode', 'decode an unknown command', 'FAIL'],
    ]
    rows.forEach((row, i) => {
      const [type, description, result] = expected[i]!
      expect(row.split(/\s{2,}/)).toStrictEqual([String(i + 1), type, description, result])
    })
    // Under each failure, what differed (and nothing under a pass).
    const block = (n: number): string[] => {
      const start = lines.findIndex(l => l.startsWith(`${n} `))
      const out: string[] = []
      for (let i = start + 1; i < lines.length && lines[i]!.startsWith('    '); i++) out.push(lines[i]!.trim())
      return out
    }
    expect(block(1)).toStrictEqual([])
    expect(block(2)).toStrictEqual(['data: expected {"battery":99,"receivedHour":8}, got {"battery":100,"receivedHour":8}'])
    expect(block(3)).toStrictEqual([])
    expect(block(4)).toStrictEqual([])
    expect(block(5)).toStrictEqual(['fPort: expected 2, got 85'])
    expect(block(6)).toStrictEqual([])
    expect(block(7)).toStrictEqual([
      'data: expected {"reboot":true}, got undefined',
      'errors: expected [], got ["unknown command at byte 0"]',
    ])
    expect(r.stdout.endsWith('\n\n4 of 7 examples passed\n')).toBe(true)
  })

  it('the TTN device-repository sections file, all passing: exit 0', async ({ expect }) => {
    const r = await codecsTest(TLV, '--examples', fixture('tlv-sensor.examples.yaml'))
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const rows = r.stdout.split('\n').filter(l => /^\d+ {2}/.test(l)).map(l => l.split(/\s{2,}/))
    expect(rows).toStrictEqual([
      ['1', 'uplink', 'battery, temperature and humidity', 'pass'],
      ['2', 'uplink', 'unknown FPort', 'pass'],
      ['3', 'downlink-encode', 'report every 20 minutes', 'pass'],
      ['4', 'downlink-decode', 'reboot', 'pass'],
    ])
    expect(r.stdout).not.toMatch(/^ {4}/m)
    expect(r.stdout.endsWith('\n\n4 of 4 examples passed\n')).toBe(true)
  })

  it('the same examples against a codec that decodes differently fail', async ({ expect }) => {
    // ttn-v2.js returns { raw: N } for FPort 85 and [0, undefined] for an encode with no FPort.
    const r = await codecsTest(TTN, '--examples', fixture('tlv-sensor.examples.yaml'))
    expect(r.code, r.stderr).toBe(1)
    expect(r.stdout).toMatch(/^1\s+uplink\s+battery, temperature and humidity\s+FAIL$/m)
    expect(r.stdout).toMatch(/^ {4}data: expected \{"battery":100,"temperature":24\.6,"humidity":65,"receivedHour":10\}, got \{"raw":10\}$/m)
    // TTN v2 has no downlink decoder.
    expect(r.stdout).toMatch(/^4\s+downlink-decode\s+reboot\s+FAIL$/m)
    expect(r.stdout).toMatch(/\n\n0 of 4 examples passed\n$/)
  })

  it('malformed examples files: a clear error naming the file and the problem, non-zero exit, no table', async ({ expect }) => {
    await writeFile(join(dir, 'broken.yaml'), 'examples:\n  - description: [unclosed\n')
    const cases: Array<[string, RegExp]> = [
      [fixture('cli/no-examples.yaml'), /no-examples\.yaml: no examples found \(expected examples:, or uplinkDecoder\/downlinkEncoder\/downlinkDecoder with examples:\)/],
      [fixture('cli/bad-type.examples.yaml'), /bad-type\.examples\.yaml: examples\[1\]: type must be uplink, downlink-encode or downlink-decode/],
      [fixture('cli/no-output.examples.yaml'), /no-output\.examples\.yaml: downlinkDecoder\.examples\[0\]: output must be a mapping/],
      [join(dir, 'broken.yaml'), /broken\.yaml: .*(flow|collection|bracket|\]|expected)/i],
      [join(dir, 'absent.yaml'), /absent\.yaml: .*ENOENT/],
    ]
    const results = await Promise.all(cases.map(async ([file]) => codecsTest(TLV, '--examples', file)))
    results.forEach((r, i) => {
      const [file, message] = cases[i]!
      expect(r.code, `${file}: ${r.stderr}`).not.toBe(0)
      expect(r.code, file).not.toBeNull()
      expect(r.stderr, file).toMatch(message)
      expect(r.stdout, file).toBe('')
    })
  })
})
