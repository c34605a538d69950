/**
 * The GraphQL limits (depth, cost, aliases, directives, tokens, batch size,
 * introspection, persisted operations) on every mercurius instance of the
 * app, whenever it is registered, plus cost charging and error levelling on
 * mercurius's routes. The tracer attaches here too, to each instance the
 * guards hold.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { DocumentNode, GraphQLSchema } from 'graphql'
import {
  GraphqlGuardOptionsSchema,
  GraphqlRejectedError,
  graphqlGuards as graphqlGuardsPlugin,
  type PersistedOperations,
} from '../../graphql/index.js'
import { graphqlEnforcement } from '../../internal/graphql-enforcement.js'
import { rejection } from '../../internal/graphql-rejection.js'
import { graphqlRuntime } from '../../internal/graphql-runtime.js'
import {
  type HookContext,
  isMercuriusRoute,
  requestedOperationName,
} from '../../internal/mercurius-context.js'
import { parseOptions } from '../../internal/options.js'
import { BatchTooLargeError, GraphqlUnguardedError } from '../errors.js'
import type { GraphqlServer } from '../graphql-routes.js'
import { watchMercurius } from '../mercurius-watch.js'
import { noteOperations } from './operation-notes.js'
import type { EnforcerStep, StepContext } from './step.js'

/** The part of mercurius's `app.graphql` the enforcer uses. */
interface MercuriusHooks {
  addHook(
    name: 'preParsing',
    hook: (schema: unknown, source: string, context: BatchContext) => Promise<void>,
  ): void
  addHook(
    name: 'preExecution',
    hook: (schema: GraphQLSchema, document: DocumentNode, context: HookContext) => Promise<void>,
  ): void
}

/** mercurius's per-operation context; `operationsCount` is set for a batch. */
type BatchContext = HookContext & { readonly operationsCount?: number }

export const graphqlGuards: EnforcerStep = {
  name: 'graphqlGuards',
  phase: 'preExecution',
  enforces: [
    'maxQueryDepth',
    'maxQueryComplexity',
    'maxAliases',
    'maxDirectives',
    'maxTokens',
    'maxBatchSize',
    'introspection',
    'persistedOperationsOnly',
    'costRateLimit',
  ],
  enabled: () => true,
  install(context, app) {
    installGraphql(context, app)
    // Installed once a mercurius instance has the guards (see attach).
    return false
  },
}

function installGraphql(context: StepContext, app: FastifyInstance): void {
  const { profile: p, options: o, budget, tracer } = context
  // The GraphQL capability's own installers, reached through the seam
  // (src/internal/graphql-enforcement.ts, provided by graphql/fastify.ts).
  const {
    installGraphqlGuards,
    guardWebSockets,
    prepareTracing,
    attachTracing,
    isFailure,
    relevelResponse,
  } = graphqlEnforcement(graphqlGuardsPlugin)
  const graphqlPath = o.graphqlPath
  const maxBatch = p.maxBatchSize
  // mercurius runs every item of a batch through the whole pipeline and
  // sets no length limit of its own: the count is ours to bound. Here,
  // before the items run, on any route mercurius serves (whatever its path
  // or prefix); the preParsing hook of attach() holds it for app.graphql().
  // Each item is an operation: the request paid one unit on arrival, the
  // other items pay theirs here, refused or not.
  const { routes, persisted } = context
  app.addHook('preValidation', async (request, reply) => {
    const body = request.body
    const served = routes.link(request).kind === 'guarded'
    // graphql-yoga and Apollo Server know no manifest: a hash it holds is
    // given its query here, which the guards then check like any other.
    if (served && persisted !== undefined) {
      for (const item of Array.isArray(body) ? body : [body]) withManifestQuery(item, persisted)
    }
    if (!Array.isArray(body) || !(served || isMercuriusRoute(request))) return
    if (body.length > maxBatch) return context.refuse(request, reply, new BatchTooLargeError())
    if (body.length < 2) return
    try {
      await budget.charge(request, body.length - 1)
    } catch (err) {
      return context.refuse(request, reply, err as Error & { code: string })
    }
    budget.notePrepaid(request, body.length - 1)
  })
  const guard = parseOptions('ProfileEnforcer', GraphqlGuardOptionsSchema, {
    ...context.guardOptions(),
    isAuthenticated: (request: FastifyRequest) => (request.auth ?? null) !== null,
    ...(p.costRateLimit
      ? { chargeCost: (request: FastifyRequest, cost: number) => budget.chargeCost(request, cost) }
      : {}),
  })
  // Without the mercuriusOptions() spread mercurius's own formatter answers
  // (resolver messages, "Did you mean …?"): bring what it wrote to the
  // profile's errorDetail before it is serialized. Only on mercurius's
  // routes: an app's own `{ errors: [...] }` (JSON:API) is not GraphQL's.
  // A failure on the route (authenticate() or another hook throwing) is
  // answered by mercurius's error handler, which onError hooks precede:
  // noted here, its text is masked like any other failure's.
  const failed = new WeakSet<FastifyRequest>()
  app.addHook('onError', (request, _reply, error, done) => {
    if (isMercuriusRoute(request) && isFailure(error)) failed.add(request)
    done()
  })
  app.addHook('preSerialization', (request, reply, payload, done) => {
    if (!isMercuriusRoute(request)) return done(null, payload)
    const failure = failed.has(request)
    // mercurius answers a failure before execution 200 with `data: null`;
    // it is a server failure (monitoring, retries), as our formatter says.
    if (failure && reply.statusCode === 200) reply.code(500)
    done(null, relevelResponse(payload, guard, String(request.id), failure))
  })
  if (tracer !== undefined) prepareTracing(app, tracer, 'ProfileEnforcer')

  // Subscriptions over WebSocket: checked before mercurius parses them,
  // their errors at the profile's level, each one paying a unit.
  const guarded = new WeakSet<object>()
  const socketRules = {
    options: guard,
    charge: (request: FastifyRequest) => budget.charge(request, 1),
  }
  guardWebSockets(app, 'ProfileEnforcer', (graphql) =>
    typeof graphql === 'function' && guarded.has(graphql) ? socketRules : undefined,
  )

  // graphql-yoga and Apollo Server routes: each request on one runs with
  // its Fastify request findable by the enforcer's plugins, or is refused
  // before the server sees it when no plugin claimed its path (a route
  // declared before applyTo, which onReady cannot list).
  routes.watch(app)
  app.addHook('preHandler', (request, reply, done) => {
    const link = routes.link(request)
    if (link.kind === 'none') return done()
    if (link.kind === 'unguarded') {
      return context.refuse(request, reply, unguardedRoute(p.name, link.server, link.url))
    }
    routes.run(request, done)
  })

  const watch = watchMercurius(app, (instance, graphql) => {
    installGraphqlGuards('ProfileEnforcer', graphql, guard)
    guarded.add(graphql)
    attach(context, graphql as MercuriusHooks)
    context.installed('graphqlGuards')
    if (tracer !== undefined) {
      attachTracing(instance, graphql, tracer)
      context.installed('tracing')
    }
  })

  app.addHook('onReady', async () => {
    watch.revisit()
    const [unguarded] = routes.unguarded()
    if (unguarded !== undefined) {
      throw unguardedRoute(p.name, unguarded.server, unguarded.url, unguarded.methods)
    }
    if (routes.claimed) {
      context.installed('graphqlGuards')
      if (tracer !== undefined) context.installed('tracing')
    }
    if (watch.found > 0 || routes.claimed) return
    const route = [graphqlPath, `${graphqlPath}/`].some(
      (url) => app.hasRoute({ method: 'POST', url }) || app.hasRoute({ method: 'GET', url }),
    )
    if (route && watch.outside > 0) {
      throw new GraphqlUnguardedError(
        'graphqlGuards',
        `ProfileEnforcer: mercurius serves ${graphqlPath} from outside the instance given to applyTo (an encapsulated plugin), so none of profile ${p.name}'s steps (authentication, rate limits, GraphQL limits, error masking) reach it. Wrap the plugin that calls applyTo with fastify-plugin, or call applyTo on the root instance, or register mercurius inside that plugin.`,
      )
    }
    if (route) {
      throw new GraphqlUnguardedError(
        'graphqlGuards',
        `ProfileEnforcer: a route serves ${graphqlPath}, but no mercurius instance serves it and no plugin of the enforcer claimed it, so profile ${p.name}'s GraphQL limits cannot be installed there. Serve GraphQL with mercurius (registered before or after applyTo), or with graphql-yoga / Apollo Server given enforcer.graphqlYogaPlugin() / enforcer.apolloPlugin(); or set graphqlPath to a path you do not serve.`,
      )
    }
    if (tracer !== undefined) {
      throw new GraphqlUnguardedError(
        'tracing',
        "ProfileEnforcer: the tracer option is set but no GraphQL server was registered to trace. Register mercurius (before or after applyTo), give graphql-yoga / Apollo Server the enforcer's plugin, or remove the tracer option.",
      )
    }
  })
}

/** The refusal of a GraphQL route no plugin of the enforcer guards, naming it and the fix. */
function unguardedRoute(
  profile: string,
  server: GraphqlServer,
  url: string,
  methods?: readonly string[],
): GraphqlUnguardedError {
  const route = methods === undefined ? url : `${methods.join(',')} ${url}`
  const fix =
    server === 'graphql-yoga'
      ? `add enforcer.graphqlYogaPlugin() to createYoga's plugins, with graphqlEndpoint '${url}'`
      : server === 'Apollo Server'
        ? `add enforcer.apolloPlugin({ path: '${url}' }) to the ApolloServer's plugins`
        : `give its server enforcer.graphqlYogaPlugin() or enforcer.apolloPlugin({ path: '${url}' })`
  return new GraphqlUnguardedError(
    'graphqlGuards',
    `ProfileEnforcer: route ${route} serves GraphQL (${server}) without the enforcer's plugin, so none of profile ${profile}'s GraphQL settings (limits, introspection, persisted operations, cost, audit, error detail, tracing) reach it: ${fix}.`,
  )
}

/** Gives a request item that names a manifest hash and no query the manifest's query. */
function withManifestQuery(item: unknown, persisted: PersistedOperations): void {
  if (typeof item !== 'object' || item === null) return
  const body = item as {
    query?: unknown
    extensions?: { persistedQuery?: { sha256Hash?: unknown } }
  }
  if (typeof body.query === 'string') return
  const hash = body.extensions?.persistedQuery?.sha256Hash
  const query = typeof hash === 'string' ? persisted.get(hash) : undefined
  if (query !== undefined) body.query = query
}

/** The enforcer's own hooks on one mercurius instance, besides the guards. */
function attach(context: StepContext, graphql: MercuriusHooks): void {
  const p = context.profile
  const maxBatch = p.maxBatchSize
  const runtime = graphqlRuntime('ProfileEnforcer')
  graphql.addHook('preParsing', async (_schema, _source, hookContext) => {
    const count = hookContext.operationsCount
    if (count !== undefined && count > maxBatch) {
      hookContext.reply?.code(400)
      throw new GraphqlRejectedError([
        rejection(runtime, BatchTooLargeError.code, new BatchTooLargeError().message),
      ])
    }
  })
  const fieldAccess = p.auditFieldAccess
  graphql.addHook('preExecution', async (schema, document, hookContext) => {
    const request = hookContext.reply?.request
    if (request === undefined) return
    noteOperations(request, schema, document, requestedOperationName(hookContext), fieldAccess)
  })
}
