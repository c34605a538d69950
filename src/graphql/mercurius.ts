/**
 * What mercurius only takes at registration, as one object to spread:
 * validation rules, the parser's token limit, the error formatter and the
 * persisted-operation provider.
 */
import type { ValidationRule } from 'graphql'
import { graphqlRuntime } from '../internal/graphql-runtime.js'
import { errorFormatterFor, type MercuriusErrorFormatter } from './error-formatter.js'
import { type GraphqlGuardOptions, parseGuardOptions } from './options.js'
import { type PersistedQueryProvider, persistedQueryProviderFor } from './persisted.js'
import { validationRulesFor } from './rules.js'

/**
 * The mercurius registration options {@link mercuriusGuardOptions} returns
 * (a type alias, not an interface, so it also fits `Record<string, unknown>`).
 */
export type MercuriusGuardOptions = {
  validationRules: ValidationRule[]
  errorFormatter: MercuriusErrorFormatter
  graphql: {
    /** graphql-js's `parse` options: `maxTokens` (graphql ≥ 16.6). */
    parseOptions: { maxTokens?: number }
    /** graphql-js's `validate` options: `hideSuggestions` (graphql ≥ 16.10). */
    validateOptions: { maxErrors: number; hideSuggestions: boolean }
  }
  persistedQueryProvider?: PersistedQueryProvider
}

/**
 * Options to spread into `app.register(mercurius, …)`. Register
 * {@link graphqlGuards} after mercurius with the same options as well: it
 * enforces the limits again in `preExecution` (where mercurius's validation
 * cache cannot skip them), decides authenticated introspection per request,
 * charges costs, and refuses JSON documents that would bypass `maxTokens`.
 * The spread replaces any `graphql`, `errorFormatter` or `validationRules`
 * option written before it.
 *
 * @example
 * ```ts
 * const opts = { maxDepth: 10, maxComplexity: 1000, maxTokens: 2000, introspection: 'disabled' } as const
 * await app.register(mercurius, { schema, resolvers, ...mercuriusGuardOptions(opts) })
 * await app.register(graphqlGuards, opts)
 * ```
 */
export function mercuriusGuardOptions(options?: GraphqlGuardOptions): MercuriusGuardOptions {
  const o = parseGuardOptions('mercuriusGuardOptions', options)
  const runtime = graphqlRuntime('mercuriusGuardOptions')
  const out: MercuriusGuardOptions = {
    // Under reportOnly nothing may refuse before the plugin reports: no
    // rule, no parser limit (the plugin measures both per request).
    validationRules: o.reportOnly ? [] : validationRulesFor(o),
    errorFormatter: errorFormatterFor(o),
    graphql: {
      parseOptions: o.maxTokens === undefined || o.reportOnly ? {} : { maxTokens: o.maxTokens },
      // graphql-js's own default error cap, written out: mercurius replaces
      // the whole object, and suggestions are best never produced at all.
      validateOptions: { maxErrors: 100, hideSuggestions: o.blockFieldSuggestions },
    },
  }
  if (o.persistedOperations !== undefined) {
    out.persistedQueryProvider = persistedQueryProviderFor(runtime, o.persistedOperations, {
      required: o.persistedOperationsOnly,
      apqCacheSize: o.apqCacheSize,
    })
  }
  return out
}
