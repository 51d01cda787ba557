/**
 * The structure docs/architecture.md describes, checked on the source: no import cycles between
 * modules, Aedes reached only through the broker facade, and routes never cast back to an
 * adapter's type outside the adapter.
 */
import { describe, it, expect } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const SRC = resolve(import.meta.dirname, '../src')

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
}

const files = sources(SRC)
const text = new Map(files.map(f => [f, readFileSync(f, 'utf8')]))

/** Relative imports of a module (type-only ones included: a cycle of types is still a cycle of design). */
function imports (file: string): string[] {
  const out: string[] = []
  for (const m of text.get(file)!.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
    out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')))
  }
  return out
}

function cycles (): string[][] {
  const graph = new Map(files.map(f => [f, imports(f).filter(i => text.has(i))]))
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (f: string): void => {
    state.set(f, 'open')
    stack.push(f)
    for (const next of graph.get(f) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map(p => relative(SRC, p)))
      else if (state.get(next) === undefined) visit(next)
    }
    stack.pop()
    state.set(f, 'done')
  }
  for (const f of files) if (state.get(f) === undefined) visit(f)
  return found
}

describe('architecture', () => {
  it('finds the modules it checks', () => {
    expect(files.length).toBeGreaterThan(100)
    expect(imports(join(SRC, 'daemon.ts'))).toContain(join(SRC, 'core/pipeline.ts'))
  })

  it('has no import cycles', () => {
    expect(cycles()).toEqual([])
  })

  it('reaches Aedes only through the broker facade (src/broker/)', () => {
    const outside = files.filter(f => !relative(SRC, f).startsWith('broker/'))
    const aedesImports = outside.filter(f => /from 'aedes'/.test(text.get(f)!)).map(f => relative(SRC, f))
    // Types only: the adapter names the packet and client types the facade hands it.
    for (const f of aedesImports) expect(text.get(join(SRC, f))!, f).not.toMatch(/^import (?!type )[^;]*from 'aedes'/m)
    const casts = outside.filter(f => /as unknown as \{[^}]*(clients|persistence|subscriptions|_parser|connected)/.test(text.get(f)!)).map(f => relative(SRC, f))
    expect(casts).toEqual([])
  })

  it('keeps routes opaque to core: no adapter route type in src/core, no cast of a route outside its adapter', () => {
    const core = files.filter(f => relative(SRC, f).startsWith('core/'))
    for (const f of core) expect(text.get(f)!, relative(SRC, f)).not.toMatch(/MultitechRoute|ThingParkRoute|from '\.\.\/(multitech|thingpark)\//)
    const casts = files.filter(f => /route as (Multitech|ThingPark)Route/.test(text.get(f)!)).map(f => relative(SRC, f))
    expect(casts).toEqual([])
  })
})
