/**
 * API-key errors. A rejected key is typed by its reason (malformed, unknown,
 * revoked, expired, address not allowed) so the server can log and count
 * it, but every one of them answers the client the same 401: the message
 * and the wire code never say which check failed.
 */
import { SecurityError, type SecurityErrorOptions } from '../errors.js'
import {
  type HttpAnswer,
  type HttpAnswerable,
  jsonAnswer,
  kHttpAnswer,
} from '../internal/reply/index.js'

/** Why a key was refused; logged and audited, never sent to the client. */
export type ApiKeyRejectionReason =
  | 'malformed'
  | 'unknown'
  | 'revoked'
  | 'expired'
  | 'ip'
  | 'tampered'

/** The one message every rejected key gets. */
export const INVALID_API_KEY_MESSAGE = 'Invalid API key'

/** RFC 6750 §3: the challenge of a request whose token was refused. */
export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'

/**
 * A key that does not authenticate. Answers 401 with `WWW-Authenticate` and
 * the code `ERR_API_KEY_INVALID`, whatever the subclass: the typed code is
 * for the server (`switch (err.code)`), the answer is the same for all.
 */
export class ApiKeyRejectedError extends SecurityError implements HttpAnswerable {
  static override readonly code:
    | 'ERR_API_KEY_INVALID'
    | 'ERR_API_KEY_MALFORMED'
    | 'ERR_API_KEY_UNKNOWN'
    | 'ERR_API_KEY_REVOKED'
    | 'ERR_API_KEY_EXPIRED'
    | 'ERR_API_KEY_IP_NOT_ALLOWED'
    | 'ERR_API_KEY_TAMPERED' = 'ERR_API_KEY_INVALID'
  override readonly statusCode = 401
  /** Why the key was refused (for logs and audit; never in the answer). */
  readonly reason: ApiKeyRejectionReason | undefined
  /** The `WWW-Authenticate` challenge of the answer. */
  readonly challenge: string

  constructor(
    reason?: ApiKeyRejectionReason,
    options?: SecurityErrorOptions & { challenge?: string },
  ) {
    super(INVALID_API_KEY_MESSAGE, options)
    this.reason = reason
    this.challenge = options?.challenge ?? INVALID_TOKEN_CHALLENGE
  }

  [kHttpAnswer](): HttpAnswer {
    return jsonAnswer(
      401,
      { detail: INVALID_API_KEY_MESSAGE, code: 'ERR_API_KEY_INVALID' },
      { 'www-authenticate': this.challenge },
    )
  }
}

/**
 * Not an API key of this format: wrong shape, unknown prefix, characters
 * outside base62, or a checksum that does not match. Thrown by
 * `parseApiKey` and by `validate` before any database lookup.
 */
export class ApiKeyMalformedError extends ApiKeyRejectedError {
  static override readonly code = 'ERR_API_KEY_MALFORMED'
  constructor(options?: SecurityErrorOptions) {
    super('malformed', options)
  }
}

/** Well formed, but no key with this id exists, or its secret does not match. */
export class ApiKeyUnknownError extends ApiKeyRejectedError {
  static override readonly code = 'ERR_API_KEY_UNKNOWN'
  constructor(options?: SecurityErrorOptions) {
    super('unknown', options)
  }
}

/** The key was revoked. */
export class ApiKeyRevokedError extends ApiKeyRejectedError {
  static override readonly code = 'ERR_API_KEY_REVOKED'
  constructor(options?: SecurityErrorOptions) {
    super('revoked', options)
  }
}

/** The key expired, or it was rotated and its grace period ended. */
export class ApiKeyExpiredError extends ApiKeyRejectedError {
  static override readonly code = 'ERR_API_KEY_EXPIRED'
  constructor(options?: SecurityErrorOptions) {
    super('expired', options)
  }
}

/** The key has an IP allowlist and the client's address is not on it. */
export class ApiKeyIpNotAllowedError extends ApiKeyRejectedError {
  static override readonly code = 'ERR_API_KEY_IP_NOT_ALLOWED'
  constructor(options?: SecurityErrorOptions) {
    super('ip', options)
  }
}

/**
 * The key's row does not carry the MAC its security-relevant columns call
 * for (revocation, expiry, permissions, tier, addresses were edited in the
 * database, or the row predates the MAC and was never sealed). Refused and
 * audited (`rejected`, reason `tampered`); the client sees the same 401 as
 * for any invalid key.
 */
export class ApiKeyTamperedError extends ApiKeyRejectedError {
  static override readonly code = 'ERR_API_KEY_TAMPERED'
  constructor(options?: SecurityErrorOptions) {
    super('tampered', options)
  }
}

/**
 * An anchor given to `verifyAuditChain()` that is malformed, or carries a
 * checkpoint MAC this store's pepper did not make (a forged or foreign
 * checkpoint). Says nothing about the expected MAC.
 */
export class ApiKeyAuditCheckpointError extends SecurityError {
  static override readonly code = 'ERR_API_KEY_AUDIT_CHECKPOINT_INVALID'
  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options)
  }
}

/**
 * `retirePepper()` refused: a stored key still uses the version, it is the
 * current version (new keys are hashed with it), or it is version 1 (it
 * keys the audit chain). Answers 409.
 */
export class ApiKeyPepperInUseError extends SecurityError {
  static override readonly code = 'ERR_API_KEY_PEPPER_IN_USE'
  override readonly statusCode = 409
  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options)
  }
}

/** An administrative call named a key id that does not exist. Answers 404. */
export class ApiKeyNotFoundError extends SecurityError {
  static override readonly code = 'ERR_API_KEY_NOT_FOUND'
  override readonly statusCode = 404
  constructor(options?: SecurityErrorOptions) {
    super('API key not found', options)
  }
}

/** The key's state forbids the change (rotating a revoked or already rotated key). Answers 409. */
export class ApiKeyConflictError extends SecurityError {
  static override readonly code = 'ERR_API_KEY_CONFLICT'
  override readonly statusCode = 409
  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options)
  }
}

/** The API-key store failed (database). The message names no key, hash or SQL value. */
export class ApiKeyStoreError extends SecurityError {
  static override readonly code = 'ERR_API_KEY_STORE'
  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options)
  }
}

/** A request body of the admin routes failed validation. Answers 400 naming the field. */
export class ApiKeyRequestError extends SecurityError {
  static override readonly code = 'ERR_API_KEY_REQUEST_INVALID'
  override readonly statusCode = 400
  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options)
  }
}

/** A secret-scanning report whose signature does not verify. Answers 401. */
export class LeakSignatureError extends SecurityError {
  static override readonly code = 'ERR_API_KEY_LEAK_SIGNATURE_INVALID'
  override readonly statusCode = 401
  constructor(options?: SecurityErrorOptions) {
    super('Invalid secret-scanning signature', options)
  }
}
