/**
 * Base62 with the alphabet `0-9A-Za-z` (in that order: digit values 0-9,
 * 10-35, 36-61), as GitHub's token format uses for its checksum.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto'
import type { RandomBytes } from './random.js'

export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** Character code → digit value, -1 outside the alphabet. */
const VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < BASE62_ALPHABET.length; i++) VALUE[BASE62_ALPHABET.charCodeAt(i)] = i

/** Whether `s[from, to)` is all base62 characters. */
export function isBase62(s: string, from = 0, to = s.length): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || VALUE[c]! < 0) return false
  }
  return true
}

/** The value of `s[from, to)` read as base62, or -1 if a character is outside the alphabet. */
export function decodeBase62(s: string, from: number, to: number): number {
  let v = 0
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    const d = c < 128 ? VALUE[c]! : -1
    if (d < 0) return -1
    v = v * 62 + d
  }
  return v
}

/** A non-negative safe integer in base62, left-padded with `0` to `width` characters. */
export function encodeBase62(value: number, width: number): string {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError('value must be a safe integer ≥ 0')
  let out = ''
  let v = value
  do {
    out = BASE62_ALPHABET[v % 62]! + out
    v = Math.floor(v / 62)
  } while (v > 0)
  if (out.length > width) throw new RangeError(`value needs more than ${width} base62 characters`)
  return out.padStart(width, '0')
}

/**
 * `length` uniformly random base62 characters. Bytes of 248 and above are
 * dropped (rejection sampling): `byte % 62` over all 256 values would make
 * the first 8 characters likelier than the rest.
 */
export function randomBase62(length: number, randomBytes: RandomBytes = cryptoRandomBytes): string {
  let out = ''
  while (out.length < length) {
    const bytes = randomBytes(Math.max(16, Math.ceil((length - out.length) * 1.1)))
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      const b = bytes[i]!
      if (b < 248) out += BASE62_ALPHABET[b % 62]
    }
  }
  return out
}
