/**
 * What the AWS suites share: fast retry settings, temporary credentials
 * (so the session token is checked too), and the contract's subject on the
 * emulator, whichever way the provider reaches it.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { AwsKmsProvider } from '../../src/kms/index.js'
import type { AwsEmulatorCredentials } from '../../src/kms/testing/aws/sigv4.js'
import { type AwsKmsEmulator, startAwsKmsEmulator } from '../../src/kms/testing/aws-emulator.js'
import { recordingSleep } from '../../src/kms/testing/index.js'

export const FAST = { timeoutMs: 1500, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const

/** Temporary credentials, so the session token is checked too. */
export function temporaryCredentials(): Required<AwsEmulatorCredentials> {
  return {
    accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: `FwoGZXIvYXdzE${randomBytes(48).toString('base64')}`,
  }
}

/**
 * The contract's subject: an emulator with `alias/contract`, and the
 * provider `connect` builds for it; `release` runs after the provider closes.
 */
export async function awsContractSubject(
  connect: (
    emulator: AwsKmsEmulator,
    credentials: Required<AwsEmulatorCredentials>,
    sleep: (ms: number) => Promise<void>,
  ) => { provider: AwsKmsProvider; release?: () => void },
) {
  const credentials = temporaryCredentials()
  const emulator = await startAwsKmsEmulator({ credentials })
  const { arn } = emulator.createKey({ description: 'contract' })
  emulator.createAlias('alias/contract', arn)
  const { sleeps, sleep } = recordingSleep()
  const { provider, release } = connect(emulator, credentials, sleep)
  return {
    provider,
    keyId: 'alias/contract',
    missingKeyId: randomUUID(),
    emulator,
    secrets: [credentials.secretAccessKey, credentials.sessionToken],
    operations: {
      encrypt: 'Encrypt',
      decrypt: 'Decrypt',
      rotate: 'RotateKeyOnDemand',
      describe: 'DescribeKey',
    },
    sleeps,
    async close() {
      await provider.close()
      release?.()
      await emulator.close()
    },
  }
}
