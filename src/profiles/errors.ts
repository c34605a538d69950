/**
 * The answers of the profile gates. Each renders its own wire shape: a JSON
 * body that names no internals, plus the header the status requires
 * (`Upgrade` for 426, `WWW-Authenticate` for 401).
 */
import { SecurityError, type SecurityErrorOptions } from '../errors.js'
import { AuthenticationRequiredError } from '../internal/auth-errors.js'
import {
  type HttpAnswer,
  type HttpAnswerable,
  jsonAnswer,
  kHttpAnswer,
} from '../internal/reply/index.js'

// The authentication contract's errors live in internal/ (api-keys raises them
// too, without loading the enforcer); they are public from here as before.
export { AuthenticationRequiredError, ForbiddenError } from '../internal/auth-errors.js'

function answer(err: SecurityError & { statusCode: number }, headers: Record<string, string>) {
  return jsonAnswer(err.statusCode, { detail: err.message, code: err.code }, headers)
}

/** Plain HTTP (or TLS below the profile's minimum) where TLS is required. Answers 426. */
export class TlsRequiredError extends SecurityError implements HttpAnswerable {
  static override readonly code = 'ERR_PROFILE_TLS_REQUIRED'
  override readonly statusCode = 426
  /** The lowest TLS version the server accepts, e.g. `1.2`. */
  readonly minTlsVersion: string

  constructor(minTlsVersion: string, options?: SecurityErrorOptions) {
    super(`TLS ${minTlsVersion} or later is required`, options)
    this.minTlsVersion = minTlsVersion
  }

  [kHttpAnswer](): HttpAnswer {
    // RFC 9110 §15.5.22: a 426 names the protocols to upgrade to.
    return answer(this, { upgrade: `TLS/${this.minTlsVersion}, HTTP/1.1`, connection: 'Upgrade' })
  }
}

/** No authorized client certificate where mTLS is required. Answers 403. */
export class ClientCertificateRequiredError extends SecurityError {
  static override readonly code = 'ERR_PROFILE_CLIENT_CERT_REQUIRED'
  override readonly statusCode = 403

  constructor(options?: SecurityErrorOptions) {
    super('A valid client certificate is required', options)
  }
}

/** A bearer token older than the profile's `tokenExpiryMinutes`, or with no issue time. Answers 401. */
export class TokenExpiredError extends AuthenticationRequiredError {
  static override readonly code = 'ERR_AUTH_TOKEN_EXPIRED'

  constructor(scheme: string, options?: SecurityErrorOptions) {
    // RFC 6750 §3: the error attribute tells the client to get a new token.
    super(`${scheme}, error="invalid_token"`, 'Token expired', options)
  }
}

/**
 * A bearer token whose `issuedAt` lies further in the future than the
 * enforcer's `clockToleranceMs`: a token "issued" ahead would stay fresh for
 * as long as it is ahead. Answers 401.
 */
export class TokenNotYetValidError extends AuthenticationRequiredError {
  static override readonly code = 'ERR_AUTH_TOKEN_NOT_YET_VALID'

  constructor(scheme: string, options?: SecurityErrorOptions) {
    super(`${scheme}, error="invalid_token"`, 'Token issued in the future', options)
  }
}

/** A batched GraphQL request with more operations than the profile's `maxBatchSize`. Answers 400. */
export class BatchTooLargeError extends SecurityError {
  static override readonly code = 'ERR_GRAPHQL_BATCH_TOO_LARGE'
  override readonly statusCode = 400

  constructor(options?: SecurityErrorOptions) {
    super('Too many operations in one batch', options)
  }
}

/** `getProfile(name)` with a name no preset has. Lists the known ones. */
export class UnknownProfileError extends SecurityError {
  static override readonly code = 'ERR_PROFILE_UNKNOWN'
  /** The preset names `getProfile` knows. */
  readonly known: readonly string[]

  constructor(name: unknown, known: readonly string[], options?: SecurityErrorOptions) {
    // The name comes from configuration, never a secret; bounded all the same.
    const shown = JSON.stringify(String(name).slice(0, 64))
    super(`Unknown security profile ${shown}; known profiles: ${known.join(', ')}`, options)
    this.known = known
  }
}

/**
 * A GraphQL step of a profile that cannot be installed: a route serves
 * GraphQL that no mercurius serves (so no guard can reach it), or a tracer
 * has nothing to trace.
 * `app.ready()` rejects with it, so the app never starts protecting less
 * than its profile says. The message says what to do.
 */
export class GraphqlUnguardedError extends SecurityError {
  static override readonly code = 'ERR_PROFILE_GRAPHQL_UNGUARDED'
  /** The step that could not be installed: `graphqlGuards` or `tracing`. */
  readonly step: 'graphqlGuards' | 'tracing'

  constructor(step: 'graphqlGuards' | 'tracing', message: string, options?: SecurityErrorOptions) {
    super(message, options)
    this.step = step
  }
}
