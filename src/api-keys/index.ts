/**
 * @module fraiseql-security/api-keys
 *
 * API keys that are safe at rest (HMAC with a KMS-wrapped pepper),
 * detectable when leaked (a checksummed, scannable format), fast to check
 * (no KMS call, at most one database read, no write per request) and
 * rotatable without downtime; with PostgreSQL and SQLite stores, Fastify
 * plugins, a GitHub secret-scanning endpoint and a hash-chained audit log.
 */

export type { ApiKeyAdminRoutesOptions } from './admin.js'
export { ApiKeyAdminRoutesOptionsSchema, apiKeyAdminRoutes } from './admin.js'
export type {
  AuditAnchor,
  AuditChainFailure,
  AuditChainKey,
  AuditChainReport,
  AuditCheckpoint,
  AuditDetail,
  AuditEventInput,
  AuditEventType,
  AuditRecord,
} from './audit-chain.js'
export { auditHash, GENESIS_HASH, verifyAuditRecords } from './audit-chain.js'
export { verifyAuditChain } from './audit-log.js'
export type { ApiKeyRejectionReason } from './errors.js'
export {
  ApiKeyAuditCheckpointError,
  ApiKeyConflictError,
  ApiKeyExpiredError,
  ApiKeyIpNotAllowedError,
  ApiKeyMalformedError,
  ApiKeyNotFoundError,
  ApiKeyPepperInUseError,
  ApiKeyRejectedError,
  ApiKeyRequestError,
  ApiKeyRevokedError,
  ApiKeyStoreError,
  ApiKeyTamperedError,
  ApiKeyUnknownError,
  LeakSignatureError,
} from './errors.js'
export type {
  ApiKeyEventListener,
  ApiKeyEventName,
  ApiKeyEvents,
  ApiKeyLifecycleEvent,
} from './events.js'
export type { ApiKeyAuthenticatorOptions, ApiKeyAuthOptions } from './fastify.js'
export {
  ApiKeyAuthOptionsSchema,
  apiKeyAuth,
  apiKeyAuthenticator,
  apiKeyRateLimitKey,
  extractApiKey,
  hasPermission,
  requirePermission,
} from './fastify.js'
export type { ParseApiKeyOptions, ParsedApiKey } from './format.js'
export {
  API_KEY_PATTERN,
  apiKeyPattern,
  DEFAULT_PREFIXES,
  formatApiKey,
  MAX_API_KEY_LENGTH,
  parseApiKey,
} from './format.js'
export type {
  SecretScanningKeySource,
  SecretScanningOptions,
  SecretScanningPublicKey,
} from './leak.js'
export { githubSecretScanning, SecretScanningOptionsSchema } from './leak.js'
export { ApiKeyManager } from './manager.js'
export type {
  ApiKeyManagerOptions,
  CreateApiKeyInput,
  RotateApiKeyInput,
} from './manager-options.js'
export {
  ApiKeyManagerOptionsSchema,
  CreateApiKeySchema,
  RotateApiKeySchema,
} from './manager-options.js'
export type {
  ApiKeyActionContext,
  ApiKeyRecord,
  ApiKeyStatus,
  ApiKeyValidation,
  CreatedApiKey,
  LifecycleReport,
  RotatedApiKey,
  ValidateContext,
} from './manager-types.js'
export type { PostgresApiKeyStoreOptions } from './postgres.js'
export {
  API_KEY_CHANNEL,
  PostgresApiKeyStore,
  PostgresApiKeyStoreOptionsSchema,
} from './postgres.js'
export type { SqliteApiKeyStoreOptions } from './sqlite.js'
export { SqliteApiKeyStore, SqliteApiKeyStoreOptionsSchema } from './sqlite.js'
export type {
  ApiKeyChange,
  ApiKeyFlush,
  ApiKeyRow,
  ApiKeyStore,
  ListApiKeysOptions,
  PepperRow,
  RetirePepperOutcome,
  RotateOutcome,
} from './store.js'
