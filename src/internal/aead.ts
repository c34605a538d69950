/**
 * AES-256-GCM with a 96-bit nonce and a 128-bit tag: the one AEAD every
 * local seal in the package uses (the KeyManager's ciphertexts, the local
 * KMS provider, the emulators). NIST SP 800-38D §8.3: with random nonces, at
 * most 2^32 invocations per key.
 */
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto'

export const AES_KEY_BYTES = 32
export const GCM_NONCE_BYTES = 12
export const GCM_TAG_BYTES = 16

export type AesKey = Uint8Array | KeyObject

/** Encrypts `plaintext`; returns `ciphertext || tag`. */
export function gcmSeal(
  key: AesKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES })
  cipher.setAAD(aad)
  const head = cipher.update(plaintext)
  const tail = cipher.final()
  return Buffer.concat([head, tail, cipher.getAuthTag()])
}

/**
 * Decrypts `ciphertext || tag`. Returns undefined on any failure (wrong key,
 * nonce, AAD or tag, truncation): callers turn that into their one opaque error.
 */
export function gcmOpen(
  key: AesKey,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Buffer | undefined {
  if (sealed.length < GCM_TAG_BYTES) return undefined
  const bodyEnd = sealed.length - GCM_TAG_BYTES
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES })
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.subarray(bodyEnd))
    const head = decipher.update(sealed.subarray(0, bodyEnd))
    const tail = decipher.final()
    return tail.length === 0 ? head : Buffer.concat([head, tail])
  } catch {
    return undefined
  }
}
