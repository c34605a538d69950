/**
 * How the guards refuse: a `GraphQLError` with `extensions.code` set to one
 * of our stable codes (graphql-armor leaves the code out; clients then have to
 * parse messages), and, where a mercurius hook has to throw, one error that
 * carries those GraphQL errors and the HTTP status.
 */
import type { GraphQLError } from 'graphql'
import { SecurityError, type SecurityErrorCode, type SecurityErrorOptions } from '../errors.js'

/** The codes GraphQL rejections carry in `extensions.code`. */
export type GraphqlRejectionCode = Extract<SecurityErrorCode, `ERR_GRAPHQL_${string}`>

/** A limit on something measured in a document. */
export type LimitKind = 'depth' | 'complexity' | 'aliases' | 'directives' | 'tokens'

export const LIMIT_CODES: Readonly<Record<LimitKind, GraphqlRejectionCode>> = {
  depth: 'ERR_GRAPHQL_DEPTH_LIMIT',
  complexity: 'ERR_GRAPHQL_COMPLEXITY_LIMIT',
  aliases: 'ERR_GRAPHQL_ALIAS_LIMIT',
  directives: 'ERR_GRAPHQL_DIRECTIVE_LIMIT',
  tokens: 'ERR_GRAPHQL_TOKEN_LIMIT',
}

// By default a rejection says which limit, never its value: a client probing
// for the exact maximum learns nothing it can tune an attack to.
const HIDDEN: Readonly<Record<LimitKind, string>> = {
  depth: 'Query is too deep.',
  complexity: 'Query is too complex.',
  aliases: 'Query has too many aliases.',
  directives: 'Query has too many directives.',
  tokens: 'Query is too large.',
}

/** The message of a limit rejection, with the figures only when `reveal` is on. */
export function limitMessage(kind: LimitKind, value: number, max: number, reveal: boolean): string {
  if (!reveal) return HIDDEN[kind]
  switch (kind) {
    case 'depth':
      return value === Number.POSITIVE_INFINITY
        ? `Query nesting exceeds what the guard analyses; the maximum depth is ${max}.`
        : `Query depth ${value} exceeds the maximum of ${max}.`
    case 'complexity':
      return value === Number.POSITIVE_INFINITY
        ? `Query complexity exceeds the maximum of ${max}.`
        : `Query complexity ${Math.ceil(value)} exceeds the maximum of ${max}.`
    case 'aliases':
      return `Query has ${value} aliases; the maximum is ${max}.`
    case 'directives':
      return `Query has ${value} directives; the maximum is ${max}.`
    case 'tokens':
      return `Query has more than ${max} tokens.`
  }
}

export const INTROSPECTION_DISABLED = 'Introspection is disabled.'
export const INTROSPECTION_NEEDS_AUTH = 'Introspection requires authentication.'
export const JSON_DOCUMENT_REFUSED = 'Query must be GraphQL source text.'

/**
 * GraphQL rejections thrown where mercurius only accepts a thrown error (its
 * hooks, the persisted-query lookup). Shaped as mercurius's own validation
 * error: its formatters read `errors` and `statusCode`, and the wrapper
 * GraphQLError it builds takes `extensions`. The instance `code` is the
 * first rejection's.
 *
 * @example
 * ```ts
 * import { GraphqlRejectedError } from 'fraiseql-security/graphql'
 * try { await app.graphql(query) } catch (err) {
 *   if (err instanceof GraphqlRejectedError) console.log(err.code, err.errors.length)
 * }
 * ```
 */
export class GraphqlRejectedError extends SecurityError {
  override readonly statusCode: number
  /** The rejections, each with `extensions.code`. */
  readonly errors: readonly GraphQLError[]
  /** Copied by mercurius onto the GraphQLError it wraps this error in. */
  readonly extensions: { readonly code: SecurityErrorCode }

  constructor(errors: readonly GraphQLError[], statusCode = 400, options?: SecurityErrorOptions) {
    const first = errors[0]
    super(first?.message ?? 'Request rejected', options)
    const code = (first?.extensions.code as SecurityErrorCode | undefined) ?? 'ERR_SECURITY'
    ;(this as { code: SecurityErrorCode }).code = code
    this.statusCode = statusCode
    this.errors = errors
    this.extensions = { code }
  }
}
