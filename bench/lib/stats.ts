/** Exact percentiles of a sample (sorted copy); enough for the tens of thousands of points a run takes. */
export function percentiles (values: number[]): { p50: number, p99: number, max: number, count: number } {
  const v = [...values].sort((a, b) => a - b)
  const at = (q: number): number => v[Math.min(v.length - 1, Math.floor(q * v.length))] ?? NaN
  return { p50: at(0.5), p99: at(0.99), max: v[v.length - 1] ?? NaN, count: v.length }
}

export const round = (n: number, digits = 2): number => Number.isFinite(n) ? Number(n.toFixed(digits)) : n
