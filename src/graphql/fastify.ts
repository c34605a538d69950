/**
 * `graphqlGuards`: the guards as mercurius hooks, registered after mercurius.
 *
 * mercurius caches each query string's parse and validation and, on a cache
 * hit, skips `preValidation` and the validation rules; only `preExecution`
 * runs for every operation (each item of a batch included). So everything
 * that must hold for every request is checked there: the limits again (from
 * the per-document cache, so a hit costs a WeakMap lookup), introspection
 * for the caller at hand, persisted-only, and the cost charge. With this
 * plugin, forgetting the `mercuriusGuardOptions` spread is never a hole.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql'
import { ConfigError } from '../errors.js'
import { provideGraphqlEnforcement } from '../internal/graphql-enforcement.js'
import { rejection } from '../internal/graphql-rejection.js'
import { type GraphqlRuntime, graphqlRuntime } from '../internal/graphql-runtime.js'
import {
  type HookContext,
  isMercurius,
  requestedOperationName,
  requestParameter,
} from '../internal/mercurius-context.js'
import {
  sourceNestingRejection,
  sourceRejection,
  tokenRejection,
  variablesRejection,
} from './check.js'
import { checkObservers, costRefusal, OperationChecker } from './decision.js'
import { isFailure, relevelResponse, relevelSerializedErrors } from './error-formatter.js'
import { GraphqlRejectedError, JSON_DOCUMENT_REFUSED } from './errors.js'
import {
  type GraphqlGuardOptions,
  parseGuardOptions,
  type ResolvedGuardOptions,
} from './options.js'
import { markIntrospectionPerRequest } from './rules.js'
import { looksLikeJson } from './source.js'
import { attachTracing, prepareTracing } from './tracing/mercurius.js'
import { guardWebSockets } from './websocket.js'

type Variables = Readonly<Record<string, unknown>> | null | undefined

/** The part of mercurius's `app.graphql` the plugin uses. */
interface MercuriusHooks {
  addHook(
    name: 'preParsing',
    hook: (schema: GraphQLSchema, source: string, context: HookContext) => Promise<void>,
  ): void
  addHook(
    name: 'preValidation',
    hook: (schema: GraphQLSchema, document: DocumentNode, context: HookContext) => Promise<void>,
  ): void
  addHook(
    name: 'preExecution',
    hook: (
      schema: GraphQLSchema,
      document: DocumentNode,
      context: HookContext,
      variables: Variables,
    ) => Promise<void>,
  ): void
  addHook(
    name: 'preSubscriptionExecution',
    hook: (schema: GraphQLSchema, document: DocumentNode, context: HookContext) => Promise<void>,
  ): void
}

/** The per-request checks, framework glue aside (the decision itself is {@link OperationChecker}'s). */
class OperationGuard {
  readonly #o: ResolvedGuardOptions
  readonly #runtime: GraphqlRuntime
  readonly #checker: OperationChecker

  constructor(o: ResolvedGuardOptions, runtime: GraphqlRuntime) {
    this.#o = o
    this.#runtime = runtime
    this.#checker = new OperationChecker(o, runtime)
  }

  async check(
    schema: GraphQLSchema,
    document: DocumentNode,
    context: HookContext,
    variables: Variables,
    accept = true,
  ): Promise<void> {
    const o = this.#o
    const request = context.reply?.request ?? context.request
    const isAuthenticated = o.isAuthenticated as
      | ((request: FastifyRequest) => boolean | Promise<boolean>)
      | undefined
    const { errors, cost } = await this.#checker.check(
      {
        schema,
        document,
        operationName: requestedOperationName(context),
        variables,
        authenticated: async () =>
          request !== undefined && (await isAuthenticated?.(request)) === true,
      },
      request,
      accept,
    )
    if (errors.length > 0) throw new GraphqlRejectedError(errors)
    if (!accept) return
    const charge = o.chargeCost as
      | ((request: FastifyRequest, cost: number) => void | Promise<void>)
      | undefined
    if (charge !== undefined && request !== undefined) {
      try {
        await charge(request, cost)
      } catch (err) {
        throw this.#refusal(err, context.reply)
      }
    }
  }

  /**
   * A refusal from `chargeCost`: a SecurityError with a status (429 from the
   * rate limiter, 503 when its store is down) becomes a GraphQL rejection
   * with that status and code, its headers (`Retry-After`, `RateLimit`) on
   * the reply. Anything else is a failure and passes through as it is.
   */
  #refusal(err: unknown, reply: FastifyReply | undefined): unknown {
    const refusal = costRefusal(this.#runtime, err)
    if (refusal === undefined) return err
    if (reply !== undefined) {
      for (const [name, value] of Object.entries(refusal.headers)) reply.header(name, value)
    }
    return new GraphqlRejectedError([refusal.error], refusal.status, { cause: refusal.cause })
  }

  /** The token limit, from the tokens the parser already linked. */
  async tokens(document: DocumentNode, context: HookContext): Promise<void> {
    await this.#refuse(tokenRejection(this.#runtime, this.#o, document), context, false)
  }

  /**
   * The token and nesting limits on the text, before graphql-js parses it
   * (see check.ts). Under `reportOnly` a token breach is reported and let
   * through; the nesting bound, which keeps the parser's stack, is not.
   */
  async scan(source: string, context: HookContext): Promise<void> {
    const error = sourceRejection(this.#runtime, this.#o, source)
    const nesting = error?.extensions.code === 'ERR_GRAPHQL_DEPTH_LIMIT'
    await this.#refuse(error, context, nesting)
    // A token breach let through (reportOnly) still meets the nesting bound.
    if (error !== undefined && !nesting) {
      await this.#refuse(sourceNestingRejection(this.#runtime, this.#o, source), context, true)
    }
  }

  /** The nesting bound on the operation's variables, before mercurius coerces them. */
  async variables(context: HookContext): Promise<void> {
    const variables = requestParameter(context, 'variables')
    await this.#refuse(variablesRejection(this.#runtime, this.#o, variables), context, true)
  }

  async refuseJson(context: HookContext): Promise<void> {
    const error = rejection(
      this.#runtime,
      'ERR_GRAPHQL_JSON_DOCUMENT_REFUSED',
      JSON_DOCUMENT_REFUSED,
    )
    await this.#refuse(error, context, true)
  }

  async #refuse(
    error: GraphQLError | undefined,
    context: HookContext,
    alwaysEnforced: boolean,
  ): Promise<void> {
    if (error === undefined) return
    const request = context.reply?.request ?? context.request
    const answered = await this.#checker.refuseSource(
      error,
      request,
      alwaysEnforced,
      requestedOperationName(context),
    )
    if (answered !== undefined) throw new GraphqlRejectedError([answered])
  }
}

/** The `app.graphql` objects that already carry the guards: twice would charge every cost twice. */
const guarded = new WeakSet<object>()

/**
 * Adds the guards' hooks to one mercurius instance (its `app.graphql`), with
 * options already parsed. The plugin below and the profile enforcer (which
 * may meet mercurius only after it was registered) both come through here.
 */
export function installGraphqlGuards(
  component: string,
  graphql: unknown,
  o: ResolvedGuardOptions,
): void {
  checkObservers(component, o)
  if (o.introspection === 'authenticated' && o.isAuthenticated === undefined) {
    throw new ConfigError(component, [
      { path: ['isAuthenticated'], message: "is required when introspection is 'authenticated'" },
    ])
  }
  if (!isMercurius(graphql)) {
    throw new ConfigError(component, [
      { path: [], message: 'register mercurius before graphqlGuards' },
    ])
  }
  if (guarded.has(graphql)) {
    throw new ConfigError(component, [
      {
        path: [],
        message:
          'this mercurius instance already has the GraphQL guards (a ProfileEnforcer installs them)',
      },
    ])
  }
  guarded.add(graphql)
  const hooks = graphql as MercuriusHooks
  const guard = new OperationGuard(o, graphqlRuntime(component))
  const perRequestIntrospection = o.introspection === 'authenticated'

  hooks.addHook('preParsing', async (schema, source, context) => {
    // Validation rules run next, on this schema: tell them this plugin
    // decides introspection per request, so they need not refuse it.
    if (perRequestIntrospection) markIntrospectionPerRequest(schema)
    // mercurius executes a query that fails to parse as GraphQL but parses
    // as JSON as a document AST: no token limit, any size. Not here.
    if (looksLikeJson(source)) await guard.refuseJson(context)
    await guard.scan(source, context)
    // The only hook that runs before mercurius coerces the variables.
    await guard.variables(context)
  })

  // With observers, a document mercurius has not validated yet is decided
  // here, where the request is known: the spread's validation rules would
  // refuse it first, without it (and without `onReject`). Rules never see a
  // refused document; a cached valid one skips this hook, not preExecution.
  const observed = o.onReject !== undefined || o.onAccept !== undefined
  if (o.maxTokens !== undefined || (observed && !o.reportOnly)) {
    hooks.addHook('preValidation', async (schema, document, context) => {
      // For a document given as an AST (no text to scan): the count stops
      // validation, the expensive part.
      await guard.tokens(document, context)
      if (observed && !o.reportOnly) {
        await guard.check(schema, document, context, undefined, false)
      }
    })
  }

  hooks.addHook('preExecution', async (schema, document, context, variables) => {
    await guard.check(schema, document, context, variables)
  })

  // Subscriptions over WebSocket are parsed without parse options and never
  // validated by mercurius: this hook is the only check they get.
  hooks.addHook('preSubscriptionExecution', async (schema, document, context) => {
    if (document.loc === undefined) await guard.refuseJson(context)
    await guard.tokens(document, context)
    await guard.check(schema, document, context, undefined)
  })
}

async function graphqlGuardsPlugin(
  app: FastifyInstance,
  options: GraphqlGuardOptions,
): Promise<void> {
  const o = parseGuardOptions('graphqlGuards', options)
  const graphql = (app as { graphql?: unknown }).graphql
  installGraphqlGuards('graphqlGuards', graphql, o)
  // Subscriptions over WebSocket: the checks mercurius's parse comes before.
  const rules = { options: o }
  guardWebSockets(app, 'graphqlGuards', (g) => (g === graphql ? rules : undefined))
}

/**
 * The GraphQL guards as mercurius hooks. Register it after mercurius, with
 * the options given to {@link mercuriusGuardOptions}: it enforces depth,
 * complexity, aliases, directives and introspection on every operation in
 * `preExecution` (mercurius skips validation for cached queries), decides
 * `introspection: 'authenticated'` per request with `isAuthenticated`,
 * charges each operation's cost through `chargeCost`, refuses JSON
 * documents (a `maxTokens` bypass) and checks WebSocket subscriptions.
 *
 * @example
 * ```ts
 * import mercurius from 'mercurius'
 * import { graphqlGuards, mercuriusGuardOptions } from 'fraiseql-security/graphql'
 * const opts = { maxDepth: 10, maxComplexity: 1000, introspection: 'authenticated', isAuthenticated: (req) => req.auth !== null }
 * await app.register(mercurius, { schema, resolvers, ...mercuriusGuardOptions(opts) })
 * await app.register(graphqlGuards, opts)
 * ```
 */
export const graphqlGuards = fp(graphqlGuardsPlugin, {
  name: 'fraiseql-security/graphql-guards',
  fastify: '5.x',
})

// The profile enforcer runs this module's installer, and those of the
// WebSocket checks, the tracer and the error levelling, on the mercurius
// instances it meets (src/internal/graphql-enforcement.ts says why they are
// handed over, not published). Provided here, under the plugin the enforcer
// names to reach them, so that a bundler keeping the enforcer keeps this.
provideGraphqlEnforcement(graphqlGuards, {
  installGraphqlGuards,
  guardWebSockets,
  prepareTracing,
  attachTracing,
  isFailure,
  relevelResponse,
  relevelSerializedErrors,
})
