/**
 * Reproducible output (reproducible-builds.org's SOURCE_DATE_EPOCH
 * specification): with the variable set, the timestamp is that instant and
 * the serial number is derived from the content, so the same lockfile gives
 * byte-identical SBOMs on every machine. Without it, the serial number is a
 * random UUID, as CycloneDX recommends for distinct BOMs.
 */
import { createHash } from 'node:crypto'
import type { RandomBytes } from '../internal/random.js'

/** RFC 9562 §6.6: the URL namespace, used with our URL-shaped name. */
const NAMESPACE_URL = '6ba7b8119dad11d180b400c04fd430c8'

function format(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

/** RFC 9562 §5.5: a name-based UUID (version 5, SHA-1) of `name` in the URL namespace. */
export function uuidV5(name: string): string {
  const digest = createHash('sha1')
    .update(Buffer.from(NAMESPACE_URL, 'hex'))
    .update(name, 'utf8')
    .digest()
  const bytes = digest.subarray(0, 16)
  bytes[6] = (bytes[6]! & 0x0f) | 0x50
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  return format(bytes)
}

/** RFC 9562 §5.4: a random UUID (version 4) from injected randomness. */
export function uuidV4(randomBytes: RandomBytes): string {
  const bytes = Uint8Array.from(randomBytes(16))
  if (bytes.length !== 16) throw new TypeError('randomBytes(16) must return 16 bytes')
  bytes[6] = (bytes[6]! & 0x0f) | 0x40
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  return format(bytes)
}
