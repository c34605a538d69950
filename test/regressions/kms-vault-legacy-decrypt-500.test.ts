/**
 * Regression (issue 15, item 4): Vault 1.4 to 1.6 answer a decrypt with a
 * tampered ciphertext or the wrong context with HTTP 500 "cipher: message
 * authentication failed" (hashicorp/vault#10842). The provider took that for
 * an outage: four attempts, then `ProviderConnectionError`. It is a
 * `DecryptionError`, after one request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DecryptionError, EncryptedData, VaultKmsProvider } from '../../src/kms/index.js'
import { startVaultEmulator, type VaultEmulator } from '../../src/kms/testing/vault-emulator.js'
import { rejection } from '../helpers/rejection.js'

const FAST = { timeoutMs: 1500, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const

describe('Vault 1.4-1.6: a failed decrypt answered with 500', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    vault = await startVaultEmulator({ legacyDecryptErrors: true, version: '1.6.0' })
    vault.createKey('orders')
    vault.createKey('derived', { derived: true })
  })
  afterAll(async () => {
    await vault.close()
  })

  for (const keyId of ['orders', 'derived']) {
    it(`wrong context on a ${keyId === 'derived' ? 'derived' : 'non-derived'} key: DecryptionError, one decrypt request`, async () => {
      const kms = new VaultKmsProvider({ address: vault.address, token: vault.token, ...FAST })
      const sealed = await kms.encrypt('secret', keyId, { tenant: 'acme' })
      vault.calls.reset()
      const err = await rejection(kms.decrypt(sealed, { tenant: 'evil' }))
      expect(err).toBeInstanceOf(DecryptionError)
      expect(err).toMatchObject({ code: 'ERR_KMS_DECRYPTION_FAILED' })
      expect((err as Error).cause).toBeUndefined()
      expect(vault.calls.count('decrypt')).toBe(1)
    })
  }

  it('tampered ciphertext: DecryptionError, one decrypt request', async () => {
    const kms = new VaultKmsProvider({ address: vault.address, token: vault.token, ...FAST })
    const sealed = await kms.encrypt('secret', 'orders')
    const text = Buffer.from(sealed.ciphertext).toString()
    const body = Buffer.from(text.slice('vault:v1:'.length), 'base64')
    body[body.length - 1] = body[body.length - 1]! ^ 1
    const tampered = new EncryptedData({
      ciphertext: Buffer.from(`vault:v1:${body.toString('base64')}`),
      keyReference: sealed.keyReference,
      algorithm: sealed.algorithm,
      encryptedAt: sealed.encryptedAt,
    })
    vault.calls.reset()
    expect(await rejection(kms.decrypt(tampered))).toBeInstanceOf(DecryptionError)
    expect(vault.calls.count('decrypt')).toBe(1)
  })

  it('a real 500 (storage failure) on decrypt is still an outage, retried', async () => {
    const kms = new VaultKmsProvider({ address: vault.address, token: vault.token, ...FAST })
    const sealed = await kms.encrypt('secret', 'orders')
    vault.calls.reset()
    vault.faults.failNext(1, 'unavailable', { operation: 'decrypt' })
    expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('secret')
    expect(vault.calls.count('decrypt')).toBe(2)
  })
})
