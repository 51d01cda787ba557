/**
 * A copy of `o` without its undefined properties: normalized events omit absent data rather than
 * carry it (PRODUCT.md §2). A plain loop: this runs several times per uplink, and the
 * entries/filter/fromEntries spelling allocated three arrays per call.
 */
export function omitUndefined<T extends object> (o: T): T {
  const out: Record<string, unknown> = {}
  for (const key in o) {
    const value = o[key]
    if (value !== undefined) out[key] = value
  }
  return out as T
}
