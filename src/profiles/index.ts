/**
 * @module fraiseql-security/profiles
 *
 * Security profiles (STANDARD, REGULATED, RESTRICTED, or your own through
 * `defineProfile`) and the `ProfileEnforcer` that registers, on a Fastify
 * app, the plugins and hooks that enforce every setting of one.
 */

export type {
  AuditCategory,
  AuditEvent,
  AuditedOperation,
  AuditLevel,
  AuditSink,
} from './audit.js'
export { fastifyLogAuditSink } from './audit.js'
export type {
  MiddlewareStep,
  ProfileServerOptions,
  ProfileViolation,
  RequestContextFacts,
} from './enforcer.js'
export { ProfileEnforcer } from './enforcer.js'
export {
  AuthenticationRequiredError,
  BatchTooLargeError,
  ClientCertificateRequiredError,
  ForbiddenError,
  GraphqlUnguardedError,
  TlsRequiredError,
  TokenExpiredError,
  TokenNotYetValidError,
  UnknownProfileError,
} from './errors.js'
export type { ClientCertHeader, TrustProxy } from './gates.js'
export type { AuthContext, Authenticate, ProfileEnforcerOptions, StepName } from './options.js'
export { ProfileEnforcerOptionsSchema } from './options.js'
export type { ProfileOverrides, Quota, SecurityProfile } from './profile.js'
export {
  defineProfile,
  getProfile,
  PROFILES,
  parseProfile,
  QuotaSchema,
  REGULATED,
  RESTRICTED,
  SecurityProfileSchema,
  STANDARD,
} from './profile.js'
export type { ProfileApolloPlugin, ProfileYogaPlugin } from './steps/server-plugins.js'
