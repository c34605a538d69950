import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/errors.js'
import {
  AwsKmsProvider,
  GcpKmsProvider,
  KeyManager,
  kmsFromEnv,
  LocalKmsProvider,
  MemoryKeyringStore,
  VaultKmsProvider,
} from '../../src/kms/index.js'
import { startVaultEmulator } from '../../src/kms/testing/index.js'

const dir = mkdtempSync(join(tmpdir(), 'fsl-kms-env-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function configError(f: () => unknown): ConfigError {
  try {
    f()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('kmsFromEnv', () => {
  it('defaults to the local provider with its key file in the data directory', async () => {
    const kms = kmsFromEnv({}, dir)
    expect(kms.provider).toBeInstanceOf(LocalKmsProvider)
    expect(kms.keyManagerOptions).toMatchObject({ defaultProvider: 'local', defaultKeyId: 'app' })
    const keys = new KeyManager({ ...kms.keyManagerOptions, keyring: new MemoryKeyringStore() })
    await keys.initialize()
    expect(await keys.localDecrypt(await keys.localEncrypt('x'))).toBe('x')
    await keys.dispose()
  })

  it('builds each provider from its variables', () => {
    expect(
      kmsFromEnv({
        FRAISEQL_KMS_PROVIDER: 'vault',
        VAULT_ADDR: 'http://127.0.0.1:8200',
        VAULT_TOKEN: 't',
      }).provider,
    ).toBeInstanceOf(VaultKmsProvider)
    const aws = kmsFromEnv({
      FRAISEQL_KMS_PROVIDER: 'aws',
      AWS_REGION: 'eu-west-1',
      FRAISEQL_KMS_KEY_ID: 'alias/app',
    })
    expect(aws.provider).toBeInstanceOf(AwsKmsProvider)
    expect(aws.keyId).toBe('alias/app')
    expect(
      kmsFromEnv({
        FRAISEQL_KMS_PROVIDER: 'gcp',
        FRAISEQL_GCP_PROJECT: 'my-project',
        FRAISEQL_GCP_LOCATION: 'global',
        FRAISEQL_GCP_KEY_RING: 'ring',
      }).provider,
    ).toBeInstanceOf(GcpKmsProvider)
  })

  it('names the missing variable, never a value', () => {
    const err = configError(() =>
      kmsFromEnv({ FRAISEQL_KMS_PROVIDER: 'vault', VAULT_TOKEN: 's3cr3t-token' }),
    )
    expect(err.issues[0]?.field).toBe('VAULT_ADDR')
    expect(err.message).not.toContain('s3cr3t-token')
    expect(
      configError(() => kmsFromEnv({ FRAISEQL_KMS_PROVIDER: 'aws', AWS_REGION: 'eu-west-1' }))
        .issues[0]?.field,
    ).toBe('FRAISEQL_KMS_KEY_ID')
    expect(configError(() => kmsFromEnv({ FRAISEQL_KMS_PROVIDER: 'azure' })).issues[0]?.field).toBe(
      'FRAISEQL_KMS_PROVIDER',
    )
  })

  it('reaches a real Vault API (the emulator) with only configuration', async () => {
    const vault = await startVaultEmulator()
    try {
      vault.createKey('app')
      const kms = kmsFromEnv({
        FRAISEQL_KMS_PROVIDER: 'vault',
        VAULT_ADDR: vault.address,
        VAULT_TOKEN: vault.token,
      })
      const keys = new KeyManager({ ...kms.keyManagerOptions, keyring: new MemoryKeyringStore() })
      await keys.initialize()
      expect(vault.calls.count('encrypt') + vault.calls.count('decrypt')).toBeGreaterThan(0)
      await keys.dispose()
    } finally {
      await vault.close()
    }
  })
})
