/**
 * Audit events: what happened to a request, as one structured record written
 * in `onResponse`, filtered by the profile's `auditLevel`. A record names the
 * principal, the route and the outcome; it never holds a variable's value, a
 * token, a header or a body, so a sink may ship it anywhere.
 */
import type { FastifyRequest } from 'fastify'

/**
 * What a profile audits: access refusals only; every security event; plus
 * mutations; plus every operation.
 */
export type AuditLevel = 'minimal' | 'standard' | 'enhanced' | 'verbose'

/** The kind of an audit event, from most to least often kept. */
export type AuditCategory = 'security' | 'mutation' | 'operation'

/** One GraphQL operation, by type and name only (never its variables). */
export interface AuditedOperation {
  readonly type: 'query' | 'mutation' | 'subscription'
  readonly name: string | null
}

export interface AuditEvent {
  /** `security` (refusals, authentication failures, rate limiting), `mutation` or `operation`. */
  readonly category: AuditCategory
  /** What happened, e.g. `auth.failed`, `rate_limit.exceeded`, `graphql.mutation`. */
  readonly event: string
  /** `denied` for any 4xx refusal, `error` for 5xx, else `allowed`. */
  readonly outcome: 'allowed' | 'denied' | 'error'
  /** ISO 8601 time of the response. */
  readonly time: string
  /** The profile that was enforced. */
  readonly profile: string
  readonly requestId: string
  readonly method: string
  /** The path without its query string (which may carry secrets). */
  readonly path: string
  readonly statusCode: number
  /** Client IP as Fastify resolved it. */
  readonly ip: string
  /** The authenticated principal, if any. */
  readonly principal: string | null
  readonly authKind: string | null
  /** Our stable error code, when the refusal was ours. */
  readonly code: string | null
  /** GraphQL operations of the request, when it was one. */
  readonly operations: readonly AuditedOperation[]
  /**
   * With the profile's `auditFieldAccess`: the `Type.field` coordinates the
   * request's executed operations selected (fragments expanded, first use
   * first, `__typename` left out). Never an argument's value.
   */
  readonly fields?: readonly string[]
}

/**
 * Where audit events go. Called after the response is sent; a sink that
 * throws or rejects is logged and never affects a request.
 */
export type AuditSink = (event: AuditEvent, request: FastifyRequest) => void | Promise<void>

/** The default sink: one structured `info` line on the request's Fastify logger. */
export const fastifyLogAuditSink: AuditSink = (event, request) => {
  request.log.info({ audit: event }, 'audit')
}

const LEVEL_RANK: Record<AuditLevel, number> = { minimal: 0, standard: 0, enhanced: 1, verbose: 2 }
const CATEGORY_RANK: Record<AuditCategory, number> = { security: 0, mutation: 1, operation: 2 }

/**
 * The security events `minimal` keeps: who was refused access (no or bad
 * credentials, forbidden, no TLS or client certificate). Rate limiting,
 * size limits and GraphQL guard refusals are `standard` and above.
 */
const ACCESS_EVENTS: ReadonlySet<string> = new Set(['auth.failed', 'access.denied', 'tls.required'])

/** Whether `level` keeps the event `event` of `category`. */
export function isAudited(level: AuditLevel, category: AuditCategory, event: string): boolean {
  if (level === 'minimal') return category === 'security' && ACCESS_EVENTS.has(event)
  return CATEGORY_RANK[category] <= LEVEL_RANK[level]
}

/** Status codes that are security events whoever answered them. */
const SECURITY_STATUS: Readonly<Record<number, string>> = {
  401: 'auth.failed',
  403: 'access.denied',
  408: 'request.timeout',
  413: 'body.too_large',
  415: 'request.rejected',
  426: 'tls.required',
  429: 'rate_limit.exceeded',
}

/**
 * The category and event name of a finished request. A GraphQL refusal by a
 * guard (a 400 carrying one of our codes) is a security event too.
 */
export function classify(
  statusCode: number,
  code: string | null,
  operations: readonly AuditedOperation[],
): { category: AuditCategory; event: string } {
  const byStatus = SECURITY_STATUS[statusCode]
  if (byStatus !== undefined) return { category: 'security', event: byStatus }
  if (code !== null) return { category: 'security', event: eventOfCode(code) }
  if (operations.some((o) => o.type === 'mutation'))
    return { category: 'mutation', event: 'graphql.mutation' }
  if (operations.length > 0)
    return { category: 'operation', event: `graphql.${operations[0]!.type}` }
  return { category: 'operation', event: 'http.request' }
}

function eventOfCode(code: string): string {
  if (code.startsWith('ERR_GRAPHQL_')) return 'graphql.rejected'
  return 'request.rejected'
}

/** The security codes a GraphQL error body carries (`"code":"ERR_…"`), without parsing it all. */
export function codeInBody(payload: unknown): string | null {
  if (typeof payload !== 'string' || payload.length > 1_000_000) return null
  const m = /"code"\s*:\s*"(ERR_[A-Z0-9_]{1,60})"/.exec(payload)
  return m === null ? null : m[1]!
}
