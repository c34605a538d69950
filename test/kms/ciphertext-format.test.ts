/**
 * The KeyManager's ciphertext format table (src/kms/key-manager/format.ts)
 * and the committed test vector: data written by a released version must
 * decrypt with every later one.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecryptionError } from '../../src/kms/index.js'
import { CURRENT_FORMAT, FORMATS, formatOf } from '../../src/kms/key-manager/format.js'
import { vector, vectorManager } from './fixtures/ciphertext-vector.js'

describe('the committed version 1 test vector', () => {
  it('decrypts through the published KeyManager with its master key and keyring entry', async () => {
    const manager = await vectorManager()
    expect(await manager.localDecrypt(vector.ciphertext, vector.aad)).toBe(vector.plaintext)
    await expect(manager.localDecrypt(vector.ciphertext, 'customer:43')).rejects.toBeInstanceOf(
      DecryptionError,
    )
    manager.dispose()
  })

  it('opens through the table entry its version byte names, with the data key alone', () => {
    const bytes = Buffer.from(vector.ciphertext, 'base64url')
    const format = formatOf(bytes)
    expect(format?.version).toBe(1)
    expect(format?.dekIdOf(bytes)).toBe(vector.keyringEntry.id)
    const plain = format?.open(
      Buffer.from(vector.dataKeyHex, 'hex'),
      bytes,
      Buffer.from(vector.aad, 'utf8'),
    )
    expect(plain?.toString('utf8')).toBe(vector.plaintext)
  })
})

describe('the format table', () => {
  it('localEncrypt writes the current format, keyed by its own version byte', () => {
    expect(FORMATS.get(CURRENT_FORMAT.version)).toBe(CURRENT_FORMAT)
    for (const [version, format] of FORMATS) expect(format.version).toBe(version)
  })

  it('every format opens what it sealed, and nothing with one bit flipped (property)', () => {
    const key = Buffer.alloc(32, 7)
    const id = Buffer.alloc(16, 9)
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
        fc.nat(),
        fc.nat({ max: 7 }),
        (plaintext, aad, at, bit) => {
          for (const format of FORMATS.values()) {
            const sealed = format.seal(key, format.header(id), plaintext, aad)
            expect(formatOf(sealed)).toBe(format)
            expect(format.dekIdOf(sealed)).toBe(id.toString('hex'))
            expect(Buffer.from(format.open(key, sealed, aad) ?? [])).toEqual(Buffer.from(plaintext))
            const flipped = Buffer.from(sealed)
            flipped[at % flipped.length]! ^= 1 << bit
            expect(format.open(key, flipped, aad)).toBeUndefined()
          }
        },
      ),
    )
  })

  it('a version byte not in the table is an unknown format', () => {
    const bytes = Buffer.from(vector.ciphertext, 'base64url')
    for (const version of [0x00, 0x02, 0x7f, 0xff]) {
      if (FORMATS.has(version)) continue
      expect(formatOf(Buffer.concat([Buffer.of(version), bytes.subarray(1)]))).toBeUndefined()
    }
    expect(formatOf(new Uint8Array(0))).toBeUndefined()
  })
})
