/**
 * The app of one variant of the GraphQL tracer bench: the same mercurius
 * app and 50-field query in each; only the tracing differs.
 *
 * Traced variants run a real SDK, as an application would: the
 * AsyncLocalStorage context manager, a global BasicTracerProvider, a
 * BatchSpanProcessor and an exporter that accepts every batch and drops it
 * (so no I/O is measured). `@opentelemetry/instrumentation-graphql` patches
 * graphql-js when it is required, hence one process per variant and
 * mercurius imported only after the instrumentation is enabled. Our tracer
 * comes from the built package (`fraiseql-security/graphql` → dist/).
 */
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import type { FastifyInstance } from 'fastify'
import { FIELDS, SDL, type TracingVariant } from './tracing-variants.js'

/** Accepts every batch and keeps nothing: the SDK does all its work, nothing is sent. */
class DroppingExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: { code: number }) => void): void {
    done({ code: 0 })
  }
  async shutdown(): Promise<void> {}
}

/** Counts ended spans (the driver checks spans per request) and hands them on. */
class CountingProcessor implements SpanProcessor {
  ended = 0
  constructor(readonly inner: SpanProcessor) {}
  onStart(span: Span, parent: Parameters<SpanProcessor['onStart']>[1]): void {
    this.inner.onStart(span, parent)
  }
  onEnd(span: ReadableSpan): void {
    this.ended++
    this.inner.onEnd(span)
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush()
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown()
  }
}

/**
 * The variant's app, SDK first. Once per process: the SDK and the
 * instrumentation are global.
 */
export async function buildApp(variant: TracingVariant): Promise<{
  app: FastifyInstance
  spans: () => number
}> {
  let counting: CountingProcessor | undefined
  if (variant !== 'untraced') {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    counting = new CountingProcessor(new BatchSpanProcessor(new DroppingExporter()))
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({
        spanProcessors: [counting],
        // Sampled out: what tracing costs the requests it does not record.
        ...(variant === 'ours-unsampled' ? { sampler: new AlwaysOffSampler() } : {}),
      }),
    )
  }
  if (variant === 'sdk') {
    // What any instrumentation does first (instrumentation-http on every
    // request, the batch processor on every export): once a context is entered,
    // AsyncLocalStorage tracks every promise of the process.
    context.with(context.active(), () => {})
  }
  if (variant === 'http' || variant === 'http-ours') {
    // Before node:http is first required (by fastify, below).
    const { HttpInstrumentation } = await import('@opentelemetry/instrumentation-http')
    new HttpInstrumentation().enable()
  }
  if (variant === 'otel') {
    // Before graphql-js is first required (by mercurius, below).
    const { GraphQLInstrumentation } = await import('@opentelemetry/instrumentation-graphql')
    new GraphQLInstrumentation().enable()
  }

  const { default: Fastify } = await import('fastify')
  const { default: mercurius } = await import('mercurius')
  const { graphqlTracing } = await import('fraiseql-security/graphql')

  const item = Object.fromEntries(
    Array.from({ length: FIELDS }, (_, i) => [`f${i + 1}`, `v${i + 1}`]),
  )
  const app = Fastify({ logger: false })
  await app.register(mercurius, { schema: SDL, resolvers: { Query: { item: () => item } } })
  if (variant === 'one-span') {
    // The least a mercurius tracer can do: one bare span per operation, two hooks.
    const tracer = trace.getTracer('bench')
    const spans = new WeakMap<object, ReturnType<typeof tracer.startSpan>>()
    app.graphql.addHook('preExecution', (_schema, _document, ctx) => {
      spans.set(ctx, tracer.startSpan('query'))
    })
    app.graphql.addHook('onResolution', (_execution, ctx) => spans.get(ctx)?.end())
  }
  if (variant === 'ours' || variant === 'ours-unsampled' || variant === 'http-ours') {
    await app.register(graphqlTracing, {})
  }
  if (variant === 'ours-resolvers') await app.register(graphqlTracing, { traceResolvers: true })

  return { app, spans: () => counting?.ended ?? 0 }
}
