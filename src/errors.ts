/**
 * @module fraiseql-security
 *
 * The one error base every capability extends. Shaped like jose's `JOSEError`:
 * a static and an instance `code` that are public API, `name` taken from the
 * class, and `cause` passed through (already sanitized by whoever throws).
 */

export type { AnySecurityError } from './any-error.js'

/**
 * Every stable error code the package can throw. Codes are public API: they
 * never change meaning and are never reused. `ERR_<AREA>_<REASON>`.
 */
export const SECURITY_ERROR_CODES = [
  'ERR_SECURITY',
  'ERR_CONFIG_INVALID',
  'ERR_INTERNAL',
  'ERR_SEAM_MISWIRED',
  'ERR_HTTP_BAD_REQUEST',
  'ERR_HTTP_INVALID_CONTENT_LENGTH',
  'ERR_HTTP_BODY_TOO_LARGE',
  'ERR_HTTP_BODY_TIMEOUT',
  'ERR_HTTP_UNSUPPORTED_ENCODING',
  'ERR_HTTP_RATE_LIMITED',
  'ERR_HTTP_RATE_LIMIT_UNAVAILABLE',
  'ERR_RATE_LIMIT_STORE',
  'ERR_DEPENDENCY_MISSING',
  'ERR_KMS_ERROR',
  'ERR_KMS_KEY_NOT_FOUND',
  'ERR_KMS_KEY_DISABLED',
  'ERR_KMS_ACCESS_DENIED',
  'ERR_KMS_ENCRYPTION_FAILED',
  'ERR_KMS_DECRYPTION_FAILED',
  'ERR_KMS_ROTATION_FAILED',
  'ERR_KMS_PROVIDER_UNAVAILABLE',
  'ERR_KMS_INVALID_FORMAT',
  'ERR_KMS_UNKNOWN_PROVIDER',
  'ERR_KMS_KEY_FILE_INSECURE',
  'ERR_KMS_INVALID_KEY_REFERENCE',
  'ERR_KMS_MISCONFIGURED',
  'ERR_KEY_MANAGER_NOT_INITIALIZED',
  'ERR_KEY_MANAGER_KEY_EXHAUSTED',
  'ERR_KEY_MANAGER_UNSUPPORTED_VALUE',
  'ERR_KMS_RESERVED_CONTEXT',
  'ERR_KMS_CONTEXT_REQUIRED',
  'ERR_KEY_MANAGER_AAD_REQUIRED',
  'ERR_KEYRING_STORE',
  'ERR_KEYRING_TAMPERED',
  'ERR_KEYRING_ROLLBACK',
  'ERR_PROFILE_TLS_REQUIRED',
  'ERR_PROFILE_CLIENT_CERT_REQUIRED',
  'ERR_PROFILE_UNKNOWN',
  'ERR_PROFILE_GRAPHQL_UNGUARDED',
  'ERR_AUTH_REQUIRED',
  'ERR_AUTH_TOKEN_EXPIRED',
  'ERR_AUTH_TOKEN_NOT_YET_VALID',
  'ERR_AUTH_FORBIDDEN',
  'ERR_GRAPHQL_BATCH_TOO_LARGE',
  'ERR_GRAPHQL_DEPTH_LIMIT',
  'ERR_GRAPHQL_COMPLEXITY_LIMIT',
  'ERR_GRAPHQL_ALIAS_LIMIT',
  'ERR_GRAPHQL_DIRECTIVE_LIMIT',
  'ERR_GRAPHQL_TOKEN_LIMIT',
  'ERR_GRAPHQL_INTROSPECTION_DISABLED',
  'ERR_GRAPHQL_JSON_DOCUMENT_REFUSED',
  'ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND',
  'ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED',
  'ERR_GRAPHQL_PERSISTED_QUERY_REGISTRATION_REFUSED',
  'ERR_GRAPHQL_PERSISTED_QUERY_MISMATCH',
  'ERR_API_KEY_MALFORMED',
  'ERR_API_KEY_INVALID',
  'ERR_API_KEY_UNKNOWN',
  'ERR_API_KEY_REVOKED',
  'ERR_API_KEY_EXPIRED',
  'ERR_API_KEY_IP_NOT_ALLOWED',
  'ERR_API_KEY_TAMPERED',
  'ERR_API_KEY_AUDIT_CHECKPOINT_INVALID',
  'ERR_API_KEY_PEPPER_IN_USE',
  'ERR_API_KEY_NOT_FOUND',
  'ERR_API_KEY_CONFLICT',
  'ERR_API_KEY_STORE',
  'ERR_API_KEY_REQUEST_INVALID',
  'ERR_API_KEY_LEAK_SIGNATURE_INVALID',
  'ERR_SBOM_ERROR',
  'ERR_SBOM_LOCKFILE_NOT_FOUND',
  'ERR_SBOM_LOCKFILE_MALFORMED',
  'ERR_SBOM_LOCKFILE_UNSUPPORTED',
  'ERR_SBOM_MANIFEST_MALFORMED',
] as const

/** Union of every code a {@link SecurityError} can carry; `switch` on it. */
export type SecurityErrorCode = (typeof SECURITY_ERROR_CODES)[number]

/** Options accepted by every {@link SecurityError} constructor. */
export interface SecurityErrorOptions {
  /**
   * The underlying reason. Callers pass a sanitized value: never an SDK error
   * whose properties may hold credentials or request bodies.
   */
  cause?: unknown
}

/**
 * Base class of every error this package throws.
 *
 * @example
 * ```ts
 * import { SecurityError } from 'fraiseql-security'
 * try { await run() } catch (err) {
 *   if (err instanceof SecurityError && err.code === 'ERR_HTTP_RATE_LIMITED') retryLater()
 * }
 * ```
 */
export class SecurityError extends Error {
  /** The code every instance of this class carries. */
  static readonly code: SecurityErrorCode = 'ERR_SECURITY'

  /** Stable, documented error code (`ERR_<AREA>_<REASON>`). */
  readonly code: SecurityErrorCode

  /** HTTP status to answer with, for errors that map to a response. */
  readonly statusCode: number | undefined

  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    const ctor = new.target as typeof SecurityError
    this.code = ctor.code
    this.name = ctor.name
    this.statusCode = undefined
    Error.captureStackTrace?.(this, ctor)
  }
}

/** A path in an options object, e.g. `policies[1].windowMs`. */
function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? String(part) : `.${String(part)}`
  }
  return out === '' ? '(root)' : out
}

/** One problem found in an options object. */
export interface ConfigIssue {
  /** Dotted path of the offending field, `(root)` for the object itself. */
  readonly field: string
  /** What is wrong with it. Never contains the value given. */
  readonly problem: string
}

/**
 * A plugin, middleware or class was given an invalid option. Thrown once, at
 * construction or registration, never per request; the message names the field.
 */
export class ConfigError extends SecurityError {
  static override readonly code = 'ERR_CONFIG_INVALID'
  /** Every problem found, in order. */
  readonly issues: readonly ConfigIssue[]

  constructor(
    component: string,
    issues: ReadonlyArray<{
      path: ReadonlyArray<PropertyKey>
      message: string
      keys?: readonly string[]
    }>,
    options?: SecurityErrorOptions,
  ) {
    // An unknown key is reported at its own path, not at the object holding it.
    const list = issues.flatMap((i) =>
      i.keys !== undefined && i.keys.length > 0
        ? i.keys.map((k) => ({ field: formatPath([...i.path, k]), problem: 'unknown option' }))
        : [{ field: formatPath(i.path), problem: i.message }],
    )
    const head = list[0]
    const summary = head === undefined ? 'invalid options' : `\`${head.field}\`: ${head.problem}`
    const more = list.length > 1 ? ` (and ${list.length - 1} more)` : ''
    super(`Invalid ${component} option ${summary}${more}`, options)
    this.issues = Object.freeze(list)
  }
}

/**
 * The package's own modules are not wired as shipped: a capability's
 * private part, handed to another when its module loads, was not there when
 * asked for (a bundler dropped the module that provides it), or a second
 * module tried to provide it. Never caused by a request or an option; keep
 * the package's modules as published (or leave it out of the bundle).
 */
export class SeamError extends SecurityError {
  static override readonly code = 'ERR_SEAM_MISWIRED'
}
