/**
 * Every step of the enforcer, in the order `applyTo` registers them: the
 * cheap gates first (no body read, no credential checked, for a request
 * that is refused anyway), authentication before anything keyed by
 * principal, GraphQL after both, masking and audit around everything.
 */
import { auditLog } from './audit-log.js'
import { authentication } from './authentication.js'
import { bodyLimit } from './body-limit.js'
import { errorMasking } from './error-masking.js'
import { graphqlGuards } from './graphql-guards.js'
import { ipRateLimit } from './ip-rate-limit.js'
import { mtlsGate } from './mtls-gate.js'
import { principalRateLimit } from './principal-rate-limit.js'
import type { EnforcerStep } from './step.js'
import { tlsGate } from './tls-gate.js'
import { tracing } from './tracing.js'

export const STEPS: readonly EnforcerStep[] = [
  tlsGate,
  mtlsGate,
  ipRateLimit,
  bodyLimit,
  authentication,
  principalRateLimit,
  graphqlGuards,
  errorMasking,
  auditLog,
  tracing,
]
