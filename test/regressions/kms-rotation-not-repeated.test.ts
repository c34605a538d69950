/**
 * Regression (issue 15, item 3): rotation is not idempotent. When the
 * connection dropped after the service had rotated, the base provider
 * retried `rotateKey` and rotated again: two new Vault versions, two AWS
 * `RotateKeyOnDemand` calls (a per-key quota), two Cloud KMS versions. Now a
 * retry first reads the key's state and only rotates if the earlier attempt
 * did not.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { AwsKmsProvider, GcpKmsProvider, VaultKmsProvider } from '../../src/kms/index.js'
import { startAwsKmsEmulator } from '../../src/kms/testing/aws-emulator.js'
import { startGcpKmsEmulator } from '../../src/kms/testing/gcp-emulator.js'
import { startVaultEmulator } from '../../src/kms/testing/vault-emulator.js'

const FAST = { timeoutMs: 3000, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const
const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c()
})

async function aws() {
  const emu = await startAwsKmsEmulator()
  const kms = new AwsKmsProvider({
    region: emu.region,
    endpoint: emu.endpoint,
    credentials: emu.credentials,
    ...FAST,
  })
  cleanup.push(async () => {
    await kms.close()
    await emu.close()
  })
  return { emu, kms }
}

async function gcp() {
  const e = await startGcpKmsEmulator({ keys: ['app'] })
  const kms = new GcpKmsProvider({ ...e.providerOptions(), ...FAST })
  cleanup.push(async () => {
    await kms.close()
    await e.close()
  })
  return { e, kms }
}

describe('rotateKey after the connection dropped once the service had rotated', () => {
  it('Vault: one new version', async () => {
    const vault = await startVaultEmulator()
    cleanup.push(() => vault.close())
    vault.createKey('orders')
    const kms = new VaultKmsProvider({ address: vault.address, token: vault.token, ...FAST })
    await kms.getKeyInfo('orders')
    vault.calls.reset()
    vault.faults.failNext(1, 'reset-after-commit', { operation: 'rotate' })
    const info = await kms.rotateKey('orders')
    expect(vault.describeKey('orders')?.latest_version).toBe(2)
    expect(info.currentVersion).toBe(2)
    expect(vault.calls.count('rotate')).toBe(1)
  })

  it('AWS: one RotateKeyOnDemand, by key ARN and by alias', async () => {
    const { emu, kms } = await aws()
    const { arn } = emu.createKey()
    emu.createAlias('alias/rotated', arn)
    for (const keyId of [arn, 'alias/rotated']) {
      const before = emu.rotations(arn).length
      emu.calls.reset()
      emu.faults.failNext(1, 'reset-after-commit', { operation: 'RotateKeyOnDemand' })
      const info = await kms.rotateKey(keyId)
      expect(info.reference.keyId).toBe(arn)
      expect(emu.rotations(arn).length - before).toBe(1)
      expect(emu.calls.count('RotateKeyOnDemand')).toBe(1)
    }
  })

  it('AWS: a rotation the service never received is made once the connection is back', async () => {
    const { emu, kms } = await aws()
    const { arn } = emu.createKey()
    await kms.getKeyInfo(arn)
    emu.calls.reset()
    emu.faults.failNext(1, 'unavailable', { operation: 'RotateKeyOnDemand' })
    await kms.rotateKey(arn)
    expect(emu.rotations(arn)).toHaveLength(1)
    expect(emu.calls.count('RotateKeyOnDemand')).toBe(2)
  })

  it('Cloud KMS: CreateCryptoKeyVersion done but unanswered: that version becomes primary, no second one', async () => {
    const { e, kms } = await gcp()
    const name = e.cryptoKeyName('app')
    e.faults.failNext(1, 'reset-after-commit', { operation: 'CreateCryptoKeyVersion' })
    const info = await kms.rotateKey('app')
    expect(e.calls.count('CreateCryptoKeyVersion')).toBe(1)
    expect(info.currentVersion).toBe(2)
    expect(e.primaryVersion(name)).toBe(2)
  })

  it('Cloud KMS: the primary switch unanswered: the version made is kept, no second one', async () => {
    const { e, kms } = await gcp()
    const name = e.cryptoKeyName('app')
    e.faults.failNext(1, 'unavailable', { operation: 'UpdateCryptoKeyPrimaryVersion' })
    const info = await kms.rotateKey('app')
    expect(e.calls.count('CreateCryptoKeyVersion')).toBe(1)
    expect(info.currentVersion).toBe(2)
    expect(e.primaryVersion(name)).toBe(2)
  })
})
