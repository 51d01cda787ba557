/**
 * The Node.js version the project documents (package.json `engines.node`, and the README) must be
 * one every installed package accepts: `npm ci` on it must not warn EBADENGINE (issue 17: cookie 2
 * wanted Node 22 while the README said Node 20). Optional packages are left out: npm skips those
 * whose engines exclude the running Node.
 */
import { describe, it, expect } from 'vitest'
import { readFile } from 'node:fs/promises'
import Fastify from 'fastify'

type Version = [number, number, number]

const root = new URL('../', import.meta.url)
const json = async <T>(path: string): Promise<T> => JSON.parse(await readFile(new URL(path, root), 'utf8')) as T

function compare (a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

/** Whether `v` is in a node-semver range of the forms found in engines fields (throws on others). */
export function satisfies (v: Version, range: string): boolean {
  return range.split('||').some(alternative => {
    const comparators = alternative.trim().replace(/(>=|<=|>|<|=)\s+/g, '$1').split(/\s+/).filter(c => c !== '')
    return comparators.every(c => {
      if (c === '*' || c === 'x') return true
      const m = /^(\^|~|>=|<=|>|<|=)?v?(\d+)(?:\.(\d+|\*|x))?(?:\.(\d+|\*|x))?$/.exec(c)
      if (m === null) throw new Error(`range syntax not understood: "${c}" in "${range}"`)
      const op = m[1] ?? ''
      const given = [m[2], m[3], m[4]].map(p => p === undefined || p === '*' || p === 'x' ? undefined : Number(p))
      const bound: Version = [given[0] ?? 0, given[1] ?? 0, given[2] ?? 0]
      const cmp = compare(v, bound)
      switch (op) {
        case '>=': return cmp >= 0
        case '>': return cmp > 0
        case '<': return cmp < 0
        case '<=': return cmp <= 0
        case '^': return cmp >= 0 && (bound[0] > 0 ? v[0] === bound[0] : v[1] === bound[1])
        case '~': return cmp >= 0 && v[0] === bound[0] && (given[1] === undefined || v[1] === bound[1])
        default: return given.every((p, i) => p === undefined || p === v[i])
      }
    })
  })
}

describe('the documented Node.js version', () => {
  it('is the minimum of package.json engines.node, and the README and quickstart say it', async () => {
    const pkg = await json<{ engines: { node: string } }>('package.json')
    const m = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node)
    expect(m, 'engines.node is ">=MAJOR.MINOR"').not.toBeNull()
    for (const doc of ['README.md', 'docs/quickstart.md']) {
      expect(await readFile(new URL(doc, root), 'utf8'), doc).toContain(`Node.js ${m![1]}.${m![2]} or later`)
    }
  })

  it('is accepted by the engines field of every package in package-lock.json', async () => {
    const pkg = await json<{ engines: { node: string } }>('package.json')
    const [, major, minor] = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node)!
    const documented: Version = [Number(major), Number(minor), 0]
    const lock = await json<{ packages: Record<string, { version?: string, optional?: boolean, engines?: { node?: string } }> }>('package-lock.json')
    const refusing = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.optional !== true && p.engines?.node !== undefined && !satisfies(documented, p.engines.node))
      .map(([path, p]) => `${path}@${p.version}: node ${p.engines!.node}`)
    expect(refusing, `packages refusing Node ${documented.join('.')}`).toEqual([])
  })

  it('the range check itself: what npm would refuse, it refuses', () => {
    expect(satisfies([20, 19, 0], '>=22')).toBe(false)
    expect(satisfies([20, 19, 0], '^20.19.0 || >=22.12.0')).toBe(true)
    expect(satisfies([20, 11, 0], '^20.19.0 || >=22.12.0')).toBe(false)
    expect(satisfies([20, 19, 0], '20 || >=22')).toBe(true)
    expect(satisfies([20, 19, 0], '>= 14.16')).toBe(true)
    expect(satisfies([20, 19, 0], '10.* || >= 12.*')).toBe(true)
    expect(satisfies([20, 19, 0], '^22.20 || ^24.12 || >=25')).toBe(false)
  })

  it('light-my-request (Fastify inject) encodes cookies with the cookie version pinned for Node 20', async () => {
    const app = Fastify()
    app.get('/', async req => ({ cookie: req.headers.cookie }))
    const res = await app.inject({ url: '/', cookies: { session: 'a b;c', other: 'x' } })
    expect(res.json()).toEqual({ cookie: 'session=a%20b%3Bc; other=x' })
    await app.close()
  })
})
