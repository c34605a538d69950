/**
 * Each KMS provider wired to its emulator (and the local provider), for
 * suites that must run on all four: the KeyManager's, the API keys'.
 */
import { randomBytes } from 'node:crypto'
import {
  AwsKmsProvider,
  type BaseKmsProvider,
  GcpKmsProvider,
  LocalKmsProvider,
  VaultKmsProvider,
} from '../../src/kms/index.js'
import { startAwsKmsEmulator } from '../../src/kms/testing/aws-emulator.js'
import { startGcpKmsEmulator } from '../../src/kms/testing/gcp-emulator.js'
import type { KmsEmulator } from '../../src/kms/testing/index.js'
import { startVaultEmulator } from '../../src/kms/testing/vault-emulator.js'

export const FAST = { timeoutMs: 1500, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const

/**
 * The suites on all four providers count KMS calls and never wait on a
 * timeout: a call cut at 1.5 s on a loaded machine (the emulators share the
 * test's CPU) was retried or failed as ERR_KMS_PROVIDER_UNAVAILABLE, which
 * said nothing about the code under test. The bound stays, against a hang.
 */
const PATIENT = { ...FAST, timeoutMs: 15_000 } as const

export interface EmulatedProvider {
  readonly name: 'local' | 'vault' | 'aws' | 'gcp'
  readonly provider: BaseKmsProvider
  readonly keyId: string
  /** Absent for the local provider (no network). */
  readonly emulator?: KmsEmulator
  close(): Promise<void>
}

export type ProviderName = EmulatedProvider['name']
export const PROVIDER_NAMES: readonly ProviderName[] = ['local', 'vault', 'aws', 'gcp']

export async function emulatedProvider(name: ProviderName): Promise<EmulatedProvider> {
  switch (name) {
    case 'local':
      return {
        name,
        provider: new LocalKmsProvider({ ...PATIENT, keys: { app: randomBytes(32) } }),
        keyId: 'app',
        close: async () => {},
      }
    case 'vault': {
      const emulator = await startVaultEmulator()
      emulator.createKey('app')
      const provider = new VaultKmsProvider({
        address: emulator.address,
        token: emulator.token,
        ...PATIENT,
      })
      return { name, provider, keyId: 'app', emulator, close: () => emulator.close() }
    }
    case 'aws': {
      const credentials = {
        accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
      }
      const emulator = await startAwsKmsEmulator({ credentials })
      const { arn } = emulator.createKey({ description: 'key-manager' })
      emulator.createAlias('alias/app', arn)
      const provider = new AwsKmsProvider({
        region: emulator.region,
        endpoint: emulator.endpoint,
        credentials,
        ...PATIENT,
      })
      return {
        name,
        provider,
        keyId: 'alias/app',
        emulator,
        close: async () => {
          await provider.close()
          await emulator.close()
        },
      }
    }
    case 'gcp': {
      const emulator = await startGcpKmsEmulator({ keys: ['app'] })
      const provider = new GcpKmsProvider({ ...emulator.providerOptions(), ...PATIENT })
      return {
        name,
        provider,
        keyId: 'app',
        emulator,
        close: async () => {
          await provider.close()
          await emulator.close()
        },
      }
    }
  }
}
