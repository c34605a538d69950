/**
 * The errors of the authentication contract (ARCHITECTURE.md: `request.auth`
 * from `authenticate(request)`): raised by the profile enforcer and by the
 * API-key plugins, public from `fraiseql-security/profiles`.
 */
import { SecurityError, type SecurityErrorOptions } from '../errors.js'
import { type HttpAnswer, type HttpAnswerable, jsonAnswer, kHttpAnswer } from './reply/index.js'

/** No credentials, or credentials that did not authenticate. Answers 401. */
export class AuthenticationRequiredError extends SecurityError implements HttpAnswerable {
  static override readonly code:
    | 'ERR_AUTH_REQUIRED'
    | 'ERR_AUTH_TOKEN_EXPIRED'
    | 'ERR_AUTH_TOKEN_NOT_YET_VALID' = 'ERR_AUTH_REQUIRED'
  override readonly statusCode = 401
  /** The `WWW-Authenticate` challenge sent with the answer. */
  readonly challenge: string

  constructor(
    challenge: string,
    message = 'Authentication required',
    options?: SecurityErrorOptions,
  ) {
    super(message, options)
    this.challenge = challenge
  }

  [kHttpAnswer](): HttpAnswer {
    return jsonAnswer(
      this.statusCode,
      { detail: this.message, code: this.code },
      { 'www-authenticate': this.challenge },
    )
  }
}

/** Authenticated, but not allowed (e.g. introspection without permission). Answers 403. */
export class ForbiddenError extends SecurityError {
  static override readonly code = 'ERR_AUTH_FORBIDDEN'
  override readonly statusCode = 403

  constructor(message = 'Forbidden', options?: SecurityErrorOptions) {
    super(message, options)
  }
}
