/**
 * Every relative link in README.md and docs/*.md leads somewhere: the file exists and, when the link
 * names a heading (`file.md#anchor`), the file has that heading (GitHub's anchor rules).
 */
import { describe, it, expect } from 'vitest'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)]

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

describe('links in README.md and docs/', () => {
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
