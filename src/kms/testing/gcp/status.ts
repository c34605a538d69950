/**
 * gRPC errors as the emulator answers them: status codes (grpc/status.h),
 * and the `grpc-status-details-bin` trailer, a `google.rpc.Status` written
 * in protobuf wire format by hand (it needs only varints and length-delimited
 * fields).
 */

/** gRPC status codes (grpc/status.h). */
export const INVALID_ARGUMENT = 3
export const NOT_FOUND = 5
export const ALREADY_EXISTS = 6
export const RESOURCE_EXHAUSTED = 8
export const FAILED_PRECONDITION = 9
export const INTERNAL = 13
export const UNAVAILABLE = 14

/** A gRPC error answer. */
export class Status extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    /** Sent as `google.rpc.RetryInfo` in the status details (AIP-194). */
    readonly retryAfterMs?: number,
  ) {
    super(details)
  }
}

/** Protobuf wire format, enough for google.rpc.Status and its details. */
function varint(n: number): Buffer {
  const out: number[] = []
  let v = n
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Buffer.from(out)
}

const field = (tag: number, bytes: Buffer) =>
  Buffer.concat([varint(tag), varint(bytes.length), bytes])

const any = (type: string, value: Buffer) =>
  Buffer.concat([field(0x0a, Buffer.from(`type.googleapis.com/${type}`)), field(0x12, value)])

/**
 * `grpc-status-details-bin`: a `google.rpc.Status` carrying `ErrorInfo`
 * (RATE_LIMIT_EXCEEDED) and `RetryInfo { retry_delay }`, as Google APIs
 * send with a quota error that says when to come back.
 */
export function statusDetails(code: number, message: string, retryAfterMs: number): Buffer {
  const seconds = Math.floor(retryAfterMs / 1000)
  const nanos = (retryAfterMs - seconds * 1000) * 1e6
  const duration = Buffer.concat([
    ...(seconds > 0 ? [Buffer.from([0x08]), varint(seconds)] : []),
    ...(nanos > 0 ? [Buffer.from([0x10]), varint(nanos)] : []),
  ])
  const errorInfo = Buffer.concat([
    field(0x0a, Buffer.from('RATE_LIMIT_EXCEEDED')),
    field(0x12, Buffer.from('googleapis.com')),
  ])
  return Buffer.concat([
    Buffer.from([0x08]),
    varint(code),
    field(0x12, Buffer.from(message)),
    field(0x1a, any('google.rpc.ErrorInfo', errorInfo)),
    field(0x1a, any('google.rpc.RetryInfo', field(0x0a, duration))),
  ])
}
