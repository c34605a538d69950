/** The server variants of the GraphQL tracer bench, shared by the driver and tracing-server.ts. */

/** Fields of the bench's `Item` type: the query selects all of them. */
export const FIELDS = 50

/** `{ item { f1 f2 … f50 } }`: 51 resolved fields (one resolver of ours, 50 default). */
export const QUERY = `{ item { ${Array.from({ length: FIELDS }, (_, i) => `f${i + 1}`).join(' ')} } }`

export const SDL = `
  type Query { item: Item }
  type Item { ${Array.from({ length: FIELDS }, (_, i) => `f${i + 1}: String`).join(' ')} }
`

export const TRACING_VARIANTS = {
  untraced: 'mercurius, no SDK, no tracing',
  sdk: 'SDK installed and its context manager active, no GraphQL tracing (the price of tracing at all)',
  'one-span':
    'SDK + two bare mercurius hooks making one span per operation (the floor of any tracer)',
  ours: 'SDK + our `graphqlTracing`, default settings (one operation span)',
  'ours-unsampled':
    'SDK sampling nothing + our `graphqlTracing`, default settings (every span non-recording)',
  'ours-resolvers': 'SDK + our `graphqlTracing` with `traceResolvers: true` (a span per field)',
  otel: 'SDK + `@opentelemetry/instrumentation-graphql`, default settings (a span per field)',
  http: 'SDK + `@opentelemetry/instrumentation-http`: an HTTP server span per request, no GraphQL tracing (an app traced at the HTTP layer)',
  'http-ours':
    'SDK + `@opentelemetry/instrumentation-http` + our `graphqlTracing`, default settings (the operation span a child of the HTTP span)',
} as const

export type TracingVariant = keyof typeof TRACING_VARIANTS

export function isTracingVariant(name: string | undefined): name is TracingVariant {
  return name !== undefined && Object.hasOwn(TRACING_VARIANTS, name)
}
