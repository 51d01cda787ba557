/** Rule files are compiled on load; every problem is reported with file, line and column. */
import { describe, it, expect } from 'vitest'
import { compileRuleText, formatRuleError } from '../src/rules/compile.js'

describe('compiling rule files', () => {
  it('reports a JSONata error at its token, inside a multi-line block', () => {
    const r = compileRuleText('/rules/farm.yaml', [
      'decoders:',
      '  - name: level',
      '    decode: |',
      '      { "level": $u8(bytes, 0),',
      '        "battery": $u16be(bytes, 1) / 1000 + }',
    ].join('\n'))
    expect(r.ok).toBe(false)
    const e = (r as { errors: Array<ReturnType<typeof Object>> }).errors[0] as Record<string, unknown>
    expect(e).toMatchObject({ file: 'farm.yaml', path: 'decoders[0].decode', line: 5, column: 46, code: 'LB_ERR_RULE_COMPILE', jsonata: { code: 'S0211', token: '}' } })
  })

  it('reports every problem of a file, each with its place', () => {
    const r = compileRuleText('/rules/bad.yaml', [
      'rules:',
      '  - name: a',
      '    if: decoded.level > 80 and',
      '    cooldown: 10 minutes',
      '    downlink: \'{ "fPort": 3, "hex": "01" }\'',
      '  - name: a',
      '    publish: { topic: \'"x"\', payload: \'{}\' }',
      '  - name: no-action',
      '    if: "true"',
    ].join('\n'))
    expect(r.ok).toBe(false)
    const lines = (r as { errors: Parameters<typeof formatRuleError>[0][] }).errors.map(formatRuleError)
    expect(lines).toEqual([
      'bad.yaml:4:15: rules[0].cooldown: "10 minutes" is not a duration (e.g. 500ms, 30s, 10m, 2h)',
      'bad.yaml:3:30: rules[0].if: JSONata: Unexpected end of expression (at "(end)")',
      'bad.yaml:6:11: rules[1].name: duplicate rule name "a"',
      'bad.yaml:8:5: rules[2]: a rule needs a downlink or a publish action',
    ])
  })

  it('reports schema mistakes and YAML syntax errors with their line', () => {
    const schema = compileRuleText('/rules/s.yaml', 'rules:\n  - name: x\n    on: uplink\n    downlink: "{}"\n')
    expect((schema as { errors: Array<{ line: number, path: string }> }).errors[0]).toMatchObject({ line: 3, path: 'rules[0].on' })
    const yaml = compileRuleText('/rules/y.yaml', 'rules: [\n')
    expect((yaml as { errors: Array<{ line: number, code: string }> }).errors[0]).toMatchObject({ code: 'LB_ERR_RULE_FILE' })
  })

  it('reports, not throws, what the YAML library only detects while converting (an alias without its anchor)', () => {
    const r = compileRuleText('/rules/alias.yaml', 'rules:\n  - name: *nowhere\n')
    expect(r.ok).toBe(false)
    expect((r as { errors: Array<{ code: string, message: string }> }).errors[0]).toMatchObject({ code: 'LB_ERR_RULE_FILE', message: expect.stringMatching(/alias/i) as unknown })
  })

  it('compiles a valid file with its filters', () => {
    const r = compileRuleText('/rules/ok.yaml', 'rules:\n  - name: r\n    on: [up, join]\n    when: { app: farm, devEui: "0080*", fPort: [1, 2], network: multitech }\n    cooldown: 30s\n    downlink: \'{"fPort": 1, "hex": "00"}\'\n')
    expect(r.ok).toBe(true)
    const rule = (r as { compiled: { rules: Array<{ on: Set<string>, cooldownMs: number, when: { devEuis: RegExp[] } }> } }).compiled.rules[0]!
    expect([...rule.on]).toEqual(['up', 'join'])
    expect(rule.cooldownMs).toBe(30_000)
    expect(rule.when.devEuis[0]!.test('0080000000015834')).toBe(true)
    expect(rule.when.devEuis[0]!.test('0090000000015834')).toBe(false)
  })
})
