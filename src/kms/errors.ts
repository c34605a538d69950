/**
 * The KMS error taxonomy. Every provider maps its back end's failures onto
 * these classes, so callers `switch (err.code)` the same way whatever holds
 * their keys.
 *
 * Causes are always rebuilt: an SDK error object is never kept, because an
 * AxiosError's `config` holds the Vault token and the request body, and an
 * AWS SDK error's hidden `$response` holds the signed request. A
 * {@link SanitizedCause} carries the service, its error code and status only.
 */
import { SecurityError, type SecurityErrorOptions } from '../errors.js'

/** The only facts about a back-end failure we keep: no message text, no request. */
export interface SanitizedCause {
  readonly service: string
  /** The service's own error code or name (`NotFoundException`, `UNAVAILABLE`, `ECONNRESET`). */
  readonly code?: string
  /** HTTP status or gRPC status number. */
  readonly status?: number
}

export interface KmsErrorOptions extends SecurityErrorOptions {
  /** Name of the provider the failure came from. */
  provider?: string
  /** Whether retrying the same call may succeed (throttling, 5xx, network). */
  retryable?: boolean
  /**
   * How long the service asked us to wait before trying again (Vault's
   * `Retry-After`, Cloud KMS's `RetryInfo`), in ms.
   */
  retryAfterMs?: number
  cause?: SanitizedCause
}

/** Base of every KMS error. */
export class KmsError extends SecurityError {
  static override readonly code: SecurityError['code'] = 'ERR_KMS_ERROR'
  /** The provider (registered name) the failure came from, when known. */
  readonly provider: string | undefined
  /** Whether the base provider's retry loop may try again. */
  readonly retryable: boolean
  /** The wait the service asked for before a retry, when it named one (ms). */
  readonly retryAfterMs: number | undefined

  constructor(message: string, options: KmsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.provider = options.provider
    this.retryable = options.retryable ?? false
    this.retryAfterMs = options.retryAfterMs
  }
}

/**
 * The service (or what stands in front of it) refused the request for a
 * reason only a configuration change fixes: a Vault Agent or Proxy listener
 * that requires `X-Vault-Request` and never got it, a redirect to plaintext
 * HTTP. Never retried, on any operation, decrypt included: the message says
 * what to fix.
 */
export class KmsConfigurationError extends KmsError {
  static override readonly code = 'ERR_KMS_MISCONFIGURED'
  constructor(message: string, options: Omit<KmsErrorOptions, 'retryable'> = {}) {
    super(message, { ...options, retryable: false })
  }
}

/** The key does not exist (or the caller may not see that it does). */
export class KeyNotFoundError extends KmsError {
  static override readonly code = 'ERR_KMS_KEY_NOT_FOUND'
  constructor(options: KmsErrorOptions = {}) {
    super('Key not found', options)
  }
}

/** The key exists but is disabled, pending deletion or destroyed. */
export class KeyDisabledError extends KmsError {
  static override readonly code = 'ERR_KMS_KEY_DISABLED'
  constructor(options: KmsErrorOptions = {}) {
    super('Key is not enabled', options)
  }
}

/** The credentials were refused or lack permission for the operation. */
export class KmsAccessDeniedError extends KmsError {
  static override readonly code = 'ERR_KMS_ACCESS_DENIED'
  constructor(options: KmsErrorOptions = {}) {
    super('Access to the key was denied', options)
  }
}

/** Encryption (or data-key generation) failed. */
export class EncryptionError extends KmsError {
  static override readonly code = 'ERR_KMS_ENCRYPTION_FAILED'
  constructor(options: KmsErrorOptions = {}) {
    super('Encryption failed', options)
  }
}

/**
 * Decryption failed. Deliberately opaque: it never says whether the
 * ciphertext was corrupt, the key wrong or the context different, and
 * carries no cause, so it cannot serve as an oracle.
 */
export class DecryptionError extends KmsError {
  static override readonly code = 'ERR_KMS_DECRYPTION_FAILED'
  constructor(options: Pick<KmsErrorOptions, 'provider'> = {}) {
    super('Decryption failed', { ...options, retryable: false })
  }
}

/** Rotating the key failed. */
export class KeyRotationError extends KmsError {
  static override readonly code = 'ERR_KMS_ROTATION_FAILED'
  constructor(options: KmsErrorOptions = {}) {
    super('Key rotation failed', options)
  }
}

/** Why a provider could not be reached. */
export type ConnectionFailure = 'timeout' | 'unavailable' | 'throttled' | 'network'

/**
 * The provider could not be reached in time: network errors, 5xx or
 * UNAVAILABLE answers, throttling, or the operation's timeout, after retries.
 */
export class ProviderConnectionError extends KmsError {
  static override readonly code = 'ERR_KMS_PROVIDER_UNAVAILABLE'
  readonly reason: ConnectionFailure

  constructor(reason: ConnectionFailure, options: KmsErrorOptions = {}) {
    super(`KMS provider unavailable (${reason})`, { retryable: true, ...options })
    this.reason = reason
  }
}

/** Serialized encrypted data that is not in the documented shape. */
export class InvalidEncryptedDataError extends KmsError {
  static override readonly code = 'ERR_KMS_INVALID_FORMAT'
  constructor(problem: string) {
    super(`Invalid encrypted data: ${problem}`)
  }
}

/** No provider is registered under the name a key reference (or option) gives. */
export class UnknownProviderError extends KmsError {
  static override readonly code = 'ERR_KMS_UNKNOWN_PROVIDER'
  readonly providerName: string
  constructor(name: string) {
    super(`Unknown provider: ${name}`)
    this.providerName = name
  }
}

/**
 * The local provider's key file is not private to its owner: a symbolic
 * link (whoever controls the target chooses the master keys), not a regular
 * file, or readable or writable by the group or others. The message says how
 * to fix it; it names the file and its mode, never a key.
 */
export class InsecureKeyFileError extends KmsError {
  static override readonly code = 'ERR_KMS_KEY_FILE_INSECURE'
  /** The key file's path, as configured. */
  readonly path: string
  constructor(path: string, problem: string, fix: string) {
    super(`Key file ${path} ${problem}: ${fix}`, { provider: 'local' })
    this.path = path
  }
}

/**
 * A key reference in text form (`"<provider>:<keyId>"`) that does not parse.
 * The message says what is wrong, never the text itself.
 */
export class InvalidKeyReferenceError extends KmsError {
  static override readonly code = 'ERR_KMS_INVALID_KEY_REFERENCE'
  constructor(problem: string) {
    super(`Invalid key reference: ${problem}; expected "<provider>:<keyId>"`)
  }
}

/**
 * A public call named an encryption-context key in the `fraiseql.`
 * namespace, or asked `decrypt()` to open data wrapped under one. The
 * package wraps its own keys (keyring data keys, API-key peppers) under
 * those names; a caller who could produce them could wrap a key they know
 * and plant it as the active data key or pepper.
 */
export class ReservedContextError extends KmsError {
  static override readonly code = 'ERR_KMS_RESERVED_CONTEXT'
  constructor() {
    super(
      'Encryption context keys starting with "fraiseql." are reserved for the package\'s own keys',
    )
  }
}

/**
 * `decrypt()` was called without an expected context for data that was
 * encrypted under one. Trusting the context stored next to the ciphertext
 * would let a database writer move the value to another row or tenant.
 */
export class ContextRequiredError extends KmsError {
  static override readonly code = 'ERR_KMS_CONTEXT_REQUIRED'
  constructor() {
    super(
      'This data was encrypted under an encryption context: pass the context you expect to decrypt it',
    )
  }
}
