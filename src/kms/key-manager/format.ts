/**
 * The KeyManager's ciphertext formats, as a table keyed by the version byte
 * every ciphertext starts with. `localEncrypt` writes {@link CURRENT_FORMAT};
 * `localDecrypt` reads the version byte and opens with that version's entry,
 * so a later version is one new entry here, and ciphertexts of every version
 * in the table keep decrypting. A version leaves the table only when no
 * stored data can still be in it.
 *
 * Version 1:
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
import { randomFillSync } from 'node:crypto'
import { GCM_NONCE_BYTES, GCM_TAG_BYTES, gcmOpen, gcmSealInto } from '../../internal/aead.js'

export const DEK_ID_BYTES = 16

/** One version of the ciphertext format: how its header looks, how it seals and opens. */
export interface CiphertextFormat {
  /** The first byte of every ciphertext of this version. */
  readonly version: number
  /** Smallest valid ciphertext (an empty plaintext). */
  readonly minBytes: number
  /** The header for a DEK id: what `seal` writes first (cached per key by the caller). */
  header(dekId: Uint8Array): Buffer
  /**
   * The id (hex) of the DEK that sealed `bytes`, or undefined when `bytes`
   * is no ciphertext of this version (too short).
   */
  dekIdOf(bytes: Uint8Array): string | undefined
  /** Seals `plaintext` under `key` with this version's `header` for that key. */
  seal(
    key: Uint8Array,
    header: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array | undefined,
  ): Buffer
  /**
   * Opens a ciphertext of this version with the key its header names;
   * undefined for any failure (the caller's one opaque error).
   */
  open(key: Uint8Array, bytes: Uint8Array, aad: Uint8Array | undefined): Buffer | undefined
}

/** GCM additional data: header, then the caller's `aad`. */
function additionalData(header: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
  if (aad === undefined || aad.length === 0) return header
  const out = Buffer.allocUnsafe(header.length + aad.length)
  out.set(header, 0)
  out.set(aad, header.length)
  return out
}

const V1_HEADER_BYTES = 1 + DEK_ID_BYTES
const V1_BODY_OFFSET = V1_HEADER_BYTES + GCM_NONCE_BYTES

const version1: CiphertextFormat = {
  version: 0x01,
  minBytes: V1_BODY_OFFSET + GCM_TAG_BYTES,
  header(dekId) {
    const header = Buffer.allocUnsafe(V1_HEADER_BYTES)
    header[0] = 0x01
    header.set(dekId, 1)
    return header
  },
  dekIdOf(bytes) {
    if (bytes.length < this.minBytes) return undefined
    return Buffer.from(bytes.buffer, bytes.byteOffset + 1, DEK_ID_BYTES).toString('hex')
  },
  seal(key, header, plaintext, aad) {
    // One buffer for header, nonce, ciphertext and tag: the ciphertext is
    // written in place, never copied.
    const out = Buffer.allocUnsafe(V1_BODY_OFFSET + plaintext.length + GCM_TAG_BYTES)
    out.set(header, 0)
    const nonce = randomFillSync(out, V1_HEADER_BYTES, GCM_NONCE_BYTES).subarray(
      V1_HEADER_BYTES,
      V1_BODY_OFFSET,
    )
    gcmSealInto(key, nonce, plaintext, additionalData(header, aad), out, V1_BODY_OFFSET)
    return out
  },
  open(key, bytes, aad) {
    if (bytes.length < this.minBytes) return undefined
    // The header authenticated is the one the ciphertext carries: the key
    // was looked up by its id, and the tag fails for any other header.
    return gcmOpen(
      key,
      bytes.subarray(V1_HEADER_BYTES, V1_BODY_OFFSET),
      bytes.subarray(V1_BODY_OFFSET),
      additionalData(bytes.subarray(0, V1_HEADER_BYTES), aad),
    )
  },
}

/** Every format `localDecrypt` reads, by version byte. */
export const FORMATS: ReadonlyMap<number, CiphertextFormat> = new Map([
  [version1.version, version1],
])

/** The format `localEncrypt` writes. */
export const CURRENT_FORMAT: CiphertextFormat = version1

/** The format of `bytes` by its version byte, or undefined for an unknown version. */
export function formatOf(bytes: Uint8Array): CiphertextFormat | undefined {
  const version = bytes[0]
  return version === undefined ? undefined : FORMATS.get(version)
}

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

/**
 * Whether `bytes` starts with `header`. Plain loop: a native call costs more
 * than comparing 17 bytes, and the header is public (no timing concern).
 */
export function hasHeader(bytes: Uint8Array, header: Uint8Array): boolean {
  if (bytes.length < header.length) return false
  for (let i = 0; i < header.length; i++) if (bytes[i] !== header[i]) return false
  return true
}
