/**
 * Regression: `localDecrypt` decoded text with a `TextDecoder` left at its
 * default, which strips a leading byte-order mark: a string that began with
 * U+FEFF came back without it.
 */
import { randomBytes } from 'node:crypto'
import { expect, it } from 'vitest'
import { KeyManager, LocalKmsProvider, MemoryKeyringStore } from '../../src/kms/index.js'

it('a string that starts with U+FEFF comes back from localDecrypt with it', async () => {
  const quiet = { warn: () => {}, error: () => {} }
  const km = new KeyManager({
    providers: { local: new LocalKmsProvider({ keys: { app: randomBytes(32) }, logger: quiet }) },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    keyring: new MemoryKeyringStore(),
    logger: quiet,
  })
  await km.initialize()
  for (const text of ['\uFEFF', '\uFEFFabc', '\uFEFF\uFEFFx']) {
    expect(await km.localDecrypt(await km.localEncrypt(text))).toBe(text)
  }
})
