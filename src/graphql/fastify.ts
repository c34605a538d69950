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
import { ConfigError, SecurityError } from '../errors.js'
import { type HttpAnswerable, kHttpAnswer } from '../internal/reply/index.js'
import {
  type CostModel,
  cachedMetrics,
  costModelFor,
  type OperationMetrics,
  withVariables,
} from './analysis.js'
import {
  type IntrospectionVerdict,
  operationRejections,
  sourceRejection,
  tokenRejection,
  variablesRejection,
} from './check.js'
import { GraphqlRejectedError, JSON_DOCUMENT_REFUSED, rejection } from './errors.js'
import { type HookContext, requestedOperationName, requestParameter } from './mercurius-context.js'
import {
  type GraphqlGuardOptions,
  parseGuardOptions,
  type ResolvedGuardOptions,
} from './options.js'
import { markIntrospectionPerRequest } from './rules.js'
import { type GraphqlRuntime, graphqlRuntime } from './runtime.js'
import { looksLikeJson } from './source.js'
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

/**
 * The operation mercurius will execute: the only one, or the one the
 * request names (`operationName` of the body, of the batch item, or of the
 * query string). `undefined` when that cannot be told.
 */
function executedOperation(
  operations: readonly OperationMetrics[],
  context: HookContext,
): OperationMetrics | undefined {
  if (operations.length === 1) return operations[0]
  const name = requestedOperationName(context)
  if (name === undefined) return undefined
  return operations.find((m) => m.operation.name?.value === name)
}

/** The per-request checks, framework glue aside. */
class OperationGuard {
  readonly #o: ResolvedGuardOptions
  readonly #runtime: GraphqlRuntime
  readonly #model: CostModel
  /** Whether each document's source text is in the manifest (hashing once per document). */
  readonly #persisted = new WeakMap<DocumentNode, boolean>()

  constructor(o: ResolvedGuardOptions, runtime: GraphqlRuntime) {
    this.#o = o
    this.#runtime = runtime
    this.#model = costModelFor(o.complexity)
  }

  async check(
    schema: GraphQLSchema,
    document: DocumentNode,
    context: HookContext,
    variables: Variables,
  ): Promise<void> {
    const o = this.#o
    const runtime = this.#runtime
    const request = context.reply?.request ?? context.request
    const operations = cachedMetrics(document, this.#model, schema).operations
    const executed = executedOperation(operations, context)
    const errors: GraphQLError[] = []
    if (o.persistedOperations !== undefined && o.persistedOperationsOnly) {
      if (!this.#isPersisted(document)) {
        errors.push(
          rejection(
            runtime,
            'ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED',
            'Only persisted operations are allowed.',
          ),
        )
      }
    }
    const verdict = await this.#introspection(operations, request)
    let cost = 0
    for (const m of operations) {
      // List sizes given by variables are known now: measure the executed
      // operation with their values (the others cannot run in this request).
      const measured =
        m === executed ? withVariables(document, m, this.#model, schema, variables) : m
      operationRejections(runtime, o, measured, verdict, errors)
      if (executed === undefined ? measured.complexity > cost : m === executed) {
        cost = measured.complexity
      }
    }
    if (errors.length > 0) throw new GraphqlRejectedError(errors)
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

  /** What introspection may do; asks `isAuthenticated` only when an operation introspects. */
  async #introspection(
    operations: readonly OperationMetrics[],
    request: FastifyRequest | undefined,
  ): Promise<IntrospectionVerdict> {
    const mode = this.#o.introspection
    if (mode !== 'authenticated') return mode === 'enabled' ? 'allow' : 'disabled'
    if (!operations.some((m) => m.introspection !== 0)) return 'allow'
    const isAuthenticated = this.#o.isAuthenticated!
    return request !== undefined && (await isAuthenticated(request)) === true
      ? 'allow'
      : 'unauthenticated'
  }

  #isPersisted(document: DocumentNode): boolean {
    let ok = this.#persisted.get(document)
    if (ok === undefined) {
      // The text graphql-js parsed: what the client sent, or what the
      // manifest lookup substituted. No text, no proof it is in the manifest.
      const body = document.loc?.source.body
      ok = typeof body === 'string' && this.#o.persistedOperations!.hasQuery(body)
      this.#persisted.set(document, ok)
    }
    return ok
  }

  /**
   * A refusal from `chargeCost`: a SecurityError with a status (429 from the
   * rate limiter, 503 when its store is down) becomes a GraphQL rejection
   * with that status and code, its headers (`Retry-After`, `RateLimit`) on
   * the reply. Anything else is a failure and passes through as it is.
   */
  #refusal(err: unknown, reply: FastifyReply | undefined): unknown {
    if (!(err instanceof SecurityError) || err.statusCode === undefined) return err
    const answer = (err as Partial<HttpAnswerable>)[kHttpAnswer]
    if (reply !== undefined && typeof answer === 'function') {
      for (const [name, value] of Object.entries(answer.call(err).headers)) {
        if (name !== 'content-type') reply.header(name, value)
      }
    }
    return new GraphqlRejectedError(
      [rejection(this.#runtime, err.code, err.message)],
      err.statusCode,
      { cause: err },
    )
  }

  /** The token limit, from the tokens the parser already linked. */
  tokens(document: DocumentNode): void {
    const error = tokenRejection(this.#runtime, this.#o, document)
    if (error !== undefined) throw new GraphqlRejectedError([error])
  }

  /** The token and nesting limits on the text, before graphql-js parses it (see check.ts). */
  scan(source: string): void {
    const error = sourceRejection(this.#runtime, this.#o, source)
    if (error !== undefined) throw new GraphqlRejectedError([error])
  }

  /** The nesting bound on the operation's variables, before mercurius coerces them. */
  variables(context: HookContext): void {
    const variables = requestParameter(context, 'variables')
    const error = variablesRejection(this.#runtime, this.#o, variables)
    if (error !== undefined) throw new GraphqlRejectedError([error])
  }

  refuseJson(): never {
    throw new GraphqlRejectedError([
      rejection(this.#runtime, 'ERR_GRAPHQL_JSON_DOCUMENT_REFUSED', JSON_DOCUMENT_REFUSED),
    ])
  }
}

/** The `app.graphql` objects that already carry the guards: twice would charge every cost twice. */
const guarded = new WeakSet<object>()

/** Whether `value` is mercurius's `app.graphql` (the function with its hooks and schema API). */
export function isMercurius(value: unknown): value is MercuriusHooks & object {
  const g = value as { addHook?: unknown; replaceSchema?: unknown } | null | undefined
  return (
    typeof value === 'function' &&
    typeof g?.addHook === 'function' &&
    typeof g.replaceSchema === 'function'
  )
}

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
    if (looksLikeJson(source)) guard.refuseJson()
    guard.scan(source)
    // The only hook that runs before mercurius coerces the variables.
    guard.variables(context)
  })

  if (o.maxTokens !== undefined) {
    // For a document given as an AST (no text to scan): the count stops
    // validation, the expensive part.
    hooks.addHook('preValidation', async (_schema, document) => guard.tokens(document))
  }

  hooks.addHook('preExecution', async (schema, document, context, variables) => {
    await guard.check(schema, document, context, variables)
  })

  // Subscriptions over WebSocket are parsed without parse options and never
  // validated by mercurius: this hook is the only check they get.
  hooks.addHook('preSubscriptionExecution', async (schema, document, context) => {
    if (document.loc === undefined) guard.refuseJson()
    guard.tokens(document)
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
