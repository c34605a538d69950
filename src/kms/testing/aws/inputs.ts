/**
 * Request fields checked as KMS checks them, each failure worded as KMS
 * words it (the AWS KMS API reference, per action and parameter).
 */
import { WireError } from './wire.js'

/** `NumberOfBytes`: an integer from 1 to 1024. */
export function byteCount(n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw new WireError(
      'ValidationException',
      "1 validation error detected: Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024",
    )
  }
  return n
}

export function algorithm(value: unknown): void {
  if (value !== undefined && value !== 'SYMMETRIC_DEFAULT') {
    throw new WireError(
      'InvalidKeyUsageException',
      'The encryption algorithm is not supported by this key.',
    )
  }
}

/** A base64 blob field, 1 to `max` bytes. */
export function blob(value: unknown, field: string, max: number): Buffer {
  if (
    typeof value !== 'string' ||
    !/^[A-Za-z0-9+/]*={0,2}$/.test(value) ||
    value.length % 4 !== 0
  ) {
    throw new WireError('SerializationException', `Value for '${field}' is not valid base64`)
  }
  const bytes = Buffer.from(value, 'base64')
  if (bytes.length < 1 || bytes.length > max) {
    throw new WireError(
      'ValidationException',
      `1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must have length between 1 and ${max}`,
    )
  }
  return bytes
}

export function context(value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WireError('SerializationException', 'EncryptionContext must be a map of strings')
  }
  for (const v of Object.values(value)) {
    if (typeof v !== 'string') {
      throw new WireError('SerializationException', 'EncryptionContext must be a map of strings')
    }
  }
  return value as Record<string, string>
}

/** `KeySpec` or `NumberOfBytes`, exactly one, as GenerateDataKey* take them. */
export function dataKeySize(input: Record<string, unknown>): number {
  const { KeySpec: spec, NumberOfBytes: n } = input
  if ((spec === undefined) === (n === undefined)) {
    throw new WireError('ValidationException', 'Please specify either number of bytes or key spec.')
  }
  if (spec !== undefined) {
    if (spec !== 'AES_256' && spec !== 'AES_128') {
      throw new WireError(
        'ValidationException',
        "1 validation error detected: Value at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]",
      )
    }
    return spec === 'AES_256' ? 32 : 16
  }
  return byteCount(n)
}

/** A list page: `Limit` 1-1000 (default 100) and an opaque `Marker` from the previous page. */
export function page<T>(
  items: readonly T[],
  input: Record<string, unknown>,
): { items: T[]; more: { Truncated: boolean; NextMarker?: string } } {
  const limit = input.Limit ?? 100
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new WireError(
      'ValidationException',
      "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000",
    )
  }
  let start = 0
  if (input.Marker !== undefined) {
    const decoded =
      typeof input.Marker === 'string'
        ? /^o([0-9]{1,9})$/.exec(Buffer.from(input.Marker, 'base64').toString('latin1'))
        : null
    if (decoded === null) throw new WireError('InvalidMarkerException', 'Invalid marker.')
    start = Number(decoded[1])
  }
  const slice = items.slice(start, start + limit)
  const next = start + slice.length
  return next < items.length
    ? {
        items: slice,
        more: { Truncated: true, NextMarker: Buffer.from(`o${next}`).toString('base64') },
      }
    : { items: slice, more: { Truncated: false } }
}
