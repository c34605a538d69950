/**
 * The KeyManager's ciphertext format, version 1. Self-describing, so a
 * ciphertext still decrypts after `rotateDataKey()` or a restart:
 *
 * | offset | size | field                                   |
 * |--------|------|-----------------------------------------|
 * | 0      | 1    | format version, `0x01`                  |
 * | 1      | 16   | id of the data key (DEK) that sealed it |
 * | 17     | 12   | random nonce                            |
 * | 29     | n    | AES-256-GCM ciphertext                  |
 * | 29 + n | 16   | GCM tag                                 |
 *
 * GCM's additional data is the 17-byte header followed by the caller's
 * `aad`, so the version and the key id cannot be swapped without the tag
 * failing. Strings travel as unpadded base64url, decoded strictly.
 */
import { GCM_NONCE_BYTES, GCM_TAG_BYTES } from '../../internal/aead.js'

export const FORMAT_VERSION = 0x01
export const DEK_ID_BYTES = 16
export const HEADER_BYTES = 1 + DEK_ID_BYTES
export const NONCE_OFFSET = HEADER_BYTES
export const BODY_OFFSET = HEADER_BYTES + GCM_NONCE_BYTES
/** Smallest valid ciphertext: header, nonce and tag around an empty plaintext. */
export const MIN_CIPHERTEXT_BYTES = BODY_OFFSET + GCM_TAG_BYTES

const BASE64URL = /^[A-Za-z0-9_-]*$/

/**
 * Strict base64url: the alphabet only, no padding, and canonical (the unused
 * low bits of the last character are zero), so every ciphertext has exactly
 * one text form. Returns undefined for anything else.
 */
export function decodeBase64Url(text: string): Buffer | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined
  const bytes = Buffer.from(text, 'base64url')
  return bytes.toString('base64url') === text ? bytes : undefined
}

/** The 17-byte header for a data key id. */
export function headerFor(dekId: Uint8Array): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES)
  header[0] = FORMAT_VERSION
  header.set(dekId, 1)
  return header
}

/**
 * Whether `bytes` starts with `header`. Plain loop: a native call costs more
 * than comparing 17 bytes, and the header is public (no timing concern).
 */
export function hasHeader(bytes: Uint8Array, header: Uint8Array): boolean {
  if (bytes.length < header.length) return false
  for (let i = 0; i < header.length; i++) if (bytes[i] !== header[i]) return false
  return true
}

/** GCM additional data: header, then the caller's `aad`. */
export function additionalData(header: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
  if (aad === undefined || aad.length === 0) return header
  const out = Buffer.allocUnsafe(header.length + aad.length)
  out.set(header, 0)
  out.set(aad, header.length)
  return out
}
