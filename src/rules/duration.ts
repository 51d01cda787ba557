/** `500ms`, `30s`, `10m`, `2h`, `1d` → milliseconds; undefined when malformed. */
export function parseDuration (text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim())
  if (m === null) return undefined
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd']
  return Math.round(Number(m[1]) * unit)
}
