/**
 * `AnySecurityError`: every concrete error class the package throws, each
 * tied to the code its instances carry, so `switch (err.code)` narrows to
 * the class (jose's `errors.ts` does the same with its `code` literals).
 *
 * The imports are type-only: they vanish from the JavaScript, so the root
 * entry still loads no capability, and the capabilities keep depending on
 * `errors.ts` alone at run time.
 */
import type {
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
} from './api-keys/index.js'
import type { ConfigError, SeamError, SecurityError, SecurityErrorCode } from './errors.js'
import type { GraphqlRejectedError, GraphqlRejectionCode } from './graphql/index.js'
import type {
  BodyTimeoutError,
  InvalidCompressedBodyError,
  InvalidContentLengthError,
  RateLimitExceededError,
  RateLimitStoreError,
  RateLimitUnavailableError,
  RequestTooLargeError,
  UnsupportedEncodingError,
} from './http/index.js'
import type { MissingDependencyError } from './internal/optional-import.js'
import type {
  AadRequiredError,
  ContextRequiredError,
  DataKeyExhaustedError,
  DecryptionError,
  EncryptionError,
  InsecureKeyFileError,
  InvalidEncryptedDataError,
  InvalidKeyReferenceError,
  KeyDisabledError,
  KeyManagerNotInitializedError,
  KeyNotFoundError,
  KeyRotationError,
  KeyringRollbackError,
  KeyringStoreError,
  KeyringTamperedError,
  KmsAccessDeniedError,
  KmsConfigurationError,
  KmsError,
  ProviderConnectionError,
  ReservedContextError,
  UnknownProviderError,
  UnsupportedFieldValueError,
} from './kms/index.js'
import type {
  AuthenticationRequiredError,
  BatchTooLargeError,
  ClientCertificateRequiredError,
  ForbiddenError,
  GraphqlUnguardedError,
  TlsRequiredError,
  TokenExpiredError,
  TokenNotYetValidError,
  UnknownProfileError,
} from './profiles/index.js'
import type {
  LockfileNotFoundError,
  MalformedLockfileError,
  MalformedManifestError,
  SBOMError,
  UnsupportedLockfileError,
} from './sbom/index.js'

/** Refuses a key that is not a code, or a value that is not a `SecurityError`. */
type CodeMap<T extends { [K in keyof T]: K extends SecurityErrorCode ? SecurityError : never }> = T

/**
 * The code each class's instances carry. A base class that is also thrown
 * (`KmsError`, `SBOMError`, …) is listed with its own code: its subclasses
 * carry theirs and are listed on their own.
 */
type SecurityErrorClasses = CodeMap<{
  ERR_SECURITY: SecurityError | GraphqlRejectedError
  ERR_CONFIG_INVALID: ConfigError
  ERR_DEPENDENCY_MISSING: MissingDependencyError
  ERR_SEAM_MISWIRED: SeamError
  ERR_HTTP_BAD_REQUEST: InvalidCompressedBodyError
  ERR_HTTP_INVALID_CONTENT_LENGTH: InvalidContentLengthError
  ERR_HTTP_BODY_TOO_LARGE: RequestTooLargeError
  ERR_HTTP_BODY_TIMEOUT: BodyTimeoutError
  ERR_HTTP_UNSUPPORTED_ENCODING: UnsupportedEncodingError
  ERR_HTTP_RATE_LIMITED: RateLimitExceededError
  ERR_HTTP_RATE_LIMIT_UNAVAILABLE: RateLimitUnavailableError
  ERR_RATE_LIMIT_STORE: RateLimitStoreError
  ERR_KMS_ERROR: KmsError
  ERR_KMS_MISCONFIGURED: KmsConfigurationError
  ERR_KMS_KEY_NOT_FOUND: KeyNotFoundError
  ERR_KMS_KEY_DISABLED: KeyDisabledError
  ERR_KMS_ACCESS_DENIED: KmsAccessDeniedError
  ERR_KMS_ENCRYPTION_FAILED: EncryptionError
  ERR_KMS_DECRYPTION_FAILED: DecryptionError
  ERR_KMS_ROTATION_FAILED: KeyRotationError
  ERR_KMS_PROVIDER_UNAVAILABLE: ProviderConnectionError
  ERR_KMS_INVALID_FORMAT: InvalidEncryptedDataError
  ERR_KMS_UNKNOWN_PROVIDER: UnknownProviderError
  ERR_KMS_KEY_FILE_INSECURE: InsecureKeyFileError
  ERR_KMS_INVALID_KEY_REFERENCE: InvalidKeyReferenceError
  ERR_KMS_RESERVED_CONTEXT: ReservedContextError
  ERR_KMS_CONTEXT_REQUIRED: ContextRequiredError
  ERR_KEY_MANAGER_NOT_INITIALIZED: KeyManagerNotInitializedError
  ERR_KEY_MANAGER_KEY_EXHAUSTED: DataKeyExhaustedError
  ERR_KEY_MANAGER_UNSUPPORTED_VALUE: UnsupportedFieldValueError
  ERR_KEY_MANAGER_AAD_REQUIRED: AadRequiredError
  ERR_KEYRING_STORE: KeyringStoreError
  ERR_KEYRING_TAMPERED: KeyringTamperedError
  ERR_KEYRING_ROLLBACK: KeyringRollbackError
  ERR_PROFILE_TLS_REQUIRED: TlsRequiredError
  ERR_PROFILE_CLIENT_CERT_REQUIRED: ClientCertificateRequiredError
  ERR_PROFILE_UNKNOWN: UnknownProfileError
  ERR_PROFILE_GRAPHQL_UNGUARDED: GraphqlUnguardedError
  ERR_AUTH_REQUIRED: AuthenticationRequiredError
  ERR_AUTH_TOKEN_EXPIRED: TokenExpiredError
  ERR_AUTH_TOKEN_NOT_YET_VALID: TokenNotYetValidError
  ERR_AUTH_FORBIDDEN: ForbiddenError
  ERR_API_KEY_INVALID: ApiKeyRejectedError
  ERR_API_KEY_MALFORMED: ApiKeyMalformedError
  ERR_API_KEY_UNKNOWN: ApiKeyUnknownError
  ERR_API_KEY_REVOKED: ApiKeyRevokedError
  ERR_API_KEY_EXPIRED: ApiKeyExpiredError
  ERR_API_KEY_IP_NOT_ALLOWED: ApiKeyIpNotAllowedError
  ERR_API_KEY_TAMPERED: ApiKeyTamperedError
  ERR_API_KEY_AUDIT_CHECKPOINT_INVALID: ApiKeyAuditCheckpointError
  ERR_API_KEY_PEPPER_IN_USE: ApiKeyPepperInUseError
  ERR_API_KEY_NOT_FOUND: ApiKeyNotFoundError
  ERR_API_KEY_CONFLICT: ApiKeyConflictError
  ERR_API_KEY_STORE: ApiKeyStoreError
  ERR_API_KEY_REQUEST_INVALID: ApiKeyRequestError
  ERR_API_KEY_LEAK_SIGNATURE_INVALID: LeakSignatureError
  ERR_SBOM_ERROR: SBOMError
  ERR_SBOM_LOCKFILE_NOT_FOUND: LockfileNotFoundError
  ERR_SBOM_LOCKFILE_MALFORMED: MalformedLockfileError
  ERR_SBOM_LOCKFILE_UNSUPPORTED: UnsupportedLockfileError
  ERR_SBOM_MANIFEST_MALFORMED: MalformedManifestError
  ERR_GRAPHQL_BATCH_TOO_LARGE: BatchTooLargeError
}>

/**
 * A `GraphqlRejectedError` carries its first rejection's code (a mercurius
 * hook can throw only one error for several rejections), so it joins every
 * `ERR_GRAPHQL_*` case; `ERR_GRAPHQL_BATCH_TOO_LARGE` is also
 * `BatchTooLargeError`'s, thrown by the profile's batch gate.
 */
type GraphqlRejections = {
  [K in GraphqlRejectionCode]: GraphqlRejectedError & { readonly code: K }
}[GraphqlRejectionCode]

/**
 * Every concrete error the package throws, discriminated by `code`: after
 * `err instanceof SecurityError`, `switch ((err as AnySecurityError).code)`
 * narrows each `case` to the class that carries that code. `ERR_INTERNAL`
 * has no class: it is only ever the code of a masked answer.
 *
 * @example
 * ```ts
 * import { type AnySecurityError, SecurityError } from 'fraiseql-security'
 * function describe(err: unknown): string {
 *   if (!(err instanceof SecurityError)) return 'unexpected'
 *   const e = err as AnySecurityError
 *   switch (e.code) {
 *     case 'ERR_HTTP_RATE_LIMITED':
 *       return `retry in ${e.info.retryAfterMs} ms` // e is a RateLimitExceededError
 *     case 'ERR_CONFIG_INVALID':
 *       return e.issues.map((i) => i.field).join(', ') // e is a ConfigError
 *     default:
 *       return e.code
 *   }
 * }
 * ```
 */
export type AnySecurityError =
  | {
      [K in keyof SecurityErrorClasses]: SecurityErrorClasses[K] & { readonly code: K }
    }[keyof SecurityErrorClasses]
  | GraphqlRejections
