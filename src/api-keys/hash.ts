/**
 * What the store keeps of a key: HMAC-SHA256 under the pepper (RFC 2104,
 * FIPS 198-1), never the key.
 *
 * The hot path computes the HMAC from its definition,
 * `H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))`, with two one-shot `crypto.hash`
 * calls over preallocated buffers: `createHmac` builds a new native object
 * per call, which costs more than the two hashes themselves (≈ 20 % of a
 * whole validation here). The padded keys live only in this object and are
 * zeroed by `dispose()`. Where `crypto.hash` is missing (Node.js < 20.12),
 * or for a message that does not fit the buffer, `createHmac` computes the
 * same value. Checked against the Wycheproof HMAC-SHA256 vectors.
 */
import * as crypto from 'node:crypto'

/** Bytes of a full HMAC-SHA256 tag: the only length ever compared. */
export const HASH_BYTES = 32
/** SHA-256 block size (FIPS 180-4). */
const BLOCK = 64
/** Largest message (in UTF-16 units) the preallocated buffer takes; keys are far shorter. */
const MAX_INLINE = 1024

type OneShotHash = (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer
const oneShot = (crypto as { hash?: unknown }).hash as OneShotHash | undefined

/** Whether this Node.js has `crypto.hash` with Buffer output (checked once). */
const HAS_ONE_SHOT = (() => {
  if (typeof oneShot !== 'function') return false
  try {
    const out = oneShot('sha256', new Uint8Array(0), 'buffer')
    return Buffer.isBuffer(out) && out.toString('hex').startsWith('e3b0c442')
  } catch {
    return false
  }
})()

/**
 * SHA-256 of `buffer`'s first block followed by `data`, written into the
 * buffer after that block and zeroed again (the message, a key, does not
 * stay behind). `undefined` when `data` does not fit: the caller hashes
 * another way.
 */
function hashAfterBlock(buffer: Buffer, data: string | Uint8Array): Buffer | undefined {
  if (data.length > MAX_INLINE) return undefined
  // At most 3 UTF-8 bytes per UTF-16 unit: the message always fits.
  let n: number
  if (typeof data === 'string') {
    n = buffer.write(data, BLOCK, 'utf8')
  } else {
    buffer.set(data, BLOCK)
    n = data.length
  }
  const digest = oneShot!('sha256', buffer.subarray(0, BLOCK + n), 'buffer')
  buffer.fill(0, BLOCK, BLOCK + n)
  return digest
}

/** A buffer of one block (filled by the caller) followed by room for a message. */
function blockAndMessage(): Buffer {
  return Buffer.alloc(BLOCK + 3 * MAX_INLINE)
}

/** A pepper: an HMAC-SHA256 key, used only through {@link Pepper.mac}. */
export class Pepper {
  readonly #key: crypto.KeyObject
  /** `K ⊕ ipad`, then room for the message. */
  readonly #inner: Buffer | undefined
  /** `K ⊕ opad`, then room for the inner digest. */
  readonly #outer: Buffer | undefined
  #disposed = false

  /** `key` is copied; zero your copy afterwards. */
  constructor(key: Uint8Array) {
    this.#key = crypto.createSecretKey(key)
    if (!HAS_ONE_SHOT) return
    // RFC 2104 §2: a key longer than the block is hashed first; shorter ones are zero-padded.
    const k = key.length > BLOCK ? crypto.createHash('sha256').update(key).digest() : key
    this.#inner = blockAndMessage()
    this.#outer = Buffer.alloc(BLOCK + HASH_BYTES)
    for (let i = 0; i < BLOCK; i++) {
      const b = i < k.length ? k[i]! : 0
      this.#inner[i] = b ^ 0x36
      this.#outer[i] = b ^ 0x5c
    }
    if (k !== key) k.fill(0)
  }

  /** HMAC-SHA256 of `data` (a string is taken as UTF-8). */
  mac(data: string | Uint8Array): Buffer {
    if (this.#disposed) throw new Error('this pepper was disposed')
    const inner = this.#inner
    const outer = this.#outer
    const innerDigest = inner === undefined ? undefined : hashAfterBlock(inner, data)
    if (innerDigest === undefined || outer === undefined) {
      return crypto.createHmac('sha256', this.#key).update(data).digest()
    }
    innerDigest.copy(outer, BLOCK)
    return oneShot!('sha256', outer, 'buffer')
  }

  /** Zeroes the padded keys. The pepper computes nothing after this. */
  dispose(): void {
    this.#disposed = true
    this.#inner?.fill(0)
    this.#outer?.fill(0)
  }
}

/**
 * Constant-time comparison of a computed tag with a stored one. A stored
 * value that is not a full 32-byte tag never matches (no truncated MACs).
 */
export function hashesEqual(computed: Uint8Array, stored: Uint8Array): boolean {
  if (computed.length !== HASH_BYTES || stored.length !== HASH_BYTES) return false
  return crypto.timingSafeEqual(computed, stored)
}

/**
 * What the cache remembers of a key that passed the HMAC check, to
 * recognize it again for a third of the cost: SHA-256 of a random block
 * drawn once per process, followed by the key. One native hash call where
 * the HMAC takes two (on Node.js 20 with OpenSSL 3 each call costs about
 * 2 µs whatever it hashes, more than a whole validation's other work).
 *
 * Nothing is weakened: a fingerprint is made only from a key whose HMAC
 * matched the stored one, and matching it again takes the same key string
 * (a second preimage of SHA-256); the random block, like the pepper, lives
 * only in this process's memory, next to the tags it protects.
 */
export class KeyFingerprints {
  readonly #salt: Buffer = crypto.randomBytes(BLOCK)
  readonly #buffer: Buffer | undefined

  constructor() {
    if (!HAS_ONE_SHOT) return
    this.#buffer = blockAndMessage()
    this.#salt.copy(this.#buffer)
  }

  /** The fingerprint of `key` (a string is taken as UTF-8). */
  of(key: string | Uint8Array): Buffer {
    const buffer = this.#buffer
    const digest = buffer === undefined ? undefined : hashAfterBlock(buffer, key)
    return digest ?? crypto.createHash('sha256').update(this.#salt).update(key).digest()
  }

  /** Zeroes the random block: fingerprints made before never match again. */
  dispose(): void {
    this.#salt.fill(0)
    this.#buffer?.fill(0)
  }
}
