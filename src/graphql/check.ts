/**
 * Limits applied to measured operations: the one place a measurement
 * becomes a rejection, shared by the validation rules, `checkDocument` and
 * the mercurius hooks, so the three can never disagree.
 */
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql'
import { rejection } from '../internal/graphql-rejection.js'
import { type GraphqlRuntime, graphqlRuntime } from '../internal/graphql-runtime.js'
import {
  cachedMetrics,
  costModelFor,
  MAX_NESTING,
  type OperationMetrics,
  selectOperations,
  withVariables,
} from './analysis.js'
import {
  INTROSPECTION_DISABLED,
  INTROSPECTION_NEEDS_AUTH,
  LIMIT_CODES,
  type LimitKind,
  limitMessage,
} from './errors.js'
import {
  cachedGuardOptions,
  type GraphqlGuardOptions,
  type ResolvedGuardOptions,
} from './options.js'
import { countTokens, scanSource } from './source.js'
import { textNestingOver, valueNestingOver } from './variables.js'

/** What happens to `__schema` / `__type` for this check. */
export type IntrospectionVerdict = 'allow' | 'disabled' | 'unauthenticated'

export function introspectionVerdict(
  mode: ResolvedGuardOptions['introspection'],
  authenticated: boolean,
): IntrospectionVerdict {
  if (mode === 'enabled') return 'allow'
  if (mode === 'disabled') return 'disabled'
  return authenticated ? 'allow' : 'unauthenticated'
}

function overLimit(
  runtime: GraphqlRuntime,
  o: ResolvedGuardOptions,
  m: OperationMetrics,
  kind: LimitKind,
  value: number,
  max: number,
): GraphQLError {
  return rejection(
    runtime,
    LIMIT_CODES[kind],
    limitMessage(kind, value, max, o.revealLimits),
    m.operation,
  )
}

/** Appends to `out` every rejection `m` earns under `o`. */
export function operationRejections(
  runtime: GraphqlRuntime,
  o: ResolvedGuardOptions,
  m: OperationMetrics,
  introspection: IntrospectionVerdict,
  out: GraphQLError[],
): void {
  // Nesting past what the walk follows is refused whatever the limits: its
  // figures are lower bounds, and no real client nests a thousand levels.
  if (m.depth === Number.POSITIVE_INFINITY) {
    out.push(overLimit(runtime, o, m, 'depth', m.depth, o.maxDepth ?? MAX_NESTING))
  } else if (o.maxDepth !== undefined && m.depth > o.maxDepth) {
    out.push(overLimit(runtime, o, m, 'depth', m.depth, o.maxDepth))
  }
  if (o.maxComplexity !== undefined && m.complexity > o.maxComplexity) {
    out.push(overLimit(runtime, o, m, 'complexity', m.complexity, o.maxComplexity))
  }
  if (o.maxAliases !== undefined && m.aliases > o.maxAliases) {
    out.push(overLimit(runtime, o, m, 'aliases', m.aliases, o.maxAliases))
  }
  if (o.maxDirectives !== undefined && m.directives > o.maxDirectives) {
    out.push(overLimit(runtime, o, m, 'directives', m.directives, o.maxDirectives))
  }
  if (m.introspection !== 0 && introspection !== 'allow') {
    const message = introspection === 'disabled' ? INTROSPECTION_DISABLED : INTROSPECTION_NEEDS_AUTH
    out.push(
      rejection(
        runtime,
        'ERR_GRAPHQL_INTROSPECTION_DISABLED',
        message,
        m.introspectionNode ?? m.operation,
      ),
    )
  }
}

/** The token-limit rejection of a parsed document, if it has more than `maxTokens`. */
export function tokenRejection(
  runtime: GraphqlRuntime,
  o: ResolvedGuardOptions,
  document: DocumentNode,
): GraphQLError | undefined {
  if (o.maxTokens === undefined) return undefined
  const n = countTokens(document, o.maxTokens)
  if (n === undefined || n <= o.maxTokens) return undefined
  return rejection(
    runtime,
    LIMIT_CODES.tokens,
    limitMessage('tokens', n, o.maxTokens, o.revealLimits),
  )
}

/**
 * The token and nesting limits on a query's text, before graphql-js parses
 * it: its recursive parser overflows the stack on a document nested a few
 * thousand levels deep, whatever the token limit.
 */
export function sourceRejection(
  runtime: GraphqlRuntime,
  o: ResolvedGuardOptions,
  source: string,
): GraphQLError | undefined {
  const verdict = scanSource(source, o.maxTokens, MAX_NESTING)
  if (verdict.over === undefined) return undefined
  if (verdict.over === 'nesting') return nestingRejection(runtime, o)
  return rejection(
    runtime,
    LIMIT_CODES.tokens,
    limitMessage('tokens', verdict.tokens, o.maxTokens!, o.revealLimits),
  )
}

/**
 * The nesting bound alone on a query's text: what still holds under
 * `reportOnly` once a token breach was reported and let through.
 */
export function sourceNestingRejection(
  runtime: GraphqlRuntime,
  o: ResolvedGuardOptions,
  source: string,
): GraphQLError | undefined {
  return scanSource(source, undefined, MAX_NESTING).over === 'nesting'
    ? nestingRejection(runtime, o)
    : undefined
}

/**
 * The nesting bound on an operation's variables (parsed, or GET's JSON
 * text), before graphql-js's recursive input coercion meets them.
 */
export function variablesRejection(
  runtime: GraphqlRuntime,
  o: ResolvedGuardOptions,
  variables: unknown,
): GraphQLError | undefined {
  const over =
    typeof variables === 'string'
      ? textNestingOver(variables, MAX_NESTING)
      : valueNestingOver(variables, MAX_NESTING)
  return over ? nestingRejection(runtime, o) : undefined
}

/** Past `MAX_NESTING`: the depth code, whatever the depth limit. */
function nestingRejection(runtime: GraphqlRuntime, o: ResolvedGuardOptions): GraphQLError {
  const max = o.maxDepth ?? MAX_NESTING
  return rejection(
    runtime,
    LIMIT_CODES.depth,
    limitMessage('depth', Number.POSITIVE_INFINITY, max, o.revealLimits),
  )
}

/** The request-side facts `checkDocument` needs. */
export interface CheckContext {
  /** The schema (for `fieldCosts` below the root types). */
  readonly schema?: GraphQLSchema | undefined
  /** Check this operation only; every operation when absent. */
  readonly operationName?: string | null | undefined
  /** Whether the caller may introspect when `introspection` is `'authenticated'`. @default false */
  readonly authenticated?: boolean | undefined
  /** The request's variables: list sizes given by a variable then use its value. */
  readonly variables?: Readonly<Record<string, unknown>> | null | undefined
}

/**
 * Every limit of `options` applied to a parsed document, framework-free:
 * the same rejections (GraphQLErrors with `extensions.code`) the validation
 * rules and the mercurius hooks produce. Empty when the document passes.
 * `options` is read once per object.
 *
 * @example
 * ```ts
 * import { parse } from 'graphql'
 * import { checkDocument } from 'fraiseql-security/graphql'
 * const errors = checkDocument(parse(query), { maxDepth: 10, introspection: 'authenticated' }, { authenticated: false })
 * if (errors.length > 0) return { errors }
 * ```
 */
export function checkDocument(
  document: DocumentNode,
  options?: GraphqlGuardOptions,
  context: CheckContext = {},
): GraphQLError[] {
  const o = cachedGuardOptions('checkDocument', options)
  const runtime = graphqlRuntime('checkDocument')
  const out: GraphQLError[] = []
  const tokens = tokenRejection(runtime, o, document)
  if (tokens !== undefined) out.push(tokens)
  const model = costModelFor(o.complexity)
  const metrics = cachedMetrics(document, model, context.schema)
  const verdict = introspectionVerdict(o.introspection, context.authenticated === true)
  for (const m of selectOperations(metrics, context.operationName)) {
    const measured = withVariables(document, m, model, context.schema, context.variables)
    operationRejections(runtime, o, measured, verdict, out)
  }
  return out
}
