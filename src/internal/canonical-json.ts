/**
 * Canonical JSON: object keys sorted (by UTF-16 code units) at every depth,
 * no whitespace. Two parties that agree on the data agree on the bytes, which
 * is what binding a context as authenticated data needs.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const out = JSON.stringify(value)
    if (out === undefined) throw new TypeError('value is not representable as JSON')
    return out
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
  return `{${entries.join(',')}}`
}
