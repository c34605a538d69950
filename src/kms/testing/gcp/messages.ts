/**
 * Reading request messages as @grpc/proto-loader decodes them (snake_case
 * fields, int64 as decimal strings, absent fields left absent), and writing
 * `google.protobuf.Timestamp`.
 */

/** A decoded message: field name (snake_case) to value. */
export type Message = Record<string, unknown>

/** A string field, '' when absent (proto3's default). */
export const str = (v: unknown): string => (typeof v === 'string' ? v : '')

/** A bytes field, empty when absent. */
export const bytes = (v: unknown): Buffer =>
  Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : Buffer.alloc(0)

/** A message field, undefined when absent. */
export const msg = (v: unknown): Message | undefined =>
  v !== null && typeof v === 'object' ? (v as Message) : undefined

/** An Int64Value field: undefined when absent; a present wrapper without value is 0. */
export function int64Value(v: unknown): number | undefined {
  const m = msg(v)
  if (m === undefined) return undefined
  return m.value === undefined || m.value === null ? 0 : Number(m.value)
}

/** Milliseconds as a `google.protobuf.Timestamp`. */
export function timestamp(ms: number): { seconds: string; nanos: number } {
  const seconds = Math.floor(ms / 1000)
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1e6 }
}

/** A `Timestamp` field in milliseconds. */
export function millisOf(v: unknown): number | undefined {
  const m = msg(v)
  if (m === undefined) return undefined
  return Number(m.seconds ?? 0) * 1000 + Math.floor(Number(m.nanos ?? 0) / 1e6)
}

/** A `Duration` field in seconds. */
export function secondsOf(v: unknown): number | undefined {
  const m = msg(v)
  if (m === undefined) return undefined
  return Number(m.seconds ?? 0) + Number(m.nanos ?? 0) / 1e9
}
