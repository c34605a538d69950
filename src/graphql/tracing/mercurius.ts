/**
 * The tracer for mercurius: hooks alone, and a Fastify plugin.
 *
 * mercurius runs `preParsing` for every operation (before its parse cache),
 * `preValidation` only for a query it has not seen, `preExecution` for every
 * operation that passed validation, `onResolution` after execution. Hooks
 * cannot run execution inside `context.with()`, so the operation span is
 * kept on mercurius's per-operation context object and resolvers find it
 * there (see `GraphQLTracer.instrument`).
 *
 * Each mercurius hook costs every operation a few promises (measured: about
 * 2–5% of a 50-field query's throughput per hook, with the AsyncLocalStorage
 * context manager on). The plugin therefore adds none for queries and
 * mutations: it wraps `app.graphql`, the function every operation goes
 * through (HTTP, batches, `app.graphql()` calls, WebSocket queries), starts
 * the span there before mercurius parses, names it from the tracer's own
 * cache of parsed documents (one parse per distinct source, done only for a
 * recording span), and ends it with the result or the refusal.
 */
import { type Context, context } from '@opentelemetry/api'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { DocumentNode, ExecutionResult, GraphQLSchema } from 'graphql'
import { ConfigError } from '../../errors.js'
import { type HookContext, requestedOperationName } from '../../internal/mercurius-context.js'
import type { TracingConfig } from './config.js'
import {
  errorType,
  GraphQLTracer,
  kOperation,
  NOT_RECORDING,
  type OperationTrace,
  OTHER_ERROR,
} from './tracer.js'

/** Where the plugin keeps the context active when the request arrived (the HTTP span's). */
const kParent = Symbol('fraiseql-security.graphql.tracing.parent')

type TracedRequest = FastifyRequest & { [kParent]?: Context }
type TracedContext = HookContext & {
  [kOperation]?: OperationTrace | typeof NOT_RECORDING
}

type Variables = Readonly<Record<string, unknown>> | null | undefined

/**
 * The hooks {@link mercuriusTracingHooks} returns, by mercurius hook name.
 * Synchronous: mercurius awaits whatever a hook returns, and a promise of
 * our own per hook would only add allocations (and, with an
 * AsyncLocalStorage context manager, a hook call per promise).
 */
export interface MercuriusTracingHooks {
  preParsing(schema: GraphQLSchema, source: string, context: object): void
  preExecution(
    schema: GraphQLSchema,
    document: DocumentNode,
    context: object,
    variables: Variables,
  ): void
  onResolution(execution: ExecutionResult, context: object): void
  preSubscriptionExecution(schema: GraphQLSchema, document: DocumentNode, context: object): void
}

function parentOf(ctx: HookContext): Context {
  const request = ctx.reply?.request as TracedRequest | undefined
  return request?.[kParent] ?? context.active()
}

/**
 * The tracer as mercurius hooks, to add one by one with
 * `app.graphql.addHook(name, hook)`. Prefer the {@link graphqlTracing}
 * plugin: without it the operation span's parent is whatever context is
 * active when mercurius parses (not always the HTTP span's, once the body
 * was read), and an operation refused before execution (syntax, validation,
 * a guard) leaves no span.
 *
 * @example
 * ```ts
 * const hooks = mercuriusTracingHooks(tracer)
 * for (const [name, hook] of Object.entries(hooks)) app.graphql.addHook(name as never, hook)
 * ```
 */
export function mercuriusTracingHooks(tracer: GraphQLTracer): MercuriusTracingHooks {
  const preExecution = describeHook(tracer)
  return {
    preParsing(_schema, _source, ctx) {
      const c = ctx as TracedContext
      c[kOperation] = tracer.startOperation(parentOf(c), true) ?? NOT_RECORDING
    },
    preExecution,
    onResolution(execution, ctx) {
      const t = (ctx as TracedContext)[kOperation]
      if (t === undefined || t === NOT_RECORDING) return
      tracer.endOperation(t, execution)
    },
    preSubscriptionExecution(_schema, document) {
      // The subscription's setup, by type and name; its events are not traced.
      const t = tracer.startOperation(context.active(), true, document)
      if (t === undefined) return
      tracer.describeOperation(t, document, undefined, undefined)
      tracer.endOperation(t, undefined)
    },
  }
}

/**
 * `preExecution`: names the operation span from the document, records the
 * document and variables if configured, and makes sure the schema's
 * resolvers carry the operation (a replaced schema is wrapped on first use).
 */
function describeHook(tracer: GraphQLTracer): MercuriusTracingHooks['preExecution'] {
  return (schema, document, ctx, variables) => {
    const c = ctx as TracedContext
    let t = c[kOperation]
    if (t === NOT_RECORDING) return
    // A document given as an AST skips preParsing; a context object reused
    // across calls still holds the last operation.
    if (t === undefined || t.ended) {
      t = tracer.startOperation(parentOf(c), true)
      c[kOperation] = t ?? NOT_RECORDING
      if (t === undefined) return
    }
    tracer.instrumentForHooks(schema)
    tracer.describeOperation(t, document, requestedOperationName(c), variables, true)
  }
}

/** Apollo's well-known codes for the two refusals graphql-js leaves without one. */
function preExecutionType(error: unknown): string {
  const message = (error as { message?: unknown } | null | undefined)?.message
  return typeof message === 'string' && message.startsWith('Syntax Error')
    ? 'GRAPHQL_PARSE_FAILED'
    : 'GRAPHQL_VALIDATION_FAILED'
}

/**
 * `error.type` of an operation mercurius refused or failed: our guards'
 * and mercurius's errors carry a code; graphql-js's syntax and validation
 * errors (in mercurius's `MER_ERR_GQL_VALIDATION`) get Apollo's codes.
 */
function refusalType(error: unknown, first: unknown): string {
  const type = errorType(error)
  if (type !== 'MER_ERR_GQL_VALIDATION' && type !== OTHER_ERROR) return type
  const own = errorType(first)
  return own !== OTHER_ERROR ? own : preExecutionType(first)
}

type GraphqlFn = (
  source: unknown,
  context?: object | null,
  variables?: unknown,
  operationName?: unknown,
) => Promise<ExecutionResult>

/**
 * `app.graphql` traced: the operation span starts before mercurius parses
 * and ends with the result, or with the error mercurius throws when it
 * refuses the operation (syntax, validation, a guard's hook). A Proxy, so
 * every property of mercurius's function (`schema`, `addHook`,
 * `replaceSchema`…) reads and writes through.
 */
function tracedGraphql(tracer: GraphQLTracer, graphql: GraphqlFn): GraphqlFn {
  return new Proxy(graphql, {
    apply(target, thisArg, args: Parameters<GraphqlFn>) {
      // mercurius makes `{}` of a missing context; make it here, to mark it.
      let ctx = args[1] as TracedContext | null | undefined
      if (ctx === undefined || ctx === null) {
        ctx = {}
        args[1] = ctx
      }
      const [source, , variables, name] = args
      const operationName = typeof name === 'string' ? name : undefined
      // A document seen before names the span from its start (samplers see
      // the name); a new one is parsed only once the span records.
      let document = typeof source === 'string' ? tracer.knownDocument(source) : asDocument(source)
      const t = tracer.startOperation(parentOf(ctx), true, document ?? undefined, operationName)
      ctx[kOperation] = t ?? NOT_RECORDING
      if (t === undefined) return Reflect.apply(target, thisArg, args)
      // A replaced schema is wrapped on first use.
      const schema = (target as { schema?: GraphQLSchema }).schema
      if (schema !== undefined) tracer.instrumentForHooks(schema)
      const named = document !== undefined && document !== null
      if (document === undefined && typeof source === 'string')
        document = tracer.documentFor(source)
      if (document !== undefined && document !== null) {
        tracer.describeOperation(t, document, operationName, variables, !named)
      }
      return (Reflect.apply(target, thisArg, args) as Promise<ExecutionResult>).then(
        (result) => {
          tracer.endOperation(t, result)
          return result
        },
        (err: unknown) => {
          tracer.failOperation(t, err, refusalType)
          throw err
        },
      )
    },
  })
}

/** `source` if it is a parsed document (`app.graphql` takes one too), else `undefined`. */
function asDocument(source: unknown): DocumentNode | undefined {
  return typeof source === 'object' &&
    source !== null &&
    (source as { kind?: unknown }).kind === 'Document'
    ? (source as DocumentNode)
    : undefined
}

/** Options of {@link graphqlTracing}: a tracer, or the configuration of a new one. */
export type GraphqlTracingOptions = TracingConfig & {
  /** The tracer to use; then no other option may be given. */
  tracer?: GraphQLTracer
}

function tracerFrom(options: GraphqlTracingOptions | undefined): GraphQLTracer {
  const { tracer, ...config } = options ?? {}
  if (tracer === undefined) return new GraphQLTracer(config)
  if (!(tracer instanceof GraphQLTracer)) {
    throw new ConfigError('graphqlTracing', [
      { path: ['tracer'], message: 'must be a GraphQLTracer' },
    ])
  }
  const extra = Object.keys(config)
  if (extra.length > 0) {
    throw new ConfigError('graphqlTracing', [
      { path: [extra[0]!], message: 'set it on the GraphQLTracer given as `tracer`' },
    ])
  }
  return tracer
}

type MercuriusGraphql = GraphqlFn & {
  addHook?: (name: string, hook: unknown) => void
  schema?: unknown
}

/**
 * The part of the tracer that belongs to the app itself, and may come before
 * mercurius is registered: `app.graphqlTracer`, and the hook that keeps the
 * context active when each request arrives (the HTTP server span's, with an
 * HTTP instrumentation; by the time the body is parsed and mercurius runs,
 * the active context may be the socket's).
 */
export function prepareTracing(
  app: FastifyInstance,
  tracer: GraphQLTracer,
  component: string,
): void {
  // Twice would trace every operation twice, the second span hiding the first from resolvers.
  if (app.hasDecorator('graphqlTracer')) {
    throw new ConfigError(component, [
      { path: [], message: 'is already registered on this app (app.graphqlTracer)' },
    ])
  }
  app.addHook('onRequest', (request, _reply, done) => {
    ;(request as TracedRequest)[kParent] = context.active()
    done()
  })
  app.decorate('graphqlTracer', tracer)
}

/**
 * Traces one mercurius instance: wraps its schema's resolvers and its
 * `app.graphql`, and adds the subscription hook. `instance` is the Fastify
 * instance mercurius was registered on, or any of its descendants.
 */
export function attachTracing(instance: object, graphql: unknown, tracer: GraphQLTracer): void {
  const g = graphql as MercuriusGraphql
  // Wrapped now, not on the first request (the wrapper still checks, for a replaced schema).
  if (g.schema !== undefined) tracer.instrumentForHooks(g.schema as GraphQLSchema)
  // No query hook: the wrapper below names the span from the source text
  // (each mercurius hook costs every operation, see the module comment).
  g.addHook!('preSubscriptionExecution', mercuriusTracingHooks(tracer).preSubscriptionExecution)
  // mercurius's routes call `app.graphql` on the instance that registered
  // it: replace it there (it may be a parent of ours).
  let owner: object = instance
  while (!Object.hasOwn(owner, 'graphql')) owner = Object.getPrototypeOf(owner) as object
  ;(owner as { graphql: GraphqlFn }).graphql = tracedGraphql(tracer, g)
}

async function graphqlTracingPlugin(
  app: FastifyInstance,
  options: GraphqlTracingOptions,
): Promise<void> {
  const tracer = tracerFrom(options)
  const graphql = (app as unknown as { graphql?: MercuriusGraphql }).graphql
  prepareTracing(app, tracer, 'graphqlTracing')
  if (typeof graphql?.addHook !== 'function') {
    throw new ConfigError('graphqlTracing', [
      { path: [], message: 'register mercurius before graphqlTracing' },
    ])
  }
  attachTracing(app, graphql, tracer)
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The tracer `graphqlTracing` registered. */
    graphqlTracer?: GraphQLTracer
  }
}

/**
 * The tracer for a Fastify app with mercurius: register it after mercurius,
 * with a {@link GraphQLTracer} or the options of a new one. It wraps
 * `app.graphql` (an operation span per operation, batches included), adds
 * one mercurius hook (a span for each WebSocket subscription's setup), wraps the schema's
 * resolvers (the operation's context for data access; resolver spans with
 * `traceResolvers`), makes the operation span a child of the context active
 * when the request arrived (the HTTP server span, with an HTTP
 * instrumentation), and closes with their errors the spans of operations
 * refused before execution. The tracer is then `app.graphqlTracer`.
 *
 * @example
 * ```ts
 * import mercurius from 'mercurius'
 * import { GraphQLTracer, graphqlTracing } from 'fraiseql-security/graphql'
 * await app.register(mercurius, { schema, resolvers })
 * const tracer = new GraphQLTracer({ includeDocument: true })
 * await app.register(graphqlTracing, { tracer })
 * ```
 */
export const graphqlTracing = fp(graphqlTracingPlugin, {
  name: 'fraiseql-security/graphql-tracing',
  fastify: '5.x',
})
