/**
 * One GraphQL rejection: a `GraphQLError` of the loaded graphql-js with
 * `extensions.code` set to one of our stable codes. Shared by the GraphQL
 * guards and the profile enforcer's own GraphQL refusals (batch size).
 */
import type { ASTNode, GraphQLError } from 'graphql'
import type { SecurityErrorCode } from '../errors.js'
import type { GraphqlRuntime } from './graphql-runtime.js'

/** One GraphQL rejection with its code. */
export function rejection(
  runtime: GraphqlRuntime,
  code: SecurityErrorCode,
  message: string,
  nodes?: ASTNode | readonly ASTNode[],
): GraphQLError {
  return new runtime.GraphQLError(
    message,
    nodes === undefined ? { extensions: { code } } : { nodes, extensions: { code } },
  )
}
