/**
 * What the audit step learns of the GraphQL operations a request ran, from
 * whichever server ran them (mercurius's hook, the yoga and Apollo
 * plugins): each operation's type and name (never its variables) and, with
 * `auditFieldAccess`, the `Type.field` coordinates the executed ones
 * selected.
 */
import type { FastifyRequest } from 'fastify'
import type { DocumentNode, GraphQLSchema, OperationDefinitionNode } from 'graphql'
import { selectedFields } from '../field-access.js'
import { notesOf } from './audit-notes.js'

/**
 * Notes the operations of `document` on `request`; `operationName` is the
 * one the request asked for (graphql-js runs only that one of several).
 */
export function noteOperations(
  request: FastifyRequest,
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  fieldAccess: boolean,
): void {
  const notes = notesOf(request)
  const operations: OperationDefinitionNode[] = []
  for (const def of document.definitions) {
    if (def.kind === 'OperationDefinition') {
      operations.push(def)
      notes.operations.push({ type: def.operation, name: def.name?.value ?? null })
    }
  }
  if (!fieldAccess) return
  const executed =
    operations.length === 1 || operationName === undefined || operationName === null
      ? operations
      : operations.filter((op) => op.name?.value === operationName)
  notes.fields ??= new Set()
  for (const field of selectedFields(schema, document, executed)) notes.fields.add(field)
}
