/**
 * @module fraiseql-security/kms
 *
 * One API over HashiCorp Vault Transit, AWS KMS, Google Cloud KMS and a local
 * development provider: typed models, a shared error taxonomy, and
 * `BaseKmsProvider` with timeouts, bounded retries and tracing.
 */

export { MissingDependencyError } from '../internal/optional-import.js'
export type {
  BaseKmsProviderOptions,
  CallOptions,
  DataKeyResult,
  EncryptResult,
  KeyDescription,
  KmsOperation,
  RotationState,
} from './base-provider.js'
export { BaseKmsProvider, BaseKmsProviderOptionsSchema, baseOptionsOf } from './base-provider.js'
export type { KmsFromEnv, KmsProviderName } from './env.js'
export { kmsFromEnv } from './env.js'
export type { ConnectionFailure, KmsErrorOptions, SanitizedCause } from './errors.js'
export {
  ContextRequiredError,
  DecryptionError,
  EncryptionError,
  InsecureKeyFileError,
  InvalidEncryptedDataError,
  InvalidKeyReferenceError,
  KeyDisabledError,
  KeyNotFoundError,
  KeyRotationError,
  KmsAccessDeniedError,
  KmsConfigurationError,
  KmsError,
  ProviderConnectionError,
  ReservedContextError,
  UnknownProviderError,
} from './errors.js'
export type { FieldValue, FieldValueType, JsonValue } from './key-manager/field.js'
export { MAX_FIELD_DEPTH, UnsupportedFieldValueError } from './key-manager/field.js'
export type { DataKeyInfo, EncryptedField, KeyManagerOptions } from './key-manager/key-manager.js'
export {
  AadRequiredError,
  DataKeyExhaustedError,
  KeyManager,
  KeyManagerLimitsSchema,
  KeyManagerNotInitializedError,
  KeyManagerOptionsSchema,
  RESERVED_CONTEXT_PREFIX,
} from './key-manager/key-manager.js'
export type { FileKeyringStoreOptions } from './keyring/file.js'
export { FileKeyringStore, FileKeyringStoreOptionsSchema } from './keyring/file.js'
export { MemoryKeyringStore } from './keyring/memory.js'
export type { PostgresKeyringStoreOptions } from './keyring/postgres.js'
export { PostgresKeyringStore, PostgresKeyringStoreOptionsSchema } from './keyring/postgres.js'
export type { SqliteKeyringStoreOptions } from './keyring/sqlite.js'
export { SqliteKeyringStore, SqliteKeyringStoreOptionsSchema } from './keyring/sqlite.js'
export type {
  DataKeyStatus,
  KeyringEntry,
  KeyringStore,
  NewKeyringEntry,
  ReserveUsesOptions,
} from './keyring/store.js'
export {
  KeyringRollbackError,
  KeyringStoreError,
  KeyringTamperedError,
} from './keyring/store.js'
export type {
  EncryptedDataInit,
  EncryptedDataJson,
  EncryptionContext,
  KeyInfo,
  KeyPurpose,
  KeyReferenceInit,
  KeyState,
  RotationPolicy,
} from './models.js'
export { DataKeyPair, EncryptedData, KEY_PURPOSES, KEY_STATES, KeyReference } from './models.js'
export type {
  AwsCredentials,
  AwsCredentialsProvider,
  AwsKmsClient,
  AwsKmsCommand,
  AwsKmsProviderOptions,
} from './providers/aws.js'
export { AWS_ALGORITHM, AwsKmsProvider, AwsKmsProviderOptionsSchema } from './providers/aws.js'
export type {
  GcpBytes,
  GcpCallOptions,
  GcpCryptoKey,
  GcpCryptoKeyVersion,
  GcpInt64,
  GcpInt64Value,
  GcpKmsClient,
  GcpSecondsAndNanos,
} from './providers/gcp/client.js'
export type { GcpKmsProviderOptions } from './providers/gcp/options.js'
export { GcpKmsProviderOptionsSchema } from './providers/gcp/options.js'
export { GCP_ALGORITHM, GcpKmsProvider } from './providers/gcp.js'
export type { LocalKmsProviderOptions } from './providers/local.js'
export {
  LOCAL_ALGORITHM,
  LocalKmsProvider,
  LocalKmsProviderOptionsSchema,
} from './providers/local.js'
export type { VaultKmsClient, VaultKmsProviderOptions } from './providers/vault.js'
export {
  VAULT_KEY_NAME,
  VaultKmsProvider,
  VaultKmsProviderOptionsSchema,
} from './providers/vault.js'
