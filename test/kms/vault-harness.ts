/**
 * What the Vault suites share: fast retry settings, and the contract's
 * subject on the emulator, whichever way the provider reaches it (its own
 * transport, or a node-vault client the user built).
 */
import type { VaultKmsProvider } from '../../src/kms/index.js'
import { recordingSleep } from '../../src/kms/testing/index.js'
import {
  startVaultEmulator,
  type VaultEmulator,
  type VaultEmulatorOptions,
} from '../../src/kms/testing/vault-emulator.js'

export const FAST = { timeoutMs: 1500, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const

/**
 * The contract's subject: an emulator started with `options` (the key
 * `orders` is created on first encrypt), and the provider `connect` builds
 * for it, given the recording `sleep` the fault tests read.
 */
export async function vaultContractSubject(
  connect: (vault: VaultEmulator, sleep: (ms: number) => Promise<void>) => VaultKmsProvider,
  options?: VaultEmulatorOptions,
) {
  const vault = await startVaultEmulator(options)
  const { sleeps, sleep } = recordingSleep()
  const provider = connect(vault, sleep)
  return {
    provider,
    keyId: 'orders',
    missingKeyId: 'never-created',
    emulator: vault,
    secrets: [vault.token],
    operations: { encrypt: 'encrypt', decrypt: 'decrypt', rotate: 'rotate', describe: 'readKey' },
    sleeps,
    async close() {
      await provider.close()
      await vault.close()
    },
  }
}
