/**
 * The guards and the tracer as one Apollo Server plugin. Typed
 * structurally: @apollo/server is not imported, so this module loads, and
 * its declarations type-check, without it.
 *
 * Apollo Server takes no custom parse or execute from a plugin, and what a
 * plugin throws it answers with 500 unless the error carries
 * `extensions.http`; it also rewrites the code of every validation error to
 * `GRAPHQL_VALIDATION_FAILED`. So:
 * - `didResolveSource` (before Apollo parses): the token and nesting pass
 *   on the text and the nesting bound on the variables. Apollo answers 500
 *   to a throw there and parses the text anyway, so the refusal replaces
 *   the parse or validation errors, or is thrown from `didResolveOperation`
 *   (give Apollo `parseOptions: { maxTokens }` too, so its parser stops
 *   early);
 * - `didResolveOperation` (after validation, with the document, the
 *   variables and the context): every limit, introspection for the caller,
 *   persisted-only, `onAccept` / `onReject`, `chargeCost`;
 * - every refusal is a GraphQLError with our code and `extensions.http`
 *   (400, or the `chargeCost` refusal's status and headers), so Apollo
 *   answers it with that status and the code intact;
 * - `didEncounterErrors` gives our code back to a validation error that
 *   wraps one of ours (`validationRules: createValidationRules(...)` given to
 *   Apollo), and `willSendResponse` removes "Did you mean …?" from every
 *   error sent;
 * - with a tracer, the operation span starts in `requestDidStart`, is named
 *   in `didResolveOperation` and ends in `willSendResponse` with the errors;
 *   resolvers run in its context (it is kept on `contextValue`, as under
 *   mercurius), so `traceDataAccess` spans are its children.
 */
import { context as otelContext } from '@opentelemetry/api'
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql'
import { SECURITY_ERROR_CODES } from '../errors.js'
import { type GraphqlRuntime, graphqlRuntime } from '../internal/graphql-runtime.js'
import { sourceNestingRejection, sourceRejection, variablesRejection } from './check.js'
import { costRefusal, OperationChecker } from './decision.js'
import { LIMIT_CODES } from './errors.js'
import { markIntrospectionPerRequest } from './rules.js'
import { parseServerOptions, type ServerGuardOptions } from './servers.js'
import { stripFieldSuggestions } from './suggestions.js'
import { kOperation, NOT_RECORDING, type OperationTrace } from './tracing/tracer.js'

/** Options of {@link apolloGraphqlGuards}: guard options whose callbacks take Apollo's `contextValue`. */
export type ApolloGuardOptions<C = Record<string, unknown>> = ServerGuardOptions<C>

/** The parts of Apollo Server's `GraphQLRequestContext` the plugin reads. */
interface RequestContext {
  readonly contextValue: unknown
  readonly schema: GraphQLSchema
  readonly source?: string | undefined
  readonly document?: DocumentNode | undefined
  readonly operationName?: string | null | undefined
  readonly request: {
    readonly variables?: Readonly<Record<string, unknown>> | undefined
    readonly operationName?: string | undefined
  }
  readonly errors?: readonly GraphQLError[] | undefined
  readonly response: {
    readonly body?: {
      readonly kind: string
      readonly singleResult?: { errors?: readonly { message: string }[] | undefined }
    }
  }
}

/** The request listener {@link ApolloGuardsPlugin.requestDidStart} resolves to. */
export interface ApolloGuardsListener {
  didResolveSource(requestContext: RequestContext): Promise<void>
  didResolveOperation(requestContext: RequestContext): Promise<void>
  didEncounterErrors(requestContext: RequestContext): Promise<void>
  willSendResponse(requestContext: RequestContext): Promise<void>
}

/**
 * The Apollo Server plugin {@link apolloGraphqlGuards} returns. Methods, so
 * it is assignable to `ApolloServerPlugin` without importing it.
 */
export interface ApolloGuardsPlugin {
  serverWillStart(service: { readonly schema: GraphQLSchema }): Promise<void>
  requestDidStart(requestContext: RequestContext): Promise<ApolloGuardsListener>
}

const OUR_CODES: ReadonlySet<string> = new Set(SECURITY_ERROR_CODES)

/** A refusal as Apollo answers it: `extensions.http` sets the status and headers (never sent). */
function answered(
  runtime: GraphqlRuntime,
  error: GraphQLError,
  status = 400,
  headers: Readonly<Record<string, string>> = {},
): GraphQLError {
  // Apollo reads `http.headers` as a Map (its HeaderMap is one); yoga's
  // augmentation of GraphQLErrorExtensions types it as a record, hence the cast.
  const extensions = {
    ...error.extensions,
    http: { status, headers: new Map(Object.entries(headers)) },
  }
  return new runtime.GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    extensions: extensions as never,
  })
}

/**
 * The GraphQL guards, and optionally the tracer, as an Apollo Server
 * plugin: depth, complexity (list sizes from the request's variables),
 * aliases, directives, tokens, introspection (`'authenticated'` decided per
 * request with `isAuthenticated(contextValue)`), persisted-only, cost
 * charged through `chargeCost(contextValue, cost)`, `onAccept` / `onReject`
 * and `reportOnly`. A refused operation is answered 400 (a `chargeCost`
 * refusal its own status, `Retry-After` included) with our `ERR_GRAPHQL_*`
 * code in `extensions.code`; "Did you mean …?" is removed from every error;
 * with `tracer`, a span per operation. Options are parsed here: a bad one
 * throws `ERR_CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * import { ApolloServer } from '@apollo/server'
 * import { apolloGraphqlGuards, GraphQLTracer } from 'fraiseql-security/graphql'
 * const server = new ApolloServer({
 *   typeDefs, resolvers,
 *   plugins: [apolloGraphqlGuards({ maxDepth: 10, maxComplexity: 1000, maxTokens: 2000, introspection: 'disabled', tracer: new GraphQLTracer() })],
 * })
 * ```
 */
export function apolloGraphqlGuards<C = Record<string, unknown>>(
  options?: ApolloGuardOptions<C>,
): ApolloGuardsPlugin {
  const { o, tracer } = parseServerOptions('apolloGraphqlGuards', options as never)
  const runtime = graphqlRuntime('apolloGraphqlGuards')
  const checker = new OperationChecker(o, runtime)
  const isAuthenticated = o.isAuthenticated as
    | ((context: unknown) => boolean | Promise<boolean>)
    | undefined
  const charge = o.chargeCost as ((context: unknown, cost: number) => unknown) | undefined

  return {
    async serverWillStart({ schema }) {
      if (o.introspection === 'authenticated') markIntrospectionPerRequest(schema)
    },

    async requestDidStart(start) {
      const holder = start.contextValue as Record<symbol, unknown> | null | undefined
      const canHold = typeof holder === 'object' && holder !== null
      let t: OperationTrace | undefined
      if (tracer !== undefined) {
        tracer.instrumentForHooks(start.schema)
        t = tracer.startOperation(otelContext.active(), true)
        if (canHold) holder[kOperation] = t ?? NOT_RECORDING
      }

      /** Ends the span with a refusal, then throws it for Apollo to answer. */
      const refuse = (error: GraphQLError): never => {
        if (t !== undefined) tracer!.failOperation(t, error)
        throw error
      }

      // A refusal of the text found in didResolveSource. Apollo answers
      // 500 to anything thrown there, and parses the text whatever a plugin
      // does: the refusal is answered in place of the parse or validation
      // errors (didEncounterErrors) or thrown from didResolveOperation.
      let pending: GraphQLError | undefined

      /** A text-level refusal, reported; kept unless reportOnly lets it through. */
      const refuseText = async (
        rc: RequestContext,
        error: GraphQLError | undefined,
        alwaysEnforced: boolean,
      ): Promise<void> => {
        if (error === undefined || pending !== undefined) return
        const kept = await checker.refuseSource(
          error,
          rc.contextValue,
          alwaysEnforced,
          rc.request.operationName,
        )
        if (kept !== undefined) pending = answered(runtime, kept)
      }

      return {
        async didResolveSource(rc) {
          const source = rc.source
          if (typeof source === 'string') {
            const error = sourceRejection(runtime, o, source)
            const nesting = error?.extensions.code === LIMIT_CODES.depth
            await refuseText(rc, error, nesting)
            if (error !== undefined && !nesting) {
              await refuseText(rc, sourceNestingRejection(runtime, o, source), true)
            }
          }
          await refuseText(rc, variablesRejection(runtime, o, rc.request.variables), true)
        },

        async didResolveOperation(rc) {
          if (pending !== undefined) refuse(pending)
          const document = rc.document!
          const operationName = rc.request.operationName
          if (t !== undefined) {
            tracer!.describeOperation(t, document, operationName, rc.request.variables, true)
          }
          const { errors, cost } = await checker.check(
            {
              schema: rc.schema,
              document,
              operationName,
              variables: rc.request.variables,
              authenticated: async () => (await isAuthenticated?.(rc.contextValue)) === true,
            },
            rc.contextValue,
          )
          // Apollo answers one thrown error: the first refusal (the rest
          // went to onReject with it).
          if (errors.length > 0) refuse(answered(runtime, errors[0]!))
          if (charge === undefined) return
          try {
            await charge(rc.contextValue, cost)
          } catch (err) {
            const refusal = costRefusal(runtime, err)
            if (refusal === undefined) throw err
            refuse(answered(runtime, refusal.error, refusal.status, refusal.headers))
          }
        },

        async didEncounterErrors(rc) {
          // Apollo formats this very array after the hook: an error put in
          // its place is what the client gets.
          const errors = rc.errors as GraphQLError[] | undefined
          if (errors === undefined) return
          if (pending !== undefined) {
            // The text was refused before Apollo parsed it: that is the answer
            // (Apollo's parse of it may have overflowed or hit maxTokens).
            errors.splice(0, errors.length, pending)
            if (t !== undefined) tracer!.failOperation(t, pending)
            return
          }
          for (let i = 0; i < errors.length; i++) {
            const e = errors[i]!
            const inner = e.originalError as GraphQLError | undefined | null
            const code = inner?.extensions?.code
            if (
              e.extensions.code === 'GRAPHQL_VALIDATION_FAILED' &&
              typeof code === 'string' &&
              OUR_CODES.has(code)
            ) {
              errors[i] = answered(runtime, inner!)
            }
          }
        },

        async willSendResponse(rc) {
          const body = rc.response.body
          const sent = body?.kind === 'single' ? body.singleResult?.errors : undefined
          if (o.blockFieldSuggestions && sent !== undefined) {
            for (const e of sent as { message: string }[])
              e.message = stripFieldSuggestions(e.message)
          }
          if (t !== undefined) tracer!.endOperation(t, { errors: rc.errors ?? sent ?? [] } as never)
        },
      }
    },
  }
}
