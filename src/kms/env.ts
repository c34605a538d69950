/**
 * KMS selection from environment variables, so that moving from the local
 * development provider to Vault, AWS KMS or Cloud KMS is configuration, not
 * code. The example server and the CLI both use it; so can an application.
 *
 * | variable | meaning |
 * | --- | --- |
 * | `FRAISEQL_KMS_PROVIDER` | `local` (default), `vault`, `aws` or `gcp` |
 * | `FRAISEQL_KMS_KEY_ID` | the master key: Vault key name, AWS key id/ARN/alias, Cloud KMS key id (default `app`; AWS has no default) |
 * | `FRAISEQL_LOCAL_KEY_FILE` | local: the master-key file (default `<dataDir>/master-keys.json`, mode 0600) |
 * | `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `FRAISEQL_VAULT_MOUNT` | vault |
 * | `AWS_REGION` (+ the AWS SDK's default credential chain), `FRAISEQL_AWS_ENDPOINT` | aws |
 * | `FRAISEQL_GCP_PROJECT`, `FRAISEQL_GCP_LOCATION`, `FRAISEQL_GCP_KEY_RING` (+ Application Default Credentials) | gcp |
 */
import { join } from 'node:path'
import { ConfigError } from '../errors.js'
import type { BaseKmsProvider } from './base-provider.js'
import { AwsKmsProvider } from './providers/aws.js'
import { GcpKmsProvider } from './providers/gcp.js'
import { LocalKmsProvider } from './providers/local.js'
import { VaultKmsProvider } from './providers/vault.js'

export type KmsProviderName = 'local' | 'vault' | 'aws' | 'gcp'

/** What `new KeyManager(...)` needs to reach the selected KMS. */
export interface KmsFromEnv {
  readonly providerName: KmsProviderName
  readonly provider: BaseKmsProvider
  readonly keyId: string
  /** `{ providers, defaultProvider, defaultKeyId }`, to spread into `KeyManager` options. */
  readonly keyManagerOptions: {
    providers: Record<string, BaseKmsProvider>
    defaultProvider: string
    defaultKeyId: string
  }
}

type Env = Readonly<Record<string, string | undefined>>

function required(env: Env, name: string, provider: string): string {
  const v = env[name]
  if (v === undefined || v === '') {
    throw new ConfigError('kmsFromEnv', [
      { path: [name], message: `is required when FRAISEQL_KMS_PROVIDER=${provider}` },
    ])
  }
  return v
}

/**
 * The KMS the environment selects. `dataDir` holds the local provider's
 * master-key file when `FRAISEQL_LOCAL_KEY_FILE` is not set. Throws
 * `ERR_CONFIG_INVALID` naming the missing or bad variable (never its value).
 */
export function kmsFromEnv(env: Env = process.env, dataDir = '.data'): KmsFromEnv {
  const name = (env.FRAISEQL_KMS_PROVIDER ?? 'local') as KmsProviderName
  let provider: BaseKmsProvider
  let keyId = env.FRAISEQL_KMS_KEY_ID ?? 'app'
  switch (name) {
    case 'local':
      provider = new LocalKmsProvider({
        keyFile: env.FRAISEQL_LOCAL_KEY_FILE ?? join(dataDir, 'master-keys.json'),
      })
      break
    case 'vault':
      provider = new VaultKmsProvider({
        address: required(env, 'VAULT_ADDR', name),
        token: required(env, 'VAULT_TOKEN', name),
        ...(env.VAULT_NAMESPACE === undefined ? {} : { namespace: env.VAULT_NAMESPACE }),
        ...(env.FRAISEQL_VAULT_MOUNT === undefined ? {} : { mount: env.FRAISEQL_VAULT_MOUNT }),
      })
      break
    case 'aws':
      keyId = required(env, 'FRAISEQL_KMS_KEY_ID', name)
      provider = new AwsKmsProvider({
        region: required(env, 'AWS_REGION', name),
        ...(env.FRAISEQL_AWS_ENDPOINT === undefined ? {} : { endpoint: env.FRAISEQL_AWS_ENDPOINT }),
      })
      break
    case 'gcp':
      provider = new GcpKmsProvider({
        projectId: required(env, 'FRAISEQL_GCP_PROJECT', name),
        locationId: required(env, 'FRAISEQL_GCP_LOCATION', name),
        keyRingId: required(env, 'FRAISEQL_GCP_KEY_RING', name),
      })
      break
    default:
      throw new ConfigError('kmsFromEnv', [
        { path: ['FRAISEQL_KMS_PROVIDER'], message: 'must be one of local, vault, aws, gcp' },
      ])
  }
  return {
    providerName: name,
    provider,
    keyId,
    keyManagerOptions: {
      providers: { [name]: provider },
      defaultProvider: name,
      defaultKeyId: keyId,
    },
  }
}
