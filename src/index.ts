/**
 * @module fraiseql-security
 *
 * The root entry: the error base class and the types every capability shares.
 * Capabilities live in their own subpaths: `fraiseql-security/http`, ...
 */
export type {
  AnySecurityError,
  ConfigIssue,
  SecurityErrorCode,
  SecurityErrorOptions,
} from './errors.js'
export { ConfigError, SECURITY_ERROR_CODES, SeamError, SecurityError } from './errors.js'
