/**
 * One audit record per request the profile's `auditLevel` selects, with
 * the operations it ran (and, with `auditFieldAccess`, the fields they
 * selected), never a variable or a body.
 */

import { describeError } from '../../internal/logger.js'
import { pathOf } from '../../internal/path-matcher.js'
import { type AuditEvent, classify, codeInBody, fastifyLogAuditSink, isAudited } from '../audit.js'
import { existingNotes, notesOf } from './audit-notes.js'
import type { EnforcerStep } from './step.js'

export const auditLog: EnforcerStep = {
  name: 'auditLog',
  phase: 'onResponse',
  enforces: ['auditLevel', 'auditFieldAccess'],
  enabled: () => true,
  install(context, app) {
    const { profile: p, clock } = context
    const sink = context.options.audit ?? fastifyLogAuditSink
    const fieldAccess = p.auditFieldAccess
    app.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode >= 400) {
        const notes = notesOf(request)
        if (notes.code === null) notes.code = codeInBody(payload)
      }
      return payload
    })
    app.addHook('onResponse', async (request, reply) => {
      const notes = existingNotes(request)
      const operations = notes?.operations ?? []
      const code = notes?.code ?? null
      const { category, event } = classify(reply.statusCode, code, operations)
      if (!isAudited(p.auditLevel, category, event)) return
      const auth = request.auth ?? null
      const record: AuditEvent = {
        category,
        event,
        outcome: reply.statusCode >= 500 ? 'error' : reply.statusCode >= 400 ? 'denied' : 'allowed',
        time: new Date(clock()).toISOString(),
        profile: p.name,
        requestId: String(request.id),
        method: request.method,
        path: pathOf(request.url),
        statusCode: reply.statusCode,
        ip: request.ip,
        principal: auth?.principal ?? null,
        authKind: auth?.kind ?? null,
        code,
        operations,
        ...(fieldAccess && operations.length > 0 ? { fields: [...(notes?.fields ?? [])] } : {}),
      }
      try {
        await sink(record, request)
      } catch (err) {
        request.log.error({ err: describeError(err) }, 'audit sink failed')
      }
    })
    return true
  },
}
