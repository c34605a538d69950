/**
 * VaultKmsProvider against the deployments real Vault users run: a standby
 * that redirects to the active node, a listener that requires
 * `X-Vault-Request`, and tokens holding only the least-privilege policy
 * docs/kms.md gives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VaultKmsProvider } from '../../src/kms/index.js'
import type { VaultPolicy } from '../../src/kms/testing/vault/policy.js'
import { startVaultEmulator, type VaultEmulator } from '../../src/kms/testing/vault-emulator.js'
import { rejection } from '../helpers/rejection.js'
import { makePki } from '../helpers/tls.js'
import { FAST } from './vault-harness.js'

describe('VaultKmsProvider and a standby', () => {
  let active: VaultEmulator
  let standby: VaultEmulator
  beforeAll(async () => {
    active = await startVaultEmulator()
    active.createKey('orders')
    standby = await startVaultEmulator({ token: active.token })
    standby.setStandby(active.address)
  })
  afterAll(async () => {
    await standby.close()
    await active.close()
  })

  it('follows the 307 to the active node once, with method, body and token', async () => {
    const kms = new VaultKmsProvider({ address: standby.address, token: active.token, ...FAST })
    const sealed = await kms.encrypt('via the standby', 'orders', { tenant: 'acme' })
    expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('via the standby')
    expect(standby.calls.count('encrypt')).toBe(1)
    expect(active.calls.count('encrypt')).toBe(1)
    expect(active.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: '/v1/transit/decrypt/orders',
    })
    expect(active.requests.at(-1)?.fields).toContain('ciphertext')
    await kms.close()
  })

  it('a second redirect in a row (standby to standby, mid-election) is an outage, retried, not followed', async () => {
    const other = await startVaultEmulator({ token: active.token })
    other.setStandby(standby.address)
    try {
      const kms = new VaultKmsProvider({
        address: other.address,
        token: active.token,
        ...FAST,
        maxAttempts: 2,
      })
      const err = await rejection(kms.getKeyInfo('orders'))
      expect(err).toMatchObject({
        code: 'ERR_KMS_PROVIDER_UNAVAILABLE',
        reason: 'unavailable',
        cause: { service: 'vault', code: 'redirect_loop' },
      })
      expect(other.calls.count('readKey')).toBe(2)
    } finally {
      await other.close()
    }
  })

  it('refuses a redirect from https to http: the token would travel in the clear', async () => {
    const pki = makePki()
    const tls = await startVaultEmulator({
      token: active.token,
      tls: { cert: pki.serverCert, key: pki.serverKey },
    })
    tls.setStandby(active.address) // http://
    try {
      const kms = new VaultKmsProvider({
        address: tls.address,
        token: active.token,
        caCert: pki.ca,
        ...FAST,
      })
      const before = active.calls.count()
      const err = await rejection(kms.encrypt('x', 'orders'))
      expect(err).toMatchObject({
        code: 'ERR_KMS_MISCONFIGURED',
        retryable: false,
        cause: { service: 'vault', code: 'redirect_downgrade' },
      })
      expect(tls.calls.count()).toBe(1) // the key read that encrypt starts with, not retried
      expect(active.calls.count()).toBe(before)
    } finally {
      await tls.close()
    }
  })
})

/** docs/kms.md's least-privilege policy, for the mount `transit` and the key `orders`. */
const LEAST_PRIVILEGE: VaultPolicy = {
  'transit/encrypt/orders': ['update'],
  'transit/decrypt/orders': ['update'],
  'transit/datakey/plaintext/orders': ['update'],
  'transit/keys/orders': ['read'],
  'transit/keys/orders/rotate': ['update'],
}

describe('VaultKmsProvider with the least-privilege policy of docs/kms.md', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    vault = await startVaultEmulator({ requireRequestHeader: true })
    vault.createKey('orders')
  })
  afterAll(async () => {
    await vault.close()
  })

  it('every operation works with exactly those paths', async () => {
    const kms = new VaultKmsProvider({
      address: vault.address,
      token: vault.createToken(LEAST_PRIVILEGE),
      ...FAST,
    })
    const sealed = await kms.encrypt('least privilege', 'orders', { tenant: 'acme' })
    expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('least privilege')
    for (const context of [{}, { tenant: 'acme' }]) {
      const pair = await kms.generateDataKey('orders', context)
      expect(Buffer.from(await kms.decrypt(pair.toEncryptedData()))).toEqual(
        Buffer.from(pair.plaintextKey),
      )
      pair.dispose()
    }
    await kms.getKeyInfo('orders')
    await kms.getRotationPolicy('orders')
    expect((await kms.rotateKey('orders')).currentVersion).toBe(2)
  })

  it('without rotate, rotateKey is KmsAccessDeniedError and nothing else changes', async () => {
    const { 'transit/keys/orders/rotate': _, ...noRotate } = LEAST_PRIVILEGE
    const kms = new VaultKmsProvider({
      address: vault.address,
      token: vault.createToken(noRotate),
      ...FAST,
    })
    const before = vault.describeKey('orders')?.latest_version
    expect(await rejection(kms.rotateKey('orders'))).toMatchObject({
      code: 'ERR_KMS_ACCESS_DENIED',
    })
    expect(vault.describeKey('orders')?.latest_version).toBe(before)
  })

  it('with update only on encrypt/ and decrypt/, the key metadata read is denied: KmsAccessDeniedError, not an outage', async () => {
    const kms = new VaultKmsProvider({
      address: vault.address,
      token: vault.createToken({
        'transit/encrypt/*': ['update'],
        'transit/decrypt/*': ['update'],
      }),
      ...FAST,
    })
    vault.calls.reset()
    expect(await rejection(kms.encrypt('x', 'orders'))).toMatchObject({
      code: 'ERR_KMS_ACCESS_DENIED',
    })
    expect(vault.calls.count()).toBe(1)
  })
})
