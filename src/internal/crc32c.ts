/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as Google Cloud KMS
 * uses for its integrity fields. Not `zlib.crc32`, which is the IEEE CRC-32.
 * Check value: crc32c("123456789") = 0xE3069283 (RFC 3720 appendix B.4).
 */
const TABLE = new Uint32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  TABLE[n] = c >>> 0
}

/** Unsigned CRC32C of `data`; pass a previous result to continue a stream. */
export function crc32c(data: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}
