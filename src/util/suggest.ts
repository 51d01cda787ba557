/**
 * "Did you mean …?" for a misspelt name, as commander does for unknown commands: the closest
 * candidate by edit distance (a swap of two neighbours counts as one edit), if it is close enough
 * to be a typo rather than another word.
 */

/** Optimal string alignment distance (Damerau–Levenshtein without repeated edits of a substring). */
export function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}

/** The candidate closest to `word` (case ignored), or undefined when none is within a typo's reach. */
export function closest (word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of candidates) {
    const distance = editDistance(w, c.toLowerCase())
    if (distance < bestDistance) { best = c; bestDistance = distance }
  }
  // As commander: at most 40 % of the word may differ (and never more than 3 edits).
  const reach = Math.min(3, Math.max(1, Math.floor(word.length * 0.4)))
  return best !== undefined && bestDistance > 0 && bestDistance <= reach ? best : undefined
}
