/**
 * What the graphql-yoga (envelop) and Apollo Server plugins share: their
 * options (the guard options, with callbacks that take the server's context
 * object instead of a Fastify request, and an optional tracer), and the
 * spans of operations they refuse.
 */
import { context as otelContext } from '@opentelemetry/api'
import type { DocumentNode, GraphQLError } from 'graphql'
import { ConfigError } from '../errors.js'
import { checkObservers, type GuardDecision } from './decision.js'
import {
  type GraphqlGuardOptions,
  parseGuardOptions,
  type ResolvedGuardOptions,
} from './options.js'
import { stripFieldSuggestions } from './suggestions.js'
import { errorType, GraphQLTracer, OTHER_ERROR } from './tracing/tracer.js'

/**
 * The guard options for a server other than mercurius: the callbacks take
 * that server's per-request context object (graphql-yoga's context, Apollo
 * Server's `contextValue`). `errorDetail` and `requestId` are mercurius's
 * error formatter's: the server's own masking applies (yoga's
 * `maskedErrors`, Apollo's `formatError`), so they are refused here.
 */
export type ServerGuardOptions<C> = Omit<
  GraphqlGuardOptions,
  'isAuthenticated' | 'chargeCost' | 'onAccept' | 'onReject' | 'errorDetail' | 'requestId'
> & {
  /** Whether the caller may introspect when `introspection` is `'authenticated'`. */
  isAuthenticated?: (context: C) => boolean | Promise<boolean>
  /**
   * Called with each operation's cost once every limit passed; throw a
   * `SecurityError` with a `statusCode` (a `RateLimitExceededError`) to
   * refuse it with that status, code and headers.
   */
  chargeCost?: (context: C, cost: number) => void | Promise<void>
  /** Each operation every guard let through (see `GraphqlGuardOptions.onAccept`). */
  onAccept?: (context: C, decision: GuardDecision) => void | Promise<void>
  /** Each operation a guard refused, or would have under `reportOnly`. */
  onReject?: (context: C, decision: GuardDecision) => void | Promise<void>
  /**
   * Trace operations with this tracer: executed ones, and the ones the
   * guards or the server refuse (status ERROR, their code as `error.type`).
   * @default no tracing
   */
  tracer?: GraphQLTracer
}

/** Parsed server-plugin options. */
export interface ResolvedServerOptions {
  readonly o: ResolvedGuardOptions
  readonly tracer: GraphQLTracer | undefined
}

/** Parses a server plugin's options once; a bad one is `ERR_CONFIG_INVALID` naming it. */
export function parseServerOptions(
  component: string,
  options: ServerGuardOptions<never> | undefined,
): ResolvedServerOptions {
  const { tracer, ...rest } = (options ?? {}) as ServerGuardOptions<never> & Record<string, unknown>
  for (const key of ['errorDetail', 'requestId'] as const) {
    if (rest[key] !== undefined) {
      throw new ConfigError(component, [
        {
          path: [key],
          message: "is mercurius's error formatter's; use the server's own error masking",
        },
      ])
    }
  }
  if (tracer !== undefined && !(tracer instanceof GraphQLTracer)) {
    throw new ConfigError(component, [{ path: ['tracer'], message: 'must be a GraphQLTracer' }])
  }
  const o = parseGuardOptions(component, rest as GraphqlGuardOptions)
  checkObservers(component, o)
  if (o.introspection === 'authenticated' && o.isAuthenticated === undefined) {
    throw new ConfigError(component, [
      { path: ['isAuthenticated'], message: "is required when introspection is 'authenticated'" },
    ])
  }
  return { o, tracer }
}

/** `error.type` for a refusal the server made without a code (graphql-js syntax, validation). */
export function refusalTypeFor(fallback: string) {
  return (error: unknown, first: unknown): string => {
    const outer = errorType(error)
    if (outer !== OTHER_ERROR) return outer
    const own = errorType(first)
    return own !== OTHER_ERROR ? own : fallback
  }
}

/**
 * One span for an operation refused before execution, ended at once with
 * its errors: a refusal is worth seeing in a trace (an attack, a broken
 * client), and the executed operations' spans never show it.
 */
export function traceRefusal(
  tracer: GraphQLTracer | undefined,
  document: DocumentNode | undefined,
  operationName: string | null | undefined,
  variables: unknown,
  errors: readonly GraphQLError[],
  fallbackType = 'GRAPHQL_VALIDATION_FAILED',
): void {
  if (tracer === undefined || errors.length === 0) return
  const t = tracer.startOperation(otelContext.active(), false, document, operationName)
  if (t === undefined) return
  if (document !== undefined) tracer.describeOperation(t, document, operationName, variables)
  // Not a GraphqlRejectedError: a refusal without a code of ours must get the fallback type.
  tracer.failOperation(t, { errors }, refusalTypeFor(fallbackType))
}

/** Whether a message carries a "Did you mean …?" suggestion. */
export function hasSuggestion(message: string): boolean {
  return stripFieldSuggestions(message) !== message
}
