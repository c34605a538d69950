/**
 * `KeyManager` over each KMS provider, each against its wire-level emulator
 * (Vault's HTTP API, AWS KMS JSON 1.1, Cloud KMS gRPC) on 127.0.0.1, plus the
 * local provider. Swapping providers is configuration: the calls and the
 * ciphertext format are the same.
 *
 *   npx tsx examples/kms-providers.ts
 */
import { randomBytes } from 'node:crypto'
import {
  AwsKmsProvider,
  type BaseKmsProvider,
  GcpKmsProvider,
  KeyManager,
  LocalKmsProvider,
  MemoryKeyringStore,
  VaultKmsProvider,
} from 'fraiseql-security/kms'
import {
  startAwsKmsEmulator,
  startGcpKmsEmulator,
  startVaultEmulator,
} from 'fraiseql-security/kms/testing'

/** A provider, the key to use, and what to shut down afterwards. */
interface Setup {
  provider: BaseKmsProvider
  keyId: string
  close(): Promise<void>
}

async function vault(): Promise<Setup> {
  const emulator = await startVaultEmulator()
  emulator.createKey('app')
  const provider = new VaultKmsProvider({ address: emulator.address, token: emulator.token })
  return { provider, keyId: 'app', close: () => emulator.close() }
}

async function aws(): Promise<Setup> {
  const credentials = {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  }
  const emulator = await startAwsKmsEmulator({ credentials })
  emulator.createAlias('alias/app', emulator.createKey({ description: 'example' }).arn)
  const provider = new AwsKmsProvider({
    region: emulator.region,
    endpoint: emulator.endpoint,
    credentials,
  })
  return {
    provider,
    keyId: 'alias/app',
    close: async () => {
      await provider.close()
      await emulator.close()
    },
  }
}

async function gcp(): Promise<Setup> {
  const emulator = await startGcpKmsEmulator({ keys: ['app'] })
  const provider = new GcpKmsProvider(emulator.providerOptions())
  return {
    provider,
    keyId: 'app',
    close: async () => {
      await provider.close()
      await emulator.close()
    },
  }
}

async function local(): Promise<Setup> {
  return {
    provider: new LocalKmsProvider({ keys: { app: randomBytes(32) } }),
    keyId: 'app',
    close: async () => {},
  }
}

for (const [name, setup] of Object.entries({ local, vault, aws, gcp })) {
  const { provider, keyId, close } = await setup()
  const keys = new KeyManager({
    providers: { [name]: provider },
    defaultProvider: name,
    defaultKeyId: keyId,
    // A persistent store (SqliteKeyringStore, PostgresKeyringStore) in a real app.
    keyring: new MemoryKeyringStore(),
  })
  await keys.initialize() // the one KMS call: wrap (or unwrap) the data key
  const sealed = await keys.localEncrypt('4111-1111-1111-1111', 'customer:42')
  const opened = await keys.localDecrypt(sealed, 'customer:42')
  console.log(
    `${name.padEnd(5)} ciphertext ${sealed.slice(0, 24)}… → ${opened === '4111-1111-1111-1111' ? 'round trip ok' : 'MISMATCH'}`,
  )
  await keys.dispose()
  await close()
}
