/**
 * "Did you mean …?" for names in rule files (event kinds, keys, functions): the closest candidate
 * by edit distance (a transposition counts as one edit), or the only candidate that the word
 * extends or abbreviates (`uplink` → `up`), or the shortest of several that extend one another. No suggestion when nothing is
 * close or it is ambiguous. The distance is the one the configuration's suggestions use.
 */
import { editDistance } from '../util/suggest.js'

export function closest (word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase()
  const list = [...new Set(candidates)].filter(c => c !== word)
  // Nothing is close to a long word; and the distance costs its length times each candidate's.
  if (w.length === 0 || w.length > 64 || list.length === 0) return undefined
  const allowed = Math.max(1, Math.round(w.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of list) {
    const distance = editDistance(w, c.toLowerCase())
    if (distance < bestDistance) { best = c; bestDistance = distance }
  }
  if (best !== undefined && bestDistance <= allowed) return best
  // `uplink` for `up`, `temp` for `temperature`: only when exactly one candidate fits.
  const related = list.filter(c => {
    const l = c.toLowerCase()
    return Math.min(l.length, w.length) >= 2 && (w.startsWith(l) || l.startsWith(w))
  })
  // `substr`: `substring` rather than `substringBefore` or `substringAfter`, which extend it.
  const shortest = related.sort((a, b) => a.length - b.length)[0]
  return shortest !== undefined && related.every(c => c.toLowerCase().startsWith(shortest.toLowerCase())) ? shortest : undefined
}

/** ` (did you mean "x"?)`, or nothing. `quote` false for `$names`. */
export function didYouMean (word: string, candidates: Iterable<string>, quote = true): string {
  const c = closest(word, candidates)
  return c === undefined ? '' : quote ? ` (did you mean "${c}"?)` : ` (did you mean ${c}?)`
}
