/**
 * CRC32C end-to-end checks, as Google's Cloud KMS data-integrity guidelines
 * ask (https://cloud.google.com/kms/docs/data-integrity-guidelines): a
 * mismatch either way is corruption in transit, retried by the base provider.
 */
import { crc32c } from '../../../internal/crc32c.js'
import type { GcpInt64Value } from './client.js'
import { int64 } from './messages.js'

/** The message of every integrity failure (it names no data). */
export const INTEGRITY = 'Cloud KMS data failed its CRC32C integrity check'

/**
 * How Cloud KMS words a request checksum it refused (INVALID_ARGUMENT). gcloud
 * recognises server-side integrity failures by the same text
 * (googlecloudsdk `ProcessHttpBadRequestError`). Used to classify, never kept.
 */
export const CHECKSUM_REJECTED = /The checksum in field \S+ did not match the data in field \S+/

/** Whether an Int64Value checksum is present and equals CRC32C(data). */
export function checksumMatches(
  field: GcpInt64Value | null | undefined,
  data: Uint8Array,
): boolean {
  // A present wrapper with no value is 0 (proto3 default), a legitimate CRC32C.
  if (field === null || field === undefined) return false
  const value = field.value === null || field.value === undefined ? 0 : int64(field.value)
  return value === crc32c(data)
}
