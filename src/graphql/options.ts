/**
 * Options of every GraphQL guard, parsed once with zod. One options object
 * serves `createValidationRules`, `mercuriusGuardOptions`, `graphqlGuards`
 * and `checkDocument`, so the documented pattern of passing the same `opts`
 * to the mercurius spread and to the plugin cannot drift.
 */
import type { FastifyRequest } from 'fastify'
import { z } from 'zod'
import { fn, parseOptions } from '../internal/options.js'
import type { GuardDecision } from './decision.js'
import { PersistedOperations } from './persisted.js'

/** A GraphQL name (GraphQL specification §2.1.9 Names). */
const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/

/** A cost that stays finite and never negative: a negative cost would pay for other fields. */
const cost = z.number().min(0).max(1e9)

export const ComplexityOptionsSchema = z
  .object({
    /**
     * Cost of a field without an entry in `fieldCosts`.
     * @default 1
     */
    defaultFieldCost: cost.default(1),
    /**
     * Arguments whose value is a list field's size: the field's cost (its own
     * plus its selection's) is multiplied by it. With several, the largest wins.
     * @default ['first', 'last', 'limit']
     */
    listArguments: z
      .array(z.string().regex(NAME, 'must be a GraphQL name'))
      .default(['first', 'last', 'limit']),
    /**
     * List size assumed when a list argument is a variable with no default
     * (validation runs before variables are known), or a value that is not a
     * non-negative integer.
     * @default 10
     */
    defaultListSize: z.number().int().min(0).max(1e9).default(10),
    /**
     * Cost per field, keyed `Type.field` (`Query.search`: 10). Needs the
     * schema to know each field's parent type below the root.
     * @default {}
     */
    fieldCosts: z
      .record(
        z.string().regex(/^[_A-Za-z][_0-9A-Za-z]*\.[_A-Za-z][_0-9A-Za-z]*$/, 'must be Type.field'),
        cost,
      )
      .default({}),
  })
  .strict()

/** The cost model of `maxComplexity` and `computeComplexity`. */
export type ComplexityOptions = z.input<typeof ComplexityOptionsSchema>
export type ResolvedComplexityOptions = z.output<typeof ComplexityOptionsSchema>

/** A limit on a count: 0 allows none. */
const count = z.number().int().min(0).max(1e9)

export const GraphqlGuardOptionsSchema = z
  .object({
    /**
     * Deepest field nesting allowed, fragments expanded; `{ a { b } }` is 2.
     * Unchecked when absent.
     */
    maxDepth: z.number().int().min(1).max(1000).optional(),
    /** Highest cost allowed (see `complexity`). Unchecked when absent. */
    maxComplexity: cost.optional(),
    /** Most aliases allowed per operation, counted per fragment use. Unchecked when absent. */
    maxAliases: count.optional(),
    /** Most directive uses allowed per operation, counted per fragment use. Unchecked when absent. */
    maxDirectives: count.optional(),
    /**
     * Most lexical tokens in a query, enforced by graphql-js's parser
     * (`parse(source, { maxTokens })`, graphql ≥ 16.6). Unchecked when absent.
     */
    maxTokens: z.number().int().min(1).max(1e9).optional(),
    /**
     * `__schema` and `__type`: allowed, refused, or allowed only when
     * `isAuthenticated(request)` says so (`graphqlGuards` decides per request;
     * validation rules alone refuse it for everyone, see the docs).
     * `__typename` is always allowed.
     * @default 'enabled'
     */
    introspection: z.enum(['enabled', 'disabled', 'authenticated']).default('enabled'),
    /** The cost model. @default the defaults of each field */
    complexity: ComplexityOptionsSchema.prefault({}),
    /**
     * Say the limit and the measured value in rejection messages ("Query
     * depth 12 exceeds the maximum of 10.") instead of "Query is too deep.".
     * @default false
     */
    revealLimits: z.boolean().default(false),
    /**
     * How much of an error reaches the client: `full` as graphql-js wrote
     * it; `safe` without stacks or `extensions.exception`, a resolver's
     * unexpected error masked as "Internal error"; `minimal` a generic
     * message, our `code` and the request id.
     * @default 'safe'
     */
    errorDetail: z.enum(['full', 'safe', 'minimal']).default('safe'),
    /**
     * Remove graphql-js's "Did you mean …?" suggestions, which let a client
     * map a schema with introspection off.
     * @default true
     */
    blockFieldSuggestions: z.boolean().default(true),
    /** The id `minimal` errors carry. @default the Fastify request id */
    requestId: fn<(context: never) => string>('context => id').optional(),
    /** Whether a request may introspect when `introspection` is `'authenticated'`. */
    isAuthenticated:
      fn<(request: FastifyRequest) => boolean | Promise<boolean>>('request => boolean').optional(),
    /**
     * Called in `preExecution` with each operation's cost; throw a
     * `SecurityError` with a `statusCode` (a `RateLimitExceededError`) to
     * refuse the operation with that status and code.
     */
    chargeCost:
      fn<(request: FastifyRequest, cost: number) => void | Promise<void>>(
        '(request, cost) => void',
      ).optional(),
    /**
     * Called with the request context (the Fastify request under mercurius,
     * the server's context object under graphql-yoga and Apollo Server) and
     * a {@link GuardDecision} for each operation every guard let through,
     * once its cost is known. A throw (or a rejected promise) fails the
     * operation: an observer that cannot run is not silently skipped.
     */
    onAccept: fn<(context: never, decision: GuardDecision) => void | Promise<void>>(
      '(context, decision) => void',
    ).optional(),
    /**
     * Called with the request context and a {@link GuardDecision} for each
     * operation a guard refused (or, with `reportOnly`, would have refused),
     * before the refusal is answered. A throw fails the operation.
     */
    onReject: fn<(context: never, decision: GuardDecision) => void | Promise<void>>(
      '(context, decision) => void',
    ).optional(),
    /**
     * Refuse nothing, report everything: every limit (depth, complexity,
     * aliases, directives, tokens, introspection, persisted-only) is
     * measured and a breach goes to `onReject` with `enforced: false`, but
     * the operation runs. The nesting bound past `MAX_NESTING` and the
     * JSON-document refusal stay enforced (they keep the server's own parser
     * from overflowing or being bypassed), and so does `chargeCost` (a rate
     * limit, not a guard). Needs the plugin, not only the spread, under
     * mercurius: the spread then installs no validation rule.
     * @default false
     */
    reportOnly: z.boolean().default(false),
    /** The manifest of persisted operations (hash → query). */
    persistedOperations: z.instanceof(PersistedOperations).optional(),
    /**
     * With `persistedOperations`: run only manifest operations, refuse
     * registering new ones. `false` also accepts any query and registers
     * automatic persisted queries in a bounded cache.
     * @default true
     */
    persistedOperationsOnly: z.boolean().default(true),
    /**
     * Automatic persisted queries kept when `persistedOperationsOnly` is
     * `false` (least recently used dropped first; 0 keeps none).
     * @default 1024
     */
    apqCacheSize: z.number().int().min(0).max(1e6).default(1024),
  })
  .strict()

/** Options of every GraphQL guard of this module. */
export type GraphqlGuardOptions = z.input<typeof GraphqlGuardOptionsSchema>
export type ResolvedGuardOptions = z.output<typeof GraphqlGuardOptionsSchema>

/** Parses guard options; a bad one throws `ERR_CONFIG_INVALID` naming the field. */
export function parseGuardOptions(
  component: string,
  options: GraphqlGuardOptions | undefined,
): ResolvedGuardOptions {
  return parseOptions(component, GraphqlGuardOptionsSchema, options)
}

// Parsed options per input object, for the per-request entry points
// (checkDocument, analyzeDocument): callers pass the same object on every
// request, and zod is not free. Such an object is read once; later mutations
// of it are not seen (documented on the entry points).
const parsedGuards = new WeakMap<object, ResolvedGuardOptions>()
const parsedComplexity = new WeakMap<object, ResolvedComplexityOptions>()

const DEFAULT_COMPLEXITY: ResolvedComplexityOptions = ComplexityOptionsSchema.parse({})
const DEFAULT_GUARDS: ResolvedGuardOptions = GraphqlGuardOptionsSchema.parse({})

/** `schema` parsed once per options object (`fallback` for none). */
function cachedParse<S extends z.ZodType>(
  parsed: WeakMap<object, z.output<S>>,
  component: string,
  schema: S,
  options: object | undefined,
  fallback: z.output<S>,
): z.output<S> {
  if (options === undefined || options === null) return fallback
  let o = parsed.get(options)
  if (o === undefined) {
    o = parseOptions(component, schema, options)
    parsed.set(options, o)
  }
  return o
}

/** {@link parseGuardOptions}, once per options object. */
export function cachedGuardOptions(
  component: string,
  options: GraphqlGuardOptions | undefined,
): ResolvedGuardOptions {
  return cachedParse(parsedGuards, component, GraphqlGuardOptionsSchema, options, DEFAULT_GUARDS)
}

/** The same for a bare cost model. */
export function cachedComplexityOptions(
  component: string,
  options: ComplexityOptions | undefined,
): ResolvedComplexityOptions {
  return cachedParse(
    parsedComplexity,
    component,
    ComplexityOptionsSchema,
    options,
    DEFAULT_COMPLEXITY,
  )
}
