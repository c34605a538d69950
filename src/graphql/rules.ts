/**
 * The guards as graphql-js validation rules. One rule does everything: on
 * entering the document it measures every operation in one walk (see
 * analysis.ts), reports, and returns `false` so graphql-js never calls it
 * again for the rest of the tree: no per-node cost beyond the walk itself.
 */
import type { GraphQLError, GraphQLSchema, ValidationRule } from 'graphql'
import { graphqlRuntime } from '../internal/graphql-runtime.js'
import { costModelFor, documentMetrics } from './analysis.js'
import { type IntrospectionVerdict, operationRejections } from './check.js'
import {
  type GraphqlGuardOptions,
  parseGuardOptions,
  type ResolvedGuardOptions,
} from './options.js'

// Schemas the graphqlGuards plugin serves. Validation results are cached by
// mercurius per query string, so they must not depend on who asked: with
// introspection 'authenticated', a rule cannot know the caller. It refuses
// introspection for everyone (fail closed) unless the plugin, which decides
// per request in preExecution, is present for this schema.
const perRequestIntrospection = new WeakSet<GraphQLSchema>()

/** Called by the plugin before validation runs on `schema` (its preParsing hook). */
export function markIntrospectionPerRequest(schema: GraphQLSchema): void {
  perRequestIntrospection.add(schema)
}

function ruleVerdict(o: ResolvedGuardOptions, schema: GraphQLSchema): IntrospectionVerdict {
  if (o.introspection === 'enabled') return 'allow'
  if (o.introspection === 'disabled') return 'disabled'
  return perRequestIntrospection.has(schema) ? 'allow' : 'unauthenticated'
}

/** Whether the options ask the rules to check anything. */
function checksSomething(o: ResolvedGuardOptions): boolean {
  return (
    o.maxDepth !== undefined ||
    o.maxComplexity !== undefined ||
    o.maxAliases !== undefined ||
    o.maxDirectives !== undefined ||
    o.introspection !== 'enabled'
  )
}

/** {@link createValidationRules} from options already parsed. */
export function validationRulesFor(o: ResolvedGuardOptions): ValidationRule[] {
  // Loaded even when there is nothing to check: a missing graphql-js should
  // fail at startup, not on the first request that needs a rule.
  const runtime = graphqlRuntime('createValidationRules')
  const model = costModelFor(o.complexity)
  const rule: ValidationRule = (context) => ({
    Document(node) {
      const schema = context.getSchema()
      const verdict = ruleVerdict(o, schema)
      const errors: GraphQLError[] = []
      for (const m of documentMetrics(node, model, schema).operations) {
        operationRejections(runtime, o, m, verdict, errors)
      }
      for (const e of errors) context.reportError(e)
      return false
    },
  })
  return checksSomething(o) ? [rule] : []
}

/**
 * graphql-js validation rules for depth, complexity, aliases, directives and
 * introspection, to run after `specifiedRules`. They report through
 * `context.reportError` (never throw), each rejection a `GraphQLError` with
 * `extensions.code`. Absent limits are not checked. One walk per document
 * measures everything; fragments are expanded once and memoized.
 *
 * @example
 * ```ts
 * import { parse, specifiedRules, validate } from 'graphql'
 * import { createValidationRules } from 'fraiseql-security/graphql'
 * const rules = createValidationRules({ maxDepth: 10, maxComplexity: 1000, introspection: 'disabled' })
 * const errors = validate(schema, parse(query), [...specifiedRules, ...rules])
 * ```
 */
export function createValidationRules(options?: GraphqlGuardOptions): ValidationRule[] {
  return validationRulesFor(parseGuardOptions('createValidationRules', options))
}
