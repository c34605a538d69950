/**
 * The profile's GraphQL settings as a graphql-yoga (envelop) plugin and an
 * Apollo Server plugin, for those servers mounted on a Fastify app the
 * enforcer protects: `useGraphqlGuards` / `apolloGraphqlGuards` built from
 * the profile (depth, complexity, aliases, directives, tokens,
 * introspection, suggestions, persisted-only, cost charged to the
 * principal, the tracer), plus what mercurius gets from the enforcer's own
 * hooks: the operations and fields noted for the audit record, and every
 * error of the answer brought to the profile's `errorDetail`. Batches and
 * manifest hashes are handled before the server runs, by the GraphQL step's
 * Fastify hooks on the routes these plugins claim.
 *
 * Each plugin finds the Fastify request of the operation in the
 * AsyncLocalStorage the GraphQL step enters on a guarded route; an
 * operation that comes without one (the server reached some other way) is
 * refused: no setting of the profile can be applied to it.
 */
import type { FastifyRequest } from 'fastify'
import type { DocumentNode, GraphQLError, GraphQLFormattedError, GraphQLSchema } from 'graphql'
import type { z } from 'zod'
import { SECURITY_ERROR_CODES } from '../../errors.js'
import {
  type ApolloGuardsListener,
  apolloGraphqlGuards,
  checkDocument,
  type EnvelopGuardsPlugin,
  GraphqlGuardOptionsSchema,
  graphqlGuards as graphqlGuardsPlugin,
  type ServerGuardOptions,
  useGraphqlGuards,
} from '../../graphql/index.js'
import {
  type GraphqlEnforcementHooks,
  graphqlEnforcement,
} from '../../internal/graphql-enforcement.js'
import { graphqlRuntime } from '../../internal/graphql-runtime.js'
import { parseOptions } from '../../internal/options.js'
import { GraphqlUnguardedError } from '../errors.js'
import type { GraphqlRoutes } from '../graphql-routes.js'
import { notesOf } from './audit-notes.js'
import { noteOperations } from './operation-notes.js'
import type { StepContext } from './step.js'

/** {@link EnvelopGuardsPlugin} with the hook through which it claims its yoga's endpoint. */
export interface ProfileYogaPlugin extends EnvelopGuardsPlugin {
  /** graphql-yoga calls it once, from `createYoga`. */
  onYogaInit(payload: { readonly yoga: { readonly graphqlEndpoint: string } }): void
}

/** The parts of Apollo Server's request context the profile plugin reads beyond the guards'. */
interface ApolloRequestContext {
  readonly schema: GraphQLSchema
  readonly document?: DocumentNode | undefined
  readonly request: { readonly operationName?: string | undefined }
  readonly response: {
    readonly body?: {
      readonly kind: string
      readonly singleResult?: { errors?: readonly GraphQLFormattedError[] | undefined }
    }
  }
}

/** The Apollo Server plugin of a profile (an `ApolloServerPlugin`, typed structurally). */
export interface ProfileApolloPlugin {
  serverWillStart(service: { readonly schema: GraphQLSchema }): Promise<void>
  requestDidStart(requestContext: never): Promise<ApolloGuardsListener>
}

type ResolvedGuardOptions = z.output<typeof GraphqlGuardOptionsSchema>

const OUR_CODES: ReadonlySet<string> = new Set(SECURITY_ERROR_CODES)

/** The code Apollo Server and graphql-yoga give an error they did not expect (a crash). */
const INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR'

/**
 * Serialized errors at the profile's level. An error the server marked as
 * unexpected is a failure whatever its path (its message may carry a
 * connection string); everything else as mercurius's fallback levels it.
 */
function relevel(
  errors: readonly GraphQLFormattedError[],
  o: ResolvedGuardOptions,
  requestId: string,
  relevelSerializedErrors: GraphqlEnforcementHooks['relevelSerializedErrors'],
): GraphQLFormattedError[] {
  const id = o.errorDetail === 'minimal' ? requestId : undefined
  return errors.map((e) => {
    const crashed = e.extensions?.code === INTERNAL_SERVER_ERROR
    return relevelSerializedErrors([e], o, id, crashed ? 'failure' : 'formatter')[0]!
  })
}

/** Notes the first of our codes among the answer's errors, for the audit record. */
function noteCode(request: FastifyRequest, errors: readonly { extensions?: unknown }[]): void {
  const notes = notesOf(request)
  if (notes.code !== null) return
  for (const e of errors) {
    const code = (e.extensions as { code?: unknown } | undefined)?.code
    if (typeof code === 'string' && OUR_CODES.has(code)) {
      notes.code = code
      return
    }
  }
}

/** What both plugins share: the request lookup, the guard options and the error level. */
function common(context: StepContext, routes: GraphqlRoutes, component: string) {
  if (context.options.steps.graphqlGuards?.enabled === false) {
    throw new GraphqlUnguardedError(
      'graphqlGuards',
      `ProfileEnforcer.${component}: the graphqlGuards step is switched off (steps.graphqlGuards.enabled: false), so there are no GraphQL guards to give the server.`,
    )
  }
  const { profile: p, budget, tracer } = context
  const requestOf = (): FastifyRequest => {
    const request = routes.current()
    if (request === undefined) {
      throw new GraphqlUnguardedError(
        'graphqlGuards',
        `ProfileEnforcer.${component}: an operation reached the server outside a route of the app given to applyTo, so profile ${p.name}'s settings cannot be applied to it.`,
      )
    }
    return request
  }
  // errorDetail is levelled below (the servers' own masking differs); the
  // callbacks are this plugin's, keyed by the Fastify request.
  const {
    errorDetail: _detail,
    requestId: _id,
    isAuthenticated: _auth,
    chargeCost: _charge,
    onAccept: _accept,
    onReject: _reject,
    ...guard
  } = context.guardOptions()
  const options: ServerGuardOptions<unknown> = {
    ...guard,
    isAuthenticated: () => (requestOf().auth ?? null) !== null,
    ...(p.costRateLimit
      ? { chargeCost: (_c: unknown, cost: number) => budget.chargeCost(requestOf(), cost) }
      : {}),
    ...(tracer === undefined ? {} : { tracer }),
  }
  const levels = parseOptions('ProfileEnforcer', GraphqlGuardOptionsSchema, {
    errorDetail: p.errorDetail,
    blockFieldSuggestions: p.blockFieldSuggestions,
  })
  // mercurius's levelling (graphql/error-formatter.ts), reached through the
  // seam (src/internal/graphql-enforcement.ts) when the plugin is made, not
  // on the first error.
  const { relevelSerializedErrors } = graphqlEnforcement(graphqlGuardsPlugin)
  return {
    requestOf,
    options,
    guard,
    levels,
    fieldAccess: p.auditFieldAccess,
    relevelSerializedErrors,
  }
}

/** The yoga plugin of `enforcer.graphqlYogaPlugin()`. */
export function yogaPluginFor(context: StepContext, routes: GraphqlRoutes): ProfileYogaPlugin {
  const { requestOf, options, levels, fieldAccess, relevelSerializedErrors } = common(
    context,
    routes,
    'graphqlYogaPlugin()',
  )
  const guards = useGraphqlGuards(options)
  const runtime = graphqlRuntime('ProfileEnforcer')

  /** A GraphQLError at the profile's level; `http` (yoga's status, never sent) kept. */
  const atLevel = (e: GraphQLError, requestId: string): GraphQLError => {
    const [f] = relevel([e.toJSON()], levels, requestId, relevelSerializedErrors)
    const http = (e.extensions as { http?: unknown }).http
    const extensions = { ...f!.extensions, ...(http === undefined ? {} : { http }) }
    return new runtime.GraphQLError(f!.message, {
      ...(f!.locations === undefined
        ? {}
        : { nodes: e.nodes ?? null, source: e.source ?? null, positions: e.positions ?? null }),
      path: f!.path ?? null,
      extensions: extensions as never,
    })
  }

  return {
    onYogaInit({ yoga }) {
      routes.claim(yoga.graphqlEndpoint)
    },
    async onParams(payload) {
      requestOf()
      await guards.onParams(payload)
    },
    onParse: (payload) => guards.onParse(payload),
    onValidate: (payload) => guards.onValidate(payload),
    async onExecute(payload) {
      const request = requestOf()
      let refused = false
      const watched = Object.create(payload, {
        setResultAndStopExecution: {
          value: (result: never) => {
            refused = true
            payload.setResultAndStopExecution(result)
          },
        },
      }) as typeof payload
      await guards.onExecute(watched)
      if (refused) return
      const { schema, document, operationName } = payload.args
      noteOperations(request, schema, document, operationName, fieldAccess)
    },
    onSubscribe: (payload) => guards.onSubscribe(payload),
    onExecutionResult(payload) {
      let result = payload.result
      guards.onExecutionResult({
        result,
        setResult: (next: never) => {
          result = next
        },
      })
      const errors = (result as { errors?: unknown } | null | undefined)?.errors
      if (Array.isArray(errors) && errors.length > 0) {
        const request = requestOf()
        noteCode(request, errors as GraphQLError[])
        if (levels.errorDetail !== 'full') {
          const id = String(request.id)
          const out = (errors as GraphQLError[]).map((e) => atLevel(e, id))
          result = { ...(result as object), errors: out }
        }
      }
      if (result !== payload.result) payload.setResult(result as never)
    },
  }
}

/** The Apollo Server plugin of `enforcer.apolloPlugin()`, claiming `path`. */
export function apolloPluginFor(
  context: StepContext,
  routes: GraphqlRoutes,
  path: string,
): ProfileApolloPlugin {
  const { requestOf, options, guard, levels, fieldAccess, relevelSerializedErrors } = common(
    context,
    routes,
    'apolloPlugin()',
  )
  const guards = apolloGraphqlGuards(options)
  const runtime = graphqlRuntime('ProfileEnforcer')

  /**
   * Apollo Server runs graphql-js's validation before any plugin sees the
   * document and takes no validation rule from one: a document it refuses
   * (a directive repeated past `maxDirectives` is also invalid) is answered
   * with its code. The limits are measured here too, so the refusal names
   * the limit it breached, as under mercurius and graphql-yoga.
   */
  const limitRefusal = (rc: ApolloRequestContext, request: FastifyRequest) => {
    if (rc.document === undefined) return undefined
    const [first] = checkDocument(rc.document, guard, {
      schema: rc.schema,
      ...(rc.request.operationName === undefined
        ? {}
        : { operationName: rc.request.operationName }),
      authenticated: (request.auth ?? null) !== null,
    })
    if (first === undefined) return undefined
    return new runtime.GraphQLError(first.message, {
      nodes: first.nodes ?? null,
      extensions: { ...first.extensions, http: { status: 400, headers: new Map() } } as never,
    })
  }
  return {
    async serverWillStart(service) {
      await guards.serverWillStart(service)
      // Claimed once the plugin is part of a started server, never before.
      routes.claim(path)
    },
    async requestDidStart(start) {
      const request = requestOf()
      const inner = await guards.requestDidStart(start)
      return {
        didResolveSource: (rc) => inner.didResolveSource(rc),
        async didResolveOperation(rc) {
          await inner.didResolveOperation(rc)
          const r = rc as unknown as ApolloRequestContext
          if (r.document !== undefined) {
            noteOperations(request, r.schema, r.document, r.request.operationName, fieldAccess)
          }
        },
        async didEncounterErrors(rc) {
          await inner.didEncounterErrors(rc)
          const errors = (rc as unknown as { errors?: GraphQLError[] }).errors
          if (errors === undefined || errors.length === 0) return
          const invalid = errors.every((e) => e.extensions?.code === 'GRAPHQL_VALIDATION_FAILED')
          if (!invalid) return
          const ours = limitRefusal(rc as unknown as ApolloRequestContext, request)
          if (ours !== undefined) errors.splice(0, errors.length, ours)
        },
        async willSendResponse(rc) {
          await inner.willSendResponse(rc)
          const single = (rc as unknown as ApolloRequestContext).response.body?.singleResult
          const errors = single?.errors
          if (single === undefined || errors === undefined || errors.length === 0) return
          noteCode(request, errors)
          if (levels.errorDetail !== 'full') {
            single.errors = relevel(errors, levels, String(request.id), relevelSerializedErrors)
          }
        },
      }
    },
  }
}
