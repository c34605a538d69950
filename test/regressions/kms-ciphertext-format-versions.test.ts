/**
 * localDecrypt refused every version byte but the current one, and compared
 * ciphertexts against a cached header holding that version byte: a writer
 * of a new format could not have read the data already stored. It now
 * dispatches on the version byte through the format table, so a second
 * entry there is read beside version 1 by the same KeyManager.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { DecryptionError } from '../../src/kms/index.js'
import { type CiphertextFormat, CURRENT_FORMAT, FORMATS } from '../../src/kms/key-manager/format.js'
import { vector, vectorManager } from '../kms/fixtures/ciphertext-vector.js'

const TEST_VERSION = 0x7e

/**
 * A stand-in for a future version: version 1's layout under another
 * version byte (the byte is authenticated, so this is a distinct format).
 */
const testFormat: CiphertextFormat = {
  version: TEST_VERSION,
  minBytes: CURRENT_FORMAT.minBytes,
  header(dekId) {
    const header = CURRENT_FORMAT.header(dekId)
    header[0] = TEST_VERSION
    return header
  },
  dekIdOf: (bytes) => CURRENT_FORMAT.dekIdOf(bytes),
  seal: (key, header, plaintext, aad) => CURRENT_FORMAT.seal(key, header, plaintext, aad),
  open: (key, bytes, aad) => CURRENT_FORMAT.open(key, bytes, aad),
}

afterEach(() => {
  ;(FORMATS as Map<number, CiphertextFormat>).delete(TEST_VERSION)
})

describe('localDecrypt dispatches on the version byte', () => {
  it('reads a second format in the table beside version 1, with the same cached data key', async () => {
    const keys = await vectorManager()
    const dek = Buffer.from(vector.dataKeyHex, 'hex')
    const id = Buffer.from(vector.keyringEntry.id, 'hex')
    const other = testFormat
      .seal(
        dek,
        testFormat.header(id),
        Buffer.from('written by the next version'),
        Buffer.from('row:1'),
      )
      .toString('base64url')

    // Not in the table: refused like any other bad ciphertext.
    await expect(keys.localDecrypt(other, 'row:1')).rejects.toBeInstanceOf(DecryptionError)

    ;(FORMATS as Map<number, CiphertextFormat>).set(TEST_VERSION, testFormat)
    expect(await keys.localDecrypt(other, 'row:1')).toBe('written by the next version')
    expect(await keys.localDecrypt(vector.ciphertext, vector.aad)).toBe(vector.plaintext)
    // The tag covers the version byte: a version 1 ciphertext relabelled
    // with the other version is still refused.
    const relabelled = Buffer.from(vector.ciphertext, 'base64url')
    relabelled[0] = TEST_VERSION
    await expect(
      keys.localDecrypt(relabelled.toString('base64url'), vector.aad),
    ).rejects.toBeInstanceOf(DecryptionError)
    // And localEncrypt still writes the current format.
    const fresh = Buffer.from(await keys.localEncrypt('new data'), 'base64url')
    expect(fresh[0]).toBe(CURRENT_FORMAT.version)
    keys.dispose()
  })
})
