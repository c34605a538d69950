/**
 * The GraphQL capability's own machinery that the profile enforcer runs:
 * the guards' installer, the WebSocket checks and the tracer, put on each
 * mercurius instance the enforcer meets (registered before or after
 * `applyTo`), and the error levelling it applies to the answers of
 * mercurius, graphql-yoga and Apollo Server. The public plugins
 * (`graphqlGuards`, `graphqlTracing`, `createErrorFormatter`) run the same
 * functions; these take options already parsed and the caller's component
 * name, and are not for users, so they are handed over here rather than
 * published.
 *
 * Implemented by src/graphql/fastify.ts (its `provideGraphqlEnforcement`
 * call, under `graphqlGuards`), with the functions of the same names in
 * graphql/fastify.ts, graphql/websocket.ts, graphql/tracing/mercurius.ts and
 * graphql/error-formatter.ts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GraphQLFormattedError } from 'graphql'
import type { z } from 'zod'
import { SeamError } from '../errors.js'
import type { GraphQLTracer, GraphqlGuardOptionsSchema, graphqlGuards } from '../graphql/index.js'
import { Seam } from './seam.js'

/** Guard options as `GraphqlGuardOptionsSchema` parsed them. */
type ResolvedGuardOptions = z.output<typeof GraphqlGuardOptionsSchema>

/** What the sockets of one mercurius instance are held to (graphql/websocket.ts's `SocketRules`). */
export interface SocketRules {
  /** The guards' options: limits and `errorDetail`. */
  readonly options: ResolvedGuardOptions
  /** Pays for one operation a socket carries, before it is checked; a rejection refuses it. */
  readonly charge?: ((request: FastifyRequest) => Promise<void>) | undefined
}

/** Where serialized errors come from (see `relevelSerializedErrors` in graphql/error-formatter.ts). */
export type SerializedOrigin = 'formatter' | 'socket' | 'failure'

/** The GraphQL capability's functions the profile enforcer runs, as graphql/ defines them. */
export interface GraphqlEnforcementHooks {
  /** Adds the guards' hooks to one mercurius instance (its `app.graphql`); refuses one guarded twice. */
  installGraphqlGuards(component: string, graphql: unknown, options: ResolvedGuardOptions): void
  /** Holds the WebSocket connections of `app`'s mercurius routes to `rulesOf(app.graphql)`. */
  guardWebSockets(
    app: FastifyInstance,
    component: string,
    rulesOf: (graphql: unknown) => SocketRules | undefined,
  ): void
  /** The app's part of the tracer (`app.graphqlTracer`, the request context); once per app. */
  prepareTracing(app: FastifyInstance, tracer: GraphQLTracer, component: string): void
  /** Traces one mercurius instance registered on `instance` or one of its ancestors. */
  attachTracing(instance: object, graphql: unknown, tracer: GraphQLTracer): void
  /** Whether an error that reached mercurius's error handler is a failure, its text not for a client. */
  isFailure(error: unknown): boolean
  /** A response (or batch) whose errors another formatter serialized, at `options`' level. */
  relevelResponse(
    payload: unknown,
    options: ResolvedGuardOptions,
    requestId: string,
    failed?: boolean,
  ): unknown
  /** Errors another formatter serialized, brought to `options`' level. */
  relevelSerializedErrors(
    errors: readonly GraphQLFormattedError[],
    options: ResolvedGuardOptions,
    requestId: string | undefined,
    origin?: SerializedOrigin,
  ): GraphQLFormattedError[]
}

/** The hooks and the public plugin whose module provided them. */
interface Provision {
  readonly anchor: typeof graphqlGuards
  readonly hooks: GraphqlEnforcementHooks
}

const enforcement = new Seam<Provision>(
  'GraphQL enforcement',
  'src/graphql/fastify.ts (graphqlGuards)',
)

/**
 * Called once, by src/graphql/fastify.ts as it loads, with the `graphqlGuards`
 * plugin it defines; a second caller is refused.
 */
export function provideGraphqlEnforcement(
  anchor: typeof graphqlGuards,
  hooks: GraphqlEnforcementHooks,
): void {
  enforcement.provide({ anchor, hooks })
}

/**
 * The hooks, for the profile enforcer. `anchor` is the public `graphqlGuards`
 * plugin, imported from graphql/index.ts: the package is `sideEffects:
 * false`, so a bundler keeps a module only for an export that is used, and
 * would drop graphql/fastify.ts (and its provide call with it) from an app
 * that uses the profiles alone; naming the plugin here keeps that module,
 * and the check below that it is the one that provided.
 */
export function graphqlEnforcement(anchor: typeof graphqlGuards): GraphqlEnforcementHooks {
  const provided = enforcement.use()
  if (provided.anchor !== anchor) {
    throw new SeamError(`${enforcement.name} was provided by another module than graphqlGuards'`)
  }
  return provided.hooks
}
