/**
 * The tracer suites' world: an SDK with an in-memory exporter per test (no
 * global provider), the AsyncLocalStorage context manager, a schema whose
 * resolvers fail in the ways the tracer must record, and helpers to run it
 * through the execute wrapper or a real mercurius server.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { context, ROOT_CONTEXT, type Span, SpanKind, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import Fastify, { type FastifyInstance } from 'fastify'
import { buildSchema, type GraphQLSchema } from 'graphql'
import mercurius from 'mercurius'
import { GraphQLTracer, graphqlTracing, type TracingConfig } from '../../src/graphql/index.js'

export const TRACING_SDL = `
  scalar JSON
  type Query {
    me: User
    users(first: Int): [User!]!
    echo(input: JSON): String
    login(user: String!, password: String!): String
    boom: String
    coded: String
    lookup(id: ID!): String
  }
  type Mutation { addPost(title: String!): Post }
  type Subscription { postAdded: Post }
  type User { id: ID! name: String posts(first: Int): [Post!]! }
  type Post { id: ID! title: String }
`

/** Resolvers; `lookup` wraps its "database call" in `tracer.traceDataAccess`. */
export function tracingResolvers(tracer: () => GraphQLTracer) {
  return {
    Query: {
      me: () => ({ id: '1', name: 'ada' }),
      users: (_: unknown, { first }: { first?: number }) =>
        Array.from({ length: first ?? 2 }, (_, i) => ({ id: String(i), name: `u${i}` })),
      echo: (_: unknown, { input }: { input: unknown }) => {
        throw new Error(`bad input ${JSON.stringify(input)}`)
      },
      login: (_: unknown, { user, password }: { user: string; password: string }) => {
        throw new Error(`wrong password ${password} for ${user}`)
      },
      boom: () => {
        throw new Error('connect ECONNREFUSED 10.0.0.5:5432')
      },
      coded: () => {
        throw Object.assign(new Error('not yours'), { extensions: { code: 'FORBIDDEN' } })
      },
      lookup: (_: unknown, { id }: { id: string }) =>
        tracer().traceDataAccess('db.lookup', async () => `row ${id}`, { 'db.system': 'test' }),
    },
    Mutation: { addPost: (_: unknown, { title }: { title: string }) => ({ id: 'p1', title }) },
    User: {
      posts: (u: { id: string }, { first }: { first?: number }) =>
        Array.from({ length: first ?? 1 }, (_, i) => ({ id: `${u.id}-${i}`, title: `t${i}` })),
    },
  }
}

type ResolverMap = Record<string, Record<string, (...args: never[]) => unknown>>

/** A graphql-js schema (the test's copy) with the resolvers attached, as a server would. */
export function tracingSchema(tracer: () => GraphQLTracer): GraphQLSchema {
  const schema = buildSchema(TRACING_SDL)
  const resolvers = tracingResolvers(tracer) as unknown as ResolverMap
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName) as unknown as {
      getFields(): Record<string, { resolve?: unknown }>
    }
    for (const [name, fn] of Object.entries(fields)) type.getFields()[name]!.resolve = fn
  }
  const subscription = schema.getSubscriptionType()!.getFields().postAdded!
  subscription.resolve = () => ({ id: 'p2', title: 'new' })
  return schema
}

let manager: AsyncLocalStorageContextManager | undefined

/** The AsyncLocalStorage context manager, registered once per test file. */
export function useContextManager(): void {
  if (manager !== undefined) return
  manager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(manager)
}

export function dropContextManager(): void {
  context.disable()
  manager = undefined
}

export interface Otel {
  readonly exporter: InMemorySpanExporter
  readonly provider: BasicTracerProvider
  /** A tracer of ours on this provider. */
  tracer(config?: TracingConfig): GraphQLTracer
  /** Finished spans, the HTTP stand-in's left out. */
  spans(): ReadableSpan[]
  byName(name: string): ReadableSpan
}

/** A fresh SDK: in-memory exporter, simple processor, optionally sampling nothing. */
export function otel(options: { sampled?: boolean } = {}): Otel {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(options.sampled === false ? { sampler: new AlwaysOffSampler() } : {}),
  })
  const spans = () =>
    exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name !== HTTP_SCOPE)
  return {
    exporter,
    provider,
    tracer: (config = {}) => new GraphQLTracer({ ...config, tracerProvider: provider }),
    spans,
    byName(name) {
      const found = spans().filter((s) => s.name === name)
      if (found.length !== 1) {
        const names = spans().map((s) => s.name)
        throw new Error(`${found.length} spans named ${name} in [${names.join(', ')}]`)
      }
      return found[0]!
    },
  }
}

const HTTP_SCOPE = 'http-stand-in'

export const parentId = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId
export const idOf = (s: ReadableSpan | Span): string => s.spanContext().spanId

/** Everything a span exports as text: name, attributes, status message, events. */
export function exportedText(spans: readonly ReadableSpan[]): string {
  return JSON.stringify(
    spans.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      status: s.status,
      events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    })),
  )
}

export interface TracedServer {
  readonly app: FastifyInstance
  readonly url: string
  /** The HTTP server spans the stand-in HTTP instrumentation made, in request order. */
  readonly httpSpans: Span[]
  post(body: unknown): Promise<{ status: number; body: unknown }>
}

/**
 * Fastify + mercurius + our plugin on 127.0.0.1, behind a stand-in for an
 * HTTP instrumentation: each request runs inside `context.with()` of an HTTP
 * server span, as `@opentelemetry/instrumentation-http` does. The body
 * arrives later, from the socket, outside that context: the plugin must
 * carry the HTTP span's context itself.
 */
export async function tracedServer(
  o: Otel,
  tracer: GraphQLTracer,
  setup: {
    mercurius?: Record<string, unknown>
    before?: (app: FastifyInstance) => Promise<void>
  } = {},
): Promise<TracedServer> {
  const httpTracer = o.provider.getTracer(HTTP_SCOPE)
  const httpSpans: Span[] = []
  const app = Fastify({
    serverFactory: (handler) =>
      createServer((req, res) => {
        const span = httpTracer.startSpan(`${req.method} ${req.url}`, { kind: SpanKind.SERVER })
        httpSpans.push(span)
        res.on('finish', () => span.end())
        context.with(trace.setSpan(ROOT_CONTEXT, span), () => handler(req, res))
      }),
  })
  await app.register(mercurius, {
    schema: TRACING_SDL,
    resolvers: tracingResolvers(() => tracer),
    ...setup.mercurius,
  } as never)
  await setup.before?.(app)
  await app.register(graphqlTracing, { tracer })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/graphql`
  return {
    app,
    url,
    httpSpans,
    async post(body) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      return { status: res.status, body: await res.json() }
    },
  }
}
