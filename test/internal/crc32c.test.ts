import { describe, expect, it } from 'vitest'
import { crc32c } from '../../src/internal/crc32c.js'

const bytes = (length: number, at: (i: number) => number) =>
  Uint8Array.from({ length }, (_, i) => at(i))

describe('crc32c (Castagnoli)', () => {
  it('gives the catalogued check value for "123456789" (0xE3069283)', () => {
    expect(crc32c(Buffer.from('123456789', 'ascii'))).toBe(0xe3069283)
  })

  it('gives 0 for empty input', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0)
  })

  // RFC 3720 appendix B.4 lists each CRC as bytes in transmission order (little-endian).
  it('matches the RFC 3720 B.4 test vectors', () => {
    expect(crc32c(bytes(32, () => 0x00))).toBe(0x8a9136aa)
    expect(crc32c(bytes(32, () => 0xff))).toBe(0x62a8ab43)
    expect(crc32c(bytes(32, (i) => i))).toBe(0x46dd794e)
    expect(crc32c(bytes(32, (i) => 31 - i))).toBe(0x113fdb5c)
    // An iSCSI SCSI Read (10) command PDU.
    const pdu = Buffer.from(
      '01c000000000000000000000000000001400000000000400000000140000001828000000000000000200000000000000',
      'hex',
    )
    expect(crc32c(pdu)).toBe(0xd9963a56)
  })

  it('is not the IEEE CRC-32 (zlib.crc32 of "123456789" is 0xCBF43926)', () => {
    expect(crc32c(Buffer.from('123456789'))).not.toBe(0xcbf43926)
  })

  it('returns an unsigned 32-bit value and can continue a stream', () => {
    const all = Buffer.from('hello, world')
    expect(crc32c(Buffer.from('hello'))).toBe(2591144780)
    expect(crc32c(all.subarray(5), crc32c(all.subarray(0, 5)))).toBe(crc32c(all))
    for (const v of [crc32c(bytes(32, () => 0xff)), crc32c(all)]) {
      expect(v).toBeGreaterThanOrEqual(0)
      expect(v).toBeLessThan(2 ** 32)
    }
  })
})
