/**
 * Rule errors a user can act on (issue 17, friction point 6): a wrong value in a rule file names
 * the value, what is allowed and a "did you mean"; an unknown function is a compile error at the
 * `$name` in the YAML file; every runtime error names the function or operator, the rule and the
 * line:column in the rule file — in `rules check`, `rules test`, a running daemon's dead letters,
 * log lines and retained status.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import jsonata from 'jsonata'
import { runCli } from './helpers/cli.js'
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js'
import { observe, until, type MqttClient } from './helpers/mqtt.js'
import { ConduitSimulator, generatedDevice } from '../src/simulate/conduit.js'
import { compileRuleFile, compileRuleText, formatRuleError, type CompiledFile } from '../src/rules/compile.js'
import { Expression, KNOWN_FUNCTIONS } from '../src/rules/expression.js'
import { unknownFunction } from '../src/rules/function-check.js'
import { ENVIRONMENT_FUNCTIONS } from '../src/rules/sync-jsonata.js'
import { RulesEngine, type DeadLetter } from '../src/rules/engine.js'

const KINDS = 'one of up, join, status, location, down/queued, down/sent, down/failed, down/acked'

/** The validator's own words for a union that failed, which users cannot act on. */
const NOISE = /must be array|anyOf|must match a schema|must be equal to constant|must be equal to one of/

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lorabridge-rule-errors-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

/** Writes `text` as `name` in a fresh rules directory and runs `lorabridge rules check` on it. */
async function check (name: string, text: string): Promise<{ code: number | null, stderr: string, stdout: string }> {
  const rules = await mkdtemp(join(dir, 'check-'))
  await writeFile(join(rules, name), text)
  return runCli(['rules', 'check', rules], { cwd: dir })
}

describe('rule file mistakes name the value at fault (rules check)', () => {
  it('an unknown event kind: the value, its place, a suggestion and what is allowed', async () => {
    const r = await check('quickstart.yaml', 'rules:\n  - name: echo\n    on: uplink\n    downlink: \'{ "fPort": 11, "hex": "ac" }\'\n')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`quickstart.yaml:3:9: rules[0].on: unknown event kind "uplink" (did you mean "up"?); ${KINDS}\n`)
    expect(r.stderr).not.toMatch(NOISE)
  })

  it('in a list of kinds, the entry at fault', async () => {
    const r = await check('k.yaml', 'rules:\n  - name: echo\n    on: [up, jion]\n    downlink: \'{}\'\n')
    expect(r.stderr).toContain(`k.yaml:3:14: rules[0].on[1]: unknown event kind "jion" (did you mean "join"?); ${KINDS}`)
  })

  it('unknown keys at the key, with a suggestion and the keys there are; wrong types and values in words', async () => {
    const r = await check('many.yaml', [
      'rules:',
      '  - name: x',
      '    iff: decoded.level > 3',
      '    enabled: yes',
      '    when: { fPort: 300, network: multitek, app: Farm }',
      '    publish: { topic: \'"t"\', payload: \'{}\', qos: 2, retian: true }',
      'decoderz: []',
    ].join('\n') + '\n')
    expect(r.code).toBe(1)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toEqual([
      'many.yaml:3:5: rules[0].iff: unknown key "iff" (did you mean "if"?); a rule has name, on, when, if, cooldown, enabled, downlink, publish',
      'many.yaml:4:14: rules[0].enabled: must be true or false (got "yes")',
      'many.yaml:5:20: rules[0].when.fPort: 300 is out of range: must be from 0 to 255',
      'many.yaml:5:34: rules[0].when.network: unknown network "multitek" (did you mean "multitech"?); one of multitech, thingpark (or a list of them)',
      'many.yaml:5:49: rules[0].when.app: "Farm" is not an application name (lower-case letters, digits, "_" and "-")',
      'many.yaml:6:50: rules[0].publish.qos: must be one of 0, 1 (got 2)',
      'many.yaml:6:53: rules[0].publish.retian: unknown key "retian" (did you mean "retain"?); "publish" has topic, payload, qos, retain',
      'many.yaml:7:1: decoderz: unknown key "decoderz" (did you mean "decoders"?); a rule file has decoders, rules',
    ])
  })

  it('a JSONata object written as a YAML mapping: says to quote it', async () => {
    const r = await check('o.yaml', 'rules:\n  - name: x\n    downlink: { "fPort": 1, "hex": "01" }\n')
    expect(r.stderr).toContain('o.yaml:3:15: rules[0].downlink: must be a string (got a mapping; write an expression in quotes or after |)')
  })

  it('positions inside quoted values count the file\'s characters (escapes, folded lines)', async () => {
    const r = await check('q.yaml', 'rules:\n  - name: escaped\n    downlink: "{\\"fPort\\": 1, \\"hex\\": $hexx(bytes)}"\n  - name: folded\n    downlink: "$count(bytes) +\n      $hexx(bytes)"\n')
    expect(r.stderr.trim().split('\n')).toEqual([
      'q.yaml:3:40: rules[0].downlink: JSONata: unknown function $hexx (did you mean $hex?)',
      'q.yaml:6:7: rules[1].downlink: JSONata: unknown function $hexx (did you mean $hex?)',
    ])
  })

  it('a list given as a mapping, a missing name, an empty expression', async () => {
    expect((await check('m.yaml', 'rules:\n  name: x\n')).stderr).toContain('m.yaml:2:3: rules: must be a list (got a mapping)')
    const r = await check('n.yaml', 'rules:\n  - on: up\n    downlink: ""\n')
    expect(r.stderr).toContain('n.yaml:2:5: rules[0]: a rule needs "name"')
    expect(r.stderr).toContain('n.yaml:3:15: rules[0].downlink: must not be empty')
    expect(r.stderr).not.toMatch(NOISE)
  })
})

describe('hostile rule files', () => {
  it('echo a huge value, key or function name only by its start, and still say where', async () => {
    const rules = await mkdtemp(join(dir, 'huge-'))
    await writeFile(join(rules, 'a.yaml'), `rules:\n  - name: x\n    on: ${'u'.repeat(200_000)}\n    downlink: '{}'\n  - name: y\n    downlink: '{}'\n    ? ${'k'.repeat(5000)}\n    : 1\n`)
    await writeFile(join(rules, 'b.yaml'), `rules:\n  - name: z\n    downlink: '$${'h'.repeat(100_000)}(bytes)'\n`)
    const r = await runCli(['rules', 'check', rules], { cwd: dir })
    expect(r.code).toBe(1)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(3)
    for (const l of lines) expect(l.length).toBeLessThan(400)
    expect(lines[0]).toMatch(/^a\.yaml:3:9: rules\[0\]\.on: unknown event kind "u{60}…"; one of up, /)
    expect(lines[1]).toMatch(/^a\.yaml:7:7: rules\[1\]\.k{60}…: unknown key "k{60}…"; a rule has /)
    expect(lines[2]).toMatch(/^b\.yaml:3:16: rules\[0\]\.downlink: JSONata: unknown function \$h{60}…$/)
  })
})

describe('random edits of a valid rule file', () => {
  it('give errors with a place in the file and words, never the validator\'s union noise, and never throw', () => {
    const base = 'decoders:\n  - name: d\n    when: { app: farm, fPort: [1, 2], network: multitech }\n    decode: \'{ "a": $u8(bytes, 0) }\'\nrules:\n  - name: r\n    on: [up, join]\n    when: { devEui: "00*" }\n    if: decoded.a > 1\n    cooldown: 10s\n    publish: { topic: \'"x/" & devEui\', payload: \'{}\', qos: 1, retain: false }\n'
    const pieces = ['uplink', '$hexx(', '[]', '{}', ': ', '\n  ', '- ', 'null', '42', '"', "'", '|', '?', '__proto__', 'constructor', '&', '*', '!!', '#']
    let seed = 20261201
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    const bad: string[] = []
    for (let i = 0; i < 1500; i++) {
      let text = base
      for (let k = 0; k < 1 + rnd(3); k++) {
        const at = rnd(text.length)
        text = rnd(2) === 1 ? text.slice(0, at) + pieces[rnd(pieces.length)]! + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + rnd(5))
      }
      const r = compileRuleText('/rules/f.yaml', text)
      if (r.ok) continue
      for (const e of r.errors) {
        if (!(e.line >= 1 && e.column >= 1 && e.message !== '') || NOISE.test(e.message)) bad.push(`${JSON.stringify(text)} → ${formatRuleError(e)}`)
      }
    }
    expect(bad).toEqual([])
  })
})

describe('unknown functions are compile errors at the $name in the file', () => {
  it('in a block scalar, a quoted scalar, after ~> and in a partial application', async () => {
    const r = await check('fn.yaml', [
      'rules:',
      '  - name: block',
      '    downlink: |',
      '      { "fPort": 1,',
      '        "hex": $hexx(bytes) }',
      '  - name: quoted',
      '    if: \'$lenght(devEui) = 16\'',
      '    downlink: \'{}\'',
      '  - name: applied',
      '    downlink: \'{ "fPort": 1, "hex": bytes ~> $hexx() }\'',
      '  - name: partial',
      '    downlink: \'($f := $substr(?, 0, 2); { "fPort": 1, "hex": $f(devEui) })\'',
    ].join('\n') + '\n')
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toEqual([
      'fn.yaml:5:16: rules[0].downlink: JSONata: unknown function $hexx (did you mean $hex?)',
      'fn.yaml:7:10: rules[1].if: JSONata: unknown function $lenght (did you mean $length?)',
      'fn.yaml:10:46: rules[2].downlink: JSONata: unknown function $hexx (did you mean $hex?)',
      'fn.yaml:12:23: rules[3].downlink: JSONata: unknown function $substr (did you mean $substring?)',
    ])
  })

  it('accepts functions the expression binds: := assignments, lambda parameters, nested and higher-order uses', async () => {
    const r = await check('bound.yaml', [
      'rules:',
      '  - name: bound',
      '    downlink: |',
      '      (',
      '        $twice := function($f, $x) { $f($f($x)) };',
      '        $inc := function($n) { $n + 1 };',
      '        $apply := function($g) { function($v) { $g($v) } };',
      '        $n := $twice($inc, 1) + $apply($inc)(2) + $reduce([1, 2], function($a, $b) { $a + $b });',
      '        $sorted := $sort(bytes, function($l, $r) { $l > $r });',
      '        { "fPort": $n, "hex": $hex($map($sorted, function($v, $i) { $u8([$v], 0) })) }',
      '      )',
      '    publish:',
      '      topic: \'"x/" & $uppercase(devEui)\'',
      '      payload: \'{ "sum": $sum(bytes), "s": $string($toU16be(1)), "b": $bits(5, 0, 1) }\'',
    ].join('\n') + '\n')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('the list of JSONata functions is the reference\'s own (every function it binds, each a function)', async () => {
    const source = readFileSync(resolve(import.meta.dirname, '../node_modules/jsonata/jsonata.js'), 'utf8')
    const bound = [...source.matchAll(/staticFrame\.bind\('(\w+)'/g)].map(m => m[1]!)
    expect(bound.length).toBeGreaterThan(60)
    expect(new Set(ENVIRONMENT_FUNCTIONS)).toEqual(new Set([...bound, 'now', 'millis']))
    for (const name of ENVIRONMENT_FUNCTIONS) expect(await jsonata(`$type($${name})`).evaluate({}), name).toBe('function')
  })

  const SUITE = [resolve(import.meta.dirname, '../../shared/conformance/jsonata'), '/work/shared/conformance/jsonata'].find(p => existsSync(p))

  it.skipIf(SUITE === undefined)('refuses no expression of the JSONata conformance suite that the reference runs without an undefined-function error', () => {
    const root = SUITE!
    interface Case { expr?: string, 'expr-file'?: string, bindings?: Record<string, unknown>, code?: string, error?: { code?: string } }
    const refused: string[] = []
    let checked = 0
    let flagged = 0
    for (const group of readdirSync(join(root, 'groups')).sort()) {
      for (const file of readdirSync(join(root, 'groups', group)).filter(f => f.endsWith('.json')).sort()) {
        const raw = JSON.parse(readFileSync(join(root, 'groups', group, file), 'utf8')) as Case | Case[]
        for (const [i, c] of (Array.isArray(raw) ? raw : [raw]).entries()) {
          const expr = c.expr ?? readFileSync(join(root, 'groups', group, c['expr-file']!), 'utf8')
          let ast: unknown
          try { ast = jsonata(expr).ast() } catch { continue } // the reference refuses it: not valid
          checked++
          // A case's bindings are functions and values the reference is given for that evaluation.
          const known = new Set([...KNOWN_FUNCTIONS, ...Object.keys(c.bindings ?? {})])
          const unknown = unknownFunction(ast, known)
          if (unknown === undefined) continue
          flagged++
          // The suite records the reference's outcome: refusing is right only where it fails with T1006/T1008.
          const code = c.code ?? c.error?.code
          if (code !== 'T1006' && code !== 'T1008') refused.push(`${group}/${file}#${i}: ${expr.slice(0, 100)} (${unknown.message}; reference: ${code ?? 'a result'})`)
        }
      }
    }
    expect(checked).toBeGreaterThan(1500)
    expect(refused).toEqual([])
    // The check does find the suite's own undefined-function cases.
    expect(flagged).toBeGreaterThan(0)
  })
})

describe('runtime errors name the function or operator, the rule and the line:column in the file', () => {
  const RULES = [
    'rules:',
    '  - name: signature',
    '    downlink: |',
    '      { "fPort": 1,',
    '        "hex": $substring(devEui, "a") }',
    '  - name: signature-in-lambda',
    '    downlink: |',
    '      $map([devEui], function($v) {',
    '        { "fPort": 1, "hex": $substring($v, "a") }',
    '      })',
    '  - name: operator',
    '    if: \'fPort + devEui > 1\'',
    '    downlink: \'{}\'',
    '  - name: helper',
    '    downlink: \'{ "fPort": 1, "hex": $hex($bytes("zz")) }\'',
    '  - name: size',
    '    publish: { topic: \'"x/y"\', payload: \'$pad("a", 1000000)\' }',
    '  - name: concat',
    '    publish: { topic: \'"x/y"\', payload: \'$pad("a", 60000) & $pad("b", 60000)\' }',
  ].join('\n') + '\n'

  const EXPECTED: Record<string, { stage: string, code: string, message: string, line: number, column: number, function?: string, operator?: string }> = {
    signature: { stage: 'downlink', code: 'LB_ERR_RULE_EVAL:T0410', line: 5, column: 16, function: '$substring', message: 'errors.yaml:5:16: rules[0].downlink (rule "signature"): $substring: Argument 2 of function "substring" does not match function signature' },
    'signature-in-lambda': { stage: 'downlink', code: 'LB_ERR_RULE_EVAL:T0410', line: 9, column: 30, function: '$substring', message: 'errors.yaml:9:30: rules[1].downlink (rule "signature-in-lambda"): $substring: Argument 2 of function "substring" does not match function signature' },
    operator: { stage: 'if', code: 'LB_ERR_RULE_EVAL:T2002', line: 12, column: 16, operator: '+', message: 'errors.yaml:12:16: rules[2].if (rule "operator"): operator +: The right side of the "+" operator must evaluate to a number' },
    helper: { stage: 'downlink', code: 'LB_ERR_RULE_EVAL', line: 15, column: 42, function: '$bytes', message: 'errors.yaml:15:42: rules[3].downlink (rule "helper"): $bytes: "zz" is not hex (pairs of hex digits)' },
    concat: { stage: 'publish', code: 'LB_ERR_RULE_LIMIT', line: 19, column: 59, operator: '&', message: 'errors.yaml:19:59: rules[5].publish.payload (rule "concat"): operator &: a string built with & would be 120,000 characters long; rules may build strings of at most 100,000' },
    size: { stage: 'publish', code: 'LB_ERR_RULE_LIMIT', line: 17, column: 42, function: '$pad', message: 'errors.yaml:17:42: rules[4].publish.payload (rule "size"): $pad: $pad\'s result would be 1,000,000 characters long; rules may build strings of at most 100,000' },
  }
  const EVENT = { id: '1b4e28ba-2fa1-11d2-883f-0016d3cca427', app: 'default', devEui: '0011223344556677', fPort: 2, hex: '0102' }

  let rules: string
  beforeAll(async () => {
    rules = join(dir, 'runtime')
    await mkdir(rules)
    await writeFile(join(rules, 'errors.yaml'), RULES)
    await writeFile(join(dir, 'up.json'), JSON.stringify(EVENT))
  })

  it('`rules test`: each dead letter and rule result says where, which function or operator, which rule', async () => {
    const r = await runCli(['rules', 'test', rules, '--event', join(dir, 'up.json')], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { deadLetters: DeadLetter[], rules: Array<{ rule: string, errors: Array<{ message: string }> }> }
    expect(out.deadLetters.map(d => d.rule).sort()).toEqual(Object.keys(EXPECTED).sort())
    for (const d of out.deadLetters) {
      expect(d, d.rule).toMatchObject({ ...EXPECTED[d.rule], file: 'errors.yaml', rule: d.rule })
      expect(out.rules.find(x => x.rule === d.rule)?.errors[0]?.message).toBe(EXPECTED[d.rule]!.message)
    }
  })

  it('the compiled evaluator and the reference fallback give the same located messages', async () => {
    const compiled = await compileRuleFile(join(rules, 'errors.yaml'))
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors))
    const byName = (n: string) => compiled.compiled.rules.find(r => r.name === n)!
    // The engine runs these compiled first (handing failing evaluations to the reference) …
    expect(byName('signature').downlink!.engine.kind).toBe('compiled')
    expect(byName('operator').condition!.engine.kind).toBe('compiled')
    expect(byName('helper').downlink!.engine.kind).toBe('compiled')
    // … and this one on the reference alone (a lambda).
    expect(byName('signature-in-lambda').downlink!.engine.kind).toBe('reference')
    const letters = await evaluateAll(compiled.compiled)
    // The same call, compiled or not: the same words, each at its own place.
    const strip = (m: string): string => m.replace(/^errors\.yaml:\d+:\d+: rules\[\d\]\.downlink \(rule "[^"]+"\): /, '')
    expect(strip(letters.get('signature')!.message)).toBe(strip(letters.get('signature-in-lambda')!.message))
    for (const [rule, d] of letters) expect(d, rule).toMatchObject(EXPECTED[rule]!)
  })

  it('a failing decoder and a refused action name the expression', async () => {
    const own = await mkdtemp(join(dir, 'action-'))
    await writeFile(join(own, 'dec.yaml'), 'decoders:\n  - name: dec\n    decode: \'{ "n": $number("x") }\'\n')
    await writeFile(join(own, 'act.yaml'), 'rules:\n  - name: bad-request\n    downlink: |\n      { "fPort": 300, "hex": "01" }\n  - name: bad-topic\n    publish: { topic: \'"lorawan/x"\', payload: \'{}\' }\n')
    const r = await runCli(['rules', 'test', own, '--event', join(dir, 'up.json')], { cwd: dir })
    const out = JSON.parse(r.stdout) as { deadLetters: DeadLetter[], decodeErrors: string[] }
    const letters = out.deadLetters
    // A decoder's failure: its dead letter, and the uplink's decodeErrors.
    const decoding = 'dec.yaml:3:21: decoders[0].decode (decoder "dec"): $number: Unable to cast value to a number: "x"'
    expect(letters.find(d => d.rule === 'dec')).toMatchObject({ stage: 'decode', code: 'LB_ERR_RULE_EVAL:D3030', function: '$number', message: decoding })
    expect(out.decodeErrors).toEqual([decoding])
    expect(letters.find(d => d.rule === 'bad-request')).toMatchObject({ code: 'LB_ERR_RULE_ACTION', line: 3, column: 15, path: 'rules[0].downlink', message: expect.stringMatching(/^act\.yaml:3:15: rules\[0\]\.downlink \(rule "bad-request"\): invalid DownlinkRequest: .*fPort/) as unknown })
    expect(letters.find(d => d.rule === 'bad-topic')).toMatchObject({ code: 'LB_ERR_RULE_ACTION', line: 6, column: 23, message: 'act.yaml:6:23: rules[1].publish.topic (rule "bad-topic"): rules may not publish on lorawan/… (the Conduits\' own topics)' })
  })

  it('an expression used alone (no rule file) still names the function and its position', async () => {
    const c = Expression.compile('$substring(devEui, "a")')
    if (!c.ok) throw new Error(c.error.message)
    await expect(c.expression.evaluate({ devEui: 'x' }, { timeoutMs: 1000, maxDepth: 500 })).rejects.toMatchObject({
      located: { text: '$substring: Argument 2 of function "substring" does not match function signature (at position 1 of the expression)', function: '$substring', position: 1 },
    })
  })

  async function evaluateAll (file: CompiledFile): Promise<Map<string, DeadLetter>> {
    const letters = new Map<string, DeadLetter>()
    const engine = new RulesEngine({ topicRoot: 'lorabridge', budget: { timeoutMs: 1000, maxDepth: 500 }, maxChainDepth: 2, sink: { publish: async () => {}, deadLetter: async d => { letters.set(d.rule, d) } } })
    engine.setFile(file)
    await engine.evaluate('up', { ...EVENT })
    return letters
  }
})

describe('in a running daemon', () => {
  let t: TestDaemon
  let observer: MqttClient
  let seen: Array<{ topic: string, payload: string }>
  let sim: ConduitSimulator
  let rulesDir: string

  const status = (): { files: Array<{ file: string, ok: boolean, rules: string[], errors?: Array<Record<string, unknown>> }> } | undefined => {
    const m = seen.filter(x => x.topic === 'lorabridge/_bridge/rules').at(-1)
    return m === undefined ? undefined : JSON.parse(m.payload) as ReturnType<typeof status>
  }

  beforeAll(async () => {
    const home = await mkdtemp(join(dir, 'daemon-'))
    rulesDir = join(home, 'rules')
    await mkdir(rulesDir)
    await writeFile(join(rulesDir, 'echo.yaml'), 'rules:\n  - name: echo\n    when: { fPort: 2 }\n    publish:\n      topic: \'"echo/" & devEui\'\n      payload: \'{ "hex": $hex(bytes) }\'\n')
    t = await startTestDaemon({ mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] }, rules: { dir: './rules' } }, { dir: home })
    ;({ client: observer, seen } = await observe(`mqtt://127.0.0.1:${t.port('mqtt')}`))
    await observer.subscribeAsync('echo/#', { qos: 1 })
    sim = new ConduitSimulator({ url: `mqtt://127.0.0.1:${t.port('mqtt')}`, version: '1.1', gwUuid: '00000aaa6156cdd44523264b523115c1', devices: [generatedDevice(7)] })
    await sim.start()
  })
  afterAll(async () => {
    await sim?.stop()
    await observer?.endAsync(true)
    await t?.stop()
  })

  it('publishes a runtime failure on _bridge/rules/errors, and logs it, with the rule, function and line:column', async () => {
    await writeFile(join(rulesDir, 'broken.yaml'), 'rules:\n  - name: pick\n    when: { fPort: 2 }\n    downlink: |\n      { "fPort": 1,\n        "hex": $substring(devEui, "a") }\n')
    await until(() => status()?.files.find(f => f.file === 'broken.yaml' && f.ok), 'broken.yaml loaded')
    const from = seen.length
    await sim.uplink(0, { port: 2, data: Buffer.from([1, 2]) })
    const letter = await until(() => seen.slice(from).find(m => m.topic === 'lorabridge/_bridge/rules/errors'), 'dead letter', 10_000)
    expect(JSON.parse(letter.payload)).toMatchObject({
      rule: 'pick', file: 'broken.yaml', stage: 'downlink', code: 'LB_ERR_RULE_EVAL:T0410', line: 6, column: 16, path: 'rules[0].downlink', function: '$substring',
      message: 'broken.yaml:6:16: rules[0].downlink (rule "pick"): $substring: Argument 2 of function "substring" does not match function signature',
    })
    const log = await until(() => t.logs.find(l => l.msg === 'rule evaluation failed' && l.rule === 'pick'), 'log line')
    expect(log).toMatchObject({ code: 'LB_ERR_RULE_EVAL:T0410', file: 'broken.yaml', line: 6, column: 16, function: '$substring', reason: expect.stringContaining('broken.yaml:6:16:') as unknown })
  })

  it('refuses an edit that calls an unknown function: the last good version keeps running, the status says where', async () => {
    const edited = 'rules:\n  - name: echo\n    when: { fPort: 2 }\n    publish:\n      topic: \'"echo/" & devEui\'\n      payload: |\n        { "hex": $hexx(bytes) }\n'
    await writeFile(join(rulesDir, 'echo.yaml'), edited)
    const file = await until(() => status()?.files.find(f => f.file === 'echo.yaml' && !f.ok), 'error in the retained status', 10_000)
    expect(file.rules).toEqual(['echo'])
    expect(file.errors).toEqual([expect.objectContaining({
      code: 'LB_ERR_RULE_COMPILE', path: 'rules[0].publish.payload', line: 7, column: 18,
      message: 'JSONata: unknown function $hexx (did you mean $hex?)', jsonata: expect.objectContaining({ token: '$hexx' }) as unknown,
    })])
    expect(t.logs.withCode('LB_ERR_RULE_COMPILE').some(l => l.file === 'echo.yaml' && l.line === 7 && l.column === 18)).toBe(true)
    // The previous version still answers.
    const from = seen.length
    await sim.uplink(0, { port: 2, data: Buffer.from([0xab]) })
    const echo = await until(() => seen.slice(from).find(m => m.topic.startsWith('echo/')), 'echo from the last good version', 10_000)
    expect(JSON.parse(echo.payload)).toEqual({ hex: 'ab' })
  })
})
