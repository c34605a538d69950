/**
 * `TracingConfig`: the options of {@link GraphQLTracer}, parsed once with zod.
 */
import type { Span, TracerProvider } from '@opentelemetry/api'
import { z } from 'zod'
import { fn } from '../../internal/options.js'
import { DEFAULT_SENSITIVE_PATTERNS } from '../redact.js'

export const TracingConfigSchema = z
  .object({
    /**
     * One span per resolved field, child of the operation span, named by
     * its path (`user.posts.title`). Costly: a span per field per request.
     * @default false
     */
    traceResolvers: z.boolean().default(false),
    /**
     * Most resolver spans per operation; fields past it run untraced and the
     * operation span counts them in `fraiseql.graphql.resolver_spans.dropped`.
     * @default 100
     */
    maxResolverSpans: z.number().int().min(0).max(1_000_000).default(100),
    /**
     * `traceDataAccess(name, fn)` records a span (off: it only runs `fn`),
     * and, with mercurius, resolvers run in the operation span's context so
     * the spans they start are its children.
     * @default true
     */
    traceDataAccess: z.boolean().default(true),
    /**
     * With `traceResolvers`: no span for a field without a resolver of its
     * own (graphql-js's default resolver reads a property), as
     * `@opentelemetry/instrumentation-graphql`'s option of that name.
     * @default false
     */
    ignoreTrivialResolveSpans: z.boolean().default(false),
    /**
     * `(span, result) => void`, called with each operation span and its
     * result (`{ errors }` for a refused operation) before the span ends,
     * for attributes of your own; as `instrumentation-graphql`'s
     * `responseHook`. A throw is recorded on the span and never fails the
     * operation. Do not record values from `result.data` that may be secret.
     * @default none
     */
    responseHook:
      fn<(span: Span, result: { readonly errors?: readonly unknown[] | undefined }) => void>(
        '(span, result) => void',
      ).optional(),
    /**
     * Record the variables (JSON, attribute `graphql.variables`).
     * @default false
     */
    includeVariables: z.boolean().default(false),
    /**
     * Redact recorded variables by key with `sensitivePatterns` (and any
     * variable bound to a sensitive argument). `false` records them as sent.
     * @default true
     */
    sanitizeVariables: z.boolean().default(true),
    /**
     * Key patterns: strong words (password, secret, token, …) match anywhere
     * in a name, others by segment (see `redactSensitive`).
     * @default DEFAULT_SENSITIVE_PATTERNS
     */
    sensitivePatterns: z
      .array(z.string().regex(/[\p{L}\p{N}]/u, 'must contain a letter or a digit'))
      .max(1000)
      .default([...DEFAULT_SENSITIVE_PATTERNS]),
    /**
     * Record the document (`graphql.document`), its string and number
     * literals replaced by `"[REDACTED]"`.
     * @default false
     */
    includeDocument: z.boolean().default(false),
    /**
     * Longest text recorded, in UTF-16 units: the document, the variables'
     * JSON and each error message (redacted first, then cut).
     * @default 1000
     */
    maxQueryLength: z.number().int().min(16).max(1_000_000).default(1000),
    /**
     * Name operation spans `{type} {name}` (`query GetUser`); `false` names
     * them `{type}` only, as the latest semantic conventions recommend
     * (the operation name is client-chosen and may have high cardinality;
     * it stays in `graphql.operation.name` either way).
     * @default true
     */
    operationNameInSpanName: z.boolean().default(true),
    /**
     * Where spans go. @default the global provider of `@opentelemetry/api`
     */
    tracerProvider: z
      .custom<TracerProvider>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as { getTracer?: unknown }).getTracer === 'function',
        { message: 'must be a TracerProvider (an object with getTracer)' },
      )
      .optional(),
  })
  .strict()

/** Options of {@link GraphQLTracer}. */
export type TracingConfig = z.input<typeof TracingConfigSchema>
/** The options after defaults, as `tracer.config` shows them. */
export type ResolvedTracingConfig = Readonly<
  Omit<z.output<typeof TracingConfigSchema>, 'sensitivePatterns'> & {
    sensitivePatterns: readonly string[]
  }
>
