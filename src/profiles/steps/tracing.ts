/**
 * OpenTelemetry spans of GraphQL operations, secrets redacted (the `tracer`
 * option). Prepared and attached by the GraphQL step, on each mercurius
 * instance it guards: a span must never describe an operation the guards
 * did not check.
 */
import type { EnforcerStep } from './step.js'

export const tracing: EnforcerStep = {
  name: 'tracing',
  phase: 'preExecution',
  enforces: [],
  enabled: (_profile, options) => options.tracer !== false,
  install: () => false,
}
