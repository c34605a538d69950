/**
 * Every error class a public entry exports is a member of `AnySecurityError`
 * under the code its instances carry: the table below is typed by the union
 * (a code outside it, or a missing one, does not compile), and the tests
 * check it against what the entries export at run time, so a class exported
 * without joining the union fails here.
 */
import type { GraphQLError } from 'graphql'
import { describe, expect, it } from 'vitest'
import * as apiKeys from '../src/api-keys/index.js'
import * as graphql from '../src/graphql/index.js'
import * as http from '../src/http/index.js'
import * as root from '../src/index.js'
import { type AnySecurityError, SecurityError } from '../src/index.js'
import * as kms from '../src/kms/index.js'
import * as kmsTesting from '../src/kms/testing/index.js'
import * as profiles from '../src/profiles/index.js'
import * as sbom from '../src/sbom/index.js'

type Code = AnySecurityError['code']

/** A class whose instances have the shape of the union's member for `K`. */
type MemberClass<K extends Code> = (abstract new (
  ...args: never
) => Omit<Extract<AnySecurityError, { code: K }>, 'code'>) & { readonly code: unknown }

const g = graphql.GraphqlRejectedError
/** Its code is the first rejection's, not a static one (see src/graphql/errors.ts). */
const hasDynamicCode = (cls: unknown): boolean => cls === g

const MEMBERS: { readonly [K in Code]: readonly MemberClass<K>[] } = {
  ERR_SECURITY: [SecurityError, g],
  ERR_CONFIG_INVALID: [root.ConfigError],
  ERR_DEPENDENCY_MISSING: [kms.MissingDependencyError],
  ERR_SEAM_MISWIRED: [root.SeamError],
  ERR_HTTP_BAD_REQUEST: [http.InvalidCompressedBodyError],
  ERR_HTTP_INVALID_CONTENT_LENGTH: [http.InvalidContentLengthError],
  ERR_HTTP_BODY_TOO_LARGE: [http.RequestTooLargeError],
  ERR_HTTP_BODY_TIMEOUT: [http.BodyTimeoutError],
  ERR_HTTP_UNSUPPORTED_ENCODING: [http.UnsupportedEncodingError],
  ERR_HTTP_RATE_LIMITED: [http.RateLimitExceededError],
  ERR_HTTP_RATE_LIMIT_UNAVAILABLE: [http.RateLimitUnavailableError],
  ERR_RATE_LIMIT_STORE: [http.RateLimitStoreError],
  ERR_KMS_ERROR: [kms.KmsError],
  ERR_KMS_MISCONFIGURED: [kms.KmsConfigurationError],
  ERR_KMS_KEY_NOT_FOUND: [kms.KeyNotFoundError],
  ERR_KMS_KEY_DISABLED: [kms.KeyDisabledError],
  ERR_KMS_ACCESS_DENIED: [kms.KmsAccessDeniedError],
  ERR_KMS_ENCRYPTION_FAILED: [kms.EncryptionError],
  ERR_KMS_DECRYPTION_FAILED: [kms.DecryptionError],
  ERR_KMS_ROTATION_FAILED: [kms.KeyRotationError],
  ERR_KMS_PROVIDER_UNAVAILABLE: [kms.ProviderConnectionError],
  ERR_KMS_INVALID_FORMAT: [kms.InvalidEncryptedDataError],
  ERR_KMS_UNKNOWN_PROVIDER: [kms.UnknownProviderError],
  ERR_KMS_KEY_FILE_INSECURE: [kms.InsecureKeyFileError],
  ERR_KMS_INVALID_KEY_REFERENCE: [kms.InvalidKeyReferenceError],
  ERR_KMS_RESERVED_CONTEXT: [kms.ReservedContextError],
  ERR_KMS_CONTEXT_REQUIRED: [kms.ContextRequiredError],
  ERR_KEY_MANAGER_NOT_INITIALIZED: [kms.KeyManagerNotInitializedError],
  ERR_KEY_MANAGER_KEY_EXHAUSTED: [kms.DataKeyExhaustedError],
  ERR_KEY_MANAGER_UNSUPPORTED_VALUE: [kms.UnsupportedFieldValueError],
  ERR_KEY_MANAGER_AAD_REQUIRED: [kms.AadRequiredError],
  ERR_KEYRING_STORE: [kms.KeyringStoreError],
  ERR_KEYRING_TAMPERED: [kms.KeyringTamperedError],
  ERR_KEYRING_ROLLBACK: [kms.KeyringRollbackError],
  ERR_PROFILE_TLS_REQUIRED: [profiles.TlsRequiredError],
  ERR_PROFILE_CLIENT_CERT_REQUIRED: [profiles.ClientCertificateRequiredError],
  ERR_PROFILE_UNKNOWN: [profiles.UnknownProfileError],
  ERR_PROFILE_GRAPHQL_UNGUARDED: [profiles.GraphqlUnguardedError],
  ERR_AUTH_REQUIRED: [profiles.AuthenticationRequiredError],
  ERR_AUTH_TOKEN_EXPIRED: [profiles.TokenExpiredError],
  ERR_AUTH_TOKEN_NOT_YET_VALID: [profiles.TokenNotYetValidError],
  ERR_AUTH_FORBIDDEN: [profiles.ForbiddenError],
  ERR_GRAPHQL_BATCH_TOO_LARGE: [profiles.BatchTooLargeError, g],
  ERR_GRAPHQL_DEPTH_LIMIT: [g],
  ERR_GRAPHQL_COMPLEXITY_LIMIT: [g],
  ERR_GRAPHQL_ALIAS_LIMIT: [g],
  ERR_GRAPHQL_DIRECTIVE_LIMIT: [g],
  ERR_GRAPHQL_TOKEN_LIMIT: [g],
  ERR_GRAPHQL_INTROSPECTION_DISABLED: [g],
  ERR_GRAPHQL_JSON_DOCUMENT_REFUSED: [g],
  ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND: [g],
  ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED: [g],
  ERR_GRAPHQL_PERSISTED_QUERY_REGISTRATION_REFUSED: [g],
  ERR_GRAPHQL_PERSISTED_QUERY_MISMATCH: [g],
  ERR_API_KEY_INVALID: [apiKeys.ApiKeyRejectedError],
  ERR_API_KEY_MALFORMED: [apiKeys.ApiKeyMalformedError],
  ERR_API_KEY_UNKNOWN: [apiKeys.ApiKeyUnknownError],
  ERR_API_KEY_REVOKED: [apiKeys.ApiKeyRevokedError],
  ERR_API_KEY_EXPIRED: [apiKeys.ApiKeyExpiredError],
  ERR_API_KEY_IP_NOT_ALLOWED: [apiKeys.ApiKeyIpNotAllowedError],
  ERR_API_KEY_TAMPERED: [apiKeys.ApiKeyTamperedError],
  ERR_API_KEY_AUDIT_CHECKPOINT_INVALID: [apiKeys.ApiKeyAuditCheckpointError],
  ERR_API_KEY_PEPPER_IN_USE: [apiKeys.ApiKeyPepperInUseError],
  ERR_API_KEY_NOT_FOUND: [apiKeys.ApiKeyNotFoundError],
  ERR_API_KEY_CONFLICT: [apiKeys.ApiKeyConflictError],
  ERR_API_KEY_STORE: [apiKeys.ApiKeyStoreError],
  ERR_API_KEY_REQUEST_INVALID: [apiKeys.ApiKeyRequestError],
  ERR_API_KEY_LEAK_SIGNATURE_INVALID: [apiKeys.LeakSignatureError],
  ERR_SBOM_ERROR: [sbom.SBOMError],
  ERR_SBOM_LOCKFILE_NOT_FOUND: [sbom.LockfileNotFoundError],
  ERR_SBOM_LOCKFILE_MALFORMED: [sbom.MalformedLockfileError],
  ERR_SBOM_LOCKFILE_UNSUPPORTED: [sbom.UnsupportedLockfileError],
  ERR_SBOM_MANIFEST_MALFORMED: [sbom.MalformedManifestError],
}

const ENTRIES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'fraiseql-security': root,
  'fraiseql-security/api-keys': apiKeys,
  'fraiseql-security/graphql': graphql,
  'fraiseql-security/http': http,
  'fraiseql-security/kms': kms,
  'fraiseql-security/kms/testing': kmsTesting,
  'fraiseql-security/profiles': profiles,
  'fraiseql-security/sbom': sbom,
}

const isErrorClass = (v: unknown): v is typeof SecurityError =>
  typeof v === 'function' && (v === SecurityError || v.prototype instanceof SecurityError)

/** Every SecurityError class the public entries export, by name. */
const exported = new Map<string, typeof SecurityError>()
for (const exports of Object.values(ENTRIES)) {
  for (const [name, value] of Object.entries(exports)) {
    if (isErrorClass(value)) exported.set(name, value)
  }
}

const members = Object.entries(MEMBERS) as Array<[Code, readonly unknown[]]>
const listed = new Set<unknown>(members.flatMap(([, classes]) => classes))

describe('AnySecurityError membership', () => {
  it('finds the exported error classes (the scan itself works)', () => {
    expect(exported.size).toBeGreaterThan(60)
    expect(exported.get('RateLimitStoreError')).toBe(http.RateLimitStoreError)
  })

  it('every exported error class is a member of the union', () => {
    const missing = [...exported].filter(([, cls]) => !listed.has(cls)).map(([name]) => name)
    expect(missing).toEqual([])
  })

  it('every member is an exported class', () => {
    const exportedClasses = new Set<unknown>(exported.values())
    const extra = [...listed].filter((cls) => !exportedClasses.has(cls))
    expect(extra).toEqual([])
  })

  it('each class is listed under the code its instances carry', () => {
    for (const [code, classes] of members) {
      for (const cls of classes as ReadonlyArray<typeof SecurityError>) {
        if (hasDynamicCode(cls)) continue
        expect(`${cls.name}: ${cls.code}`).toBe(`${cls.name}: ${code}`)
      }
    }
  })

  it('a GraphqlRejectedError carries its first rejection code, and ERR_SECURITY with none', () => {
    for (const [code, classes] of members) {
      if (!classes.includes(g) || code === 'ERR_SECURITY') continue
      const rejection = { message: 'refused', extensions: { code } } as unknown as GraphQLError
      expect(new g([rejection]).code).toBe(code)
    }
    expect(new g([]).code).toBe('ERR_SECURITY')
  })

  it('no exported class has a code outside the union (one class, one case)', () => {
    const codes = new Set<string>(members.map(([code]) => code))
    const stray = [...exported]
      .filter(([, cls]) => !hasDynamicCode(cls) && !codes.has(cls.code))
      .map(([name, cls]) => `${name}: ${cls.code}`)
    expect(stray).toEqual([])
  })
})
