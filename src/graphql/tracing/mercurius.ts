/**
 * The tracer as mercurius hooks, and as a Fastify plugin that adds them.
 *
 * mercurius runs `preParsing` for every operation (before its parse cache),
 * `preValidation` only for a query it has not seen, `preExecution` for every
 * operation that passed validation, `onResolution` after execution. Hooks
 * cannot run execution inside `context.with()`, so the operation span is
 * kept on mercurius's per-operation context object and resolvers find it
 * there (see `GraphQLTracer.instrument`).
 */
import { type Context, context } from '@opentelemetry/api'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { DocumentNode, ExecutionResult, GraphQLSchema } from 'graphql'
import { ConfigError } from '../../errors.js'
import { type HookContext, requestedOperationName } from '../mercurius-context.js'
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
/** Operations of a request whose span is open, for closing the ones that never reached `onResolution`. */
const kPending = Symbol('fraiseql-security.graphql.tracing.pending')

type TracedRequest = FastifyRequest & {
  [kParent]?: Context
  /** One operation (the usual case), several (a batch), or none yet. */
  [kPending]?: OperationTrace | OperationTrace[] | null
}
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
  const o = tracer.config
  // With mercurius, resolvers are wrapped to carry the operation's context
  // (traceDataAccess) or their own spans (traceResolvers).
  const wrap = o.traceResolvers || o.traceDataAccess

  const start = (ctx: TracedContext): OperationTrace | undefined => {
    const t = tracer.startOperation(parentOf(ctx), true)
    ctx[kOperation] = t ?? NOT_RECORDING
    if (t !== undefined) {
      t.operationId = ctx.operationId
      const request = ctx.reply?.request as TracedRequest | undefined
      // Tracked only when the plugin set the slot up in onRequest.
      const pending = request?.[kPending]
      if (pending === null) request![kPending] = t
      else if (Array.isArray(pending)) pending.push(t)
      else if (pending !== undefined) request![kPending] = [pending, t]
    }
    return t
  }

  return {
    preParsing(_schema, _source, ctx) {
      start(ctx as TracedContext)
    },
    preExecution(schema, document, ctx, variables) {
      const c = ctx as TracedContext
      let t = c[kOperation]
      if (t === NOT_RECORDING) return
      // A document given as an AST skips preParsing; a context object
      // reused across calls still holds the last operation.
      if (t === undefined || t.ended) {
        t = start(c)
        if (t === undefined) return
      }
      if (wrap) tracer.instrument(schema, o.traceResolvers)
      tracer.describeOperation(t, document, requestedOperationName(c), variables, true)
    },
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

/** The errors of a refusal answered by mercurius: the body, or the batch item's. */
function errorsInPayload(payload: unknown, operationId: number | undefined): unknown[] | undefined {
  if (typeof payload !== 'string' || payload.length > 1_000_000) return undefined
  let body: unknown
  try {
    body = JSON.parse(payload)
  } catch {
    return undefined
  }
  if (Array.isArray(body)) body = body[operationId ?? 0]
  const errors = (body as { errors?: unknown } | null | undefined)?.errors
  return Array.isArray(errors) && errors.length > 0 ? errors : undefined
}

/** Apollo's well-known codes for the two refusals graphql-js leaves without one. */
function preExecutionType(error: unknown): string {
  const message = (error as { message?: unknown } | null | undefined)?.message
  return typeof message === 'string' && message.startsWith('Syntax Error')
    ? 'GRAPHQL_PARSE_FAILED'
    : 'GRAPHQL_VALIDATION_FAILED'
}

/** The operations of `request` that never reached `onResolution`: refused, or failed. */
function closePending(
  tracer: GraphQLTracer,
  pending: OperationTrace | readonly OperationTrace[],
  reply: FastifyReply,
  payload: unknown,
): void {
  for (const t of Array.isArray(pending) ? pending : [pending as OperationTrace]) {
    if (t.ended) continue
    const errors = errorsInPayload(payload, t.operationId)
    if (errors !== undefined) {
      // Refused before execution: a code of ours (a guard) or mercurius's,
      // else graphql-js's parser or validation, which set none.
      const type = errorType(errors[0])
      tracer.recordErrors(t, type !== OTHER_ERROR ? type : preExecutionType(errors[0]), errors)
      tracer.endOperation(t, undefined)
    } else if (reply.statusCode >= 400) {
      tracer.failOperation(t, { message: `HTTP ${reply.statusCode}` })
    } else {
      tracer.endOperation(t, undefined)
    }
  }
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

async function graphqlTracingPlugin(
  app: FastifyInstance,
  options: GraphqlTracingOptions,
): Promise<void> {
  const tracer = tracerFrom(options)
  // Twice would trace every operation twice, the second span hiding the first from resolvers.
  if (app.hasDecorator('graphqlTracer')) {
    throw new ConfigError('graphqlTracing', [
      { path: [], message: 'is already registered on this app (app.graphqlTracer)' },
    ])
  }
  const graphql = (app as unknown as { graphql?: { addHook?: unknown; schema?: unknown } }).graphql
  if (typeof graphql?.addHook !== 'function') {
    throw new ConfigError('graphqlTracing', [
      { path: [], message: 'register mercurius before graphqlTracing' },
    ])
  }
  const addHook = graphql.addHook.bind(graphql) as (name: string, hook: unknown) => void
  const o = tracer.config
  // Wrapped now, not on the first request (preExecution still checks, for a replaced schema).
  if ((o.traceResolvers || o.traceDataAccess) && graphql.schema !== undefined) {
    tracer.instrument(graphql.schema as GraphQLSchema, o.traceResolvers)
  }
  for (const [name, hook] of Object.entries(mercuriusTracingHooks(tracer))) addHook(name, hook)

  // The context active when the request arrives is the HTTP server span's
  // (instrumentation-http, @fastify/otel); by the time the body is parsed
  // and mercurius runs, the active context may be the socket's.
  app.addHook('onRequest', (request, _reply, done) => {
    const r = request as TracedRequest
    r[kParent] = context.active()
    r[kPending] = null
    done()
  })
  app.addHook('onSend', (request, reply, payload, done) => {
    const pending = (request as TracedRequest)[kPending]
    // The usual case, one operation that reached onResolution: nothing to do.
    if (pending !== undefined && pending !== null && (Array.isArray(pending) || !pending.ended)) {
      closePending(tracer, pending, reply, payload)
    }
    done(null, payload)
  })
  app.decorate('graphqlTracer', tracer)
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The tracer `graphqlTracing` registered. */
    graphqlTracer?: GraphQLTracer
  }
}

/**
 * The tracer for a Fastify app with mercurius: register it after mercurius,
 * with a {@link GraphQLTracer} or the options of a new one. It adds
 * mercurius hooks (an operation span per operation, batches included; a
 * span for each WebSocket subscription's setup), wraps the schema's
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
