/**
 * Every relative link in the repository's markdown files (README.md, docs/*.md, bench/README.md and
 * any other, node_modules and build output aside) leads somewhere: the file exists and, when the link
 * names a heading (`file.md#anchor`), the file has that heading (GitHub's anchor rules). And the docs
 * are self-contained: none sends the reader to PRODUCT.md, the design contract that is not in the
 * repository.
 */
import { describe, it, expect } from 'vitest'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Directories that hold no page of ours: dependencies, build output, local state, git. */
const NOT_OURS = new Set(['node_modules', 'dist', 'data', 'test-artifacts', '.git'])

/** Every file under `dir` (relative to ROOT) whose name ends with `suffix`, outside NOT_OURS. */
function filesEndingWith (suffix: string, dir = ''): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap(entry => {
    const path = dir === '' ? entry.name : `${dir}/${entry.name}`
    if (entry.isDirectory()) return NOT_OURS.has(entry.name) ? [] : filesEndingWith(suffix, path)
    return entry.isFile() && entry.name.endsWith(suffix) ? [path] : []
  }).sort()
}

const PAGES = filesEndingWith('.md')

/** The page without fenced code blocks and inline code, where `[x](y)` is not a link. */
function prose (markdown: string): string[] {
  const lines: string[] = []
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) { fenced = !fenced; lines.push(''); continue }
    lines.push(fenced ? '' : line.replace(/`[^`]*`/g, '``'))
  }
  return lines
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) { fenced = !fenced; continue }
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (m === null) continue
    const base = (m[1] as string).toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

describe('links in the repository\'s markdown files', () => {
  it('covers README.md, every docs/*.md and bench/README.md', () => {
    expect(PAGES).toEqual(expect.arrayContaining(['README.md', 'bench/README.md', 'docs/multitech.md', 'docs/thingpark.md', 'docs/topics.md']))
  })

  it('no page, and no published JSON schema, points to PRODUCT.md (it is not in the repository)', () => {
    const mentions: string[] = []
    for (const file of [...PAGES, ...filesEndingWith('.json', 'docs')]) {
      readFileSync(join(ROOT, file), 'utf8').split('\n').forEach((line, i) => {
        if (/PRODUCT(\.md|'s)\b/.test(line)) mentions.push(`${file}:${i + 1}: ${line.trim()}`)
      })
    }
    expect(mentions).toEqual([])
  })

  it('the anchor rules match GitHub\'s', () => {
    expect([...anchors('# Reports → normalized events\n## `dataDir` and paths\n## A, b\n## A, b\n```\n# not a heading\n```\n')])
      .toEqual(['reports--normalized-events', 'datadir-and-paths', 'a-b', 'a-b-1'])
  })

  for (const page of PAGES) {
    it(`${page}: every relative link resolves`, () => {
      const file = join(ROOT, page)
      const text = readFileSync(file, 'utf8')
      const broken: string[] = []
      prose(text).forEach((line, i) => {
        for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
          const target = m[1] as string
          if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // http:, https:, mailto:
          const [path = '', anchor] = target.split('#', 2)
          const dest = path === '' ? file : resolve(dirname(file), decodeURIComponent(path))
          const where = `${page}:${i + 1}: ${target}`
          if (!existsSync(dest)) { broken.push(`${where} (no file ${relative(ROOT, dest)})`); continue }
          if (anchor !== undefined && anchor !== '' && !anchors(readFileSync(dest, 'utf8')).has(anchor)) broken.push(`${where} (no heading #${anchor})`)
        }
      })
      expect(broken).toEqual([])
    })
  }
})
