/**
 * @module fraiseql-security/graphql
 *
 * GraphQL guards: depth, complexity, alias, directive and token limits and
 * introspection control, as graphql-js validation rules and as mercurius
 * hooks over one shared AST walk; persisted operations (APQ-compatible); an
 * error formatter that masks internals and field suggestions; an
 * OpenTelemetry tracer that records no secret, and the redaction it uses.
 * graphql-js and mercurius are optional peers, loaded on first use.
 */

export type { AnalyzeOptions, DocumentAnalysis } from './analysis.js'
export { analyzeDocument, computeComplexity, MAX_NESTING } from './analysis.js'
export type {
  ApolloGuardOptions,
  ApolloGuardsListener,
  ApolloGuardsPlugin,
} from './apollo.js'
export { apolloGraphqlGuards } from './apollo.js'
export type { CheckContext } from './check.js'
export { checkDocument } from './check.js'
export type { GuardDecision } from './decision.js'
export type { EnvelopGuardOptions, EnvelopGuardsPlugin } from './envelop.js'
export { useGraphqlGuards } from './envelop.js'
export type {
  FormatterContext,
  FormatterExecution,
  MercuriusErrorFormatter,
} from './error-formatter.js'
export { createErrorFormatter } from './error-formatter.js'
export type { GraphqlRejectionCode } from './errors.js'
export { GraphqlRejectedError } from './errors.js'
export { graphqlGuards } from './fastify.js'
export type { MercuriusGuardOptions } from './mercurius.js'
export { mercuriusGuardOptions } from './mercurius.js'
export type { ComplexityOptions, GraphqlGuardOptions } from './options.js'
export { ComplexityOptionsSchema, GraphqlGuardOptionsSchema } from './options.js'
export type {
  PersistedQueryOptions,
  PersistedQueryProvider,
  PersistedQueryRequest,
} from './persisted.js'
export {
  APQ_CACHE_CHARS,
  mercuriusPersistedQueryOptions,
  PersistedOperations,
} from './persisted.js'
export type { RedactOptions } from './redact.js'
export {
  DEFAULT_SENSITIVE_PATTERNS,
  REDACTED,
  redactSensitive,
  STRONG_SENSITIVE_WORDS,
} from './redact.js'
export { createValidationRules } from './rules.js'
export type { ServerGuardOptions } from './servers.js'
export { stripFieldSuggestions } from './suggestions.js'
export type { ResolvedTracingConfig, TracingConfig } from './tracing/config.js'
export { TracingConfigSchema } from './tracing/config.js'
export type { GraphQLTracerInstrumentationConfig } from './tracing/instrumentation.js'
export { GraphQLTracerInstrumentation } from './tracing/instrumentation.js'
export type { GraphqlTracingOptions, MercuriusTracingHooks } from './tracing/mercurius.js'
export { graphqlTracing, mercuriusTracingHooks } from './tracing/mercurius.js'
export { GraphQLTracer } from './tracing/tracer.js'
