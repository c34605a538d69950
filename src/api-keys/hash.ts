/**
 * What the store keeps of a key: HMAC-SHA256 under the pepper (RFC 2104;
 * FIPS 198-1), never the key. A pepper is a 32-byte secret held as a
 * `KeyObject`, so its bytes are not copied around per call.
 */
import { createHmac, type KeyObject, timingSafeEqual } from 'node:crypto'

/** Bytes of a full HMAC-SHA256 tag: the only length ever compared. */
export const HASH_BYTES = 32

/** HMAC-SHA256 of `data` (a string is taken as UTF-8) under `pepper`. */
export function hmacSha256(pepper: KeyObject, data: string | Uint8Array): Buffer {
  return createHmac('sha256', pepper).update(data).digest()
}

/**
 * Constant-time comparison of a computed tag with a stored one. A stored
 * value that is not a full 32-byte tag never matches (no truncated MACs).
 */
export function hashesEqual(computed: Uint8Array, stored: Uint8Array): boolean {
  if (computed.length !== HASH_BYTES || stored.length !== HASH_BYTES) return false
  return timingSafeEqual(computed, stored)
}
