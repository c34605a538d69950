/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of
 * zip, PNG and GitHub's token format. `node:zlib` has it natively from
 * Node.js 20.15 / 22.2; older Node.js 20 releases get the table below.
 * Check value: crc32("123456789") = 0xCBF43926.
 */
import * as zlib from 'node:zlib'

const TABLE = new Uint32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1
  TABLE[n] = c >>> 0
}

/** The portable implementation, exported for the test that compares it with zlib's. */
export function crc32Table(data: Uint8Array): number {
  let c = 0xffffffff
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

type NativeCrc32 = (data: string | Uint8Array, value?: number) => number
const native = (zlib as { crc32?: NativeCrc32 }).crc32

/**
 * Unsigned CRC-32 of `data` (a string is taken as UTF-8). Uses zlib's
 * native implementation when this Node.js has one.
 */
export const crc32: (data: string | Uint8Array) => number =
  native === undefined
    ? (data) => crc32Table(typeof data === 'string' ? Buffer.from(data, 'utf8') : data)
    : (data) => native(data)
