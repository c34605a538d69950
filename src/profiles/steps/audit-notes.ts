/**
 * What the steps learn about a request for its audit record: the refusal
 * code a gate answered with, the operations GraphQL ran, the fields they
 * selected. Kept on the request under a symbol, read by the audit step.
 */
import type { FastifyRequest } from 'fastify'
import type { AuditedOperation } from '../audit.js'

export interface AuditNotes {
  operations: AuditedOperation[]
  code: string | null
  /** With `auditFieldAccess`: the coordinates the executed operations selected. */
  fields: Set<string> | undefined
}

const kAudit = Symbol('fraiseql-security.audit')
type Noted = FastifyRequest & { [kAudit]?: AuditNotes }

/** The notes of `request`, created on first use. */
export function notesOf(request: FastifyRequest): AuditNotes {
  const r = request as Noted
  let notes = r[kAudit]
  if (notes === undefined) {
    notes = { operations: [], code: null, fields: undefined }
    r[kAudit] = notes
  }
  return notes
}

/** The notes of `request` if any step wrote some. */
export function existingNotes(request: FastifyRequest): AuditNotes | undefined {
  return (request as Noted)[kAudit]
}
