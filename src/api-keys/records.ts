/**
 * The shapes a stored row is shown in: the administrator's record, the
 * lifecycle event payload and the audit event of an administrative action.
 * Pure functions: what they need of the manager's state is passed in.
 */
import { apiKeyStatus } from '../internal/api-key-status.js'
import { normalizeIp } from '../internal/ip-address.js'
import type { AuditEventInput } from './audit-chain.js'
import type { ApiKeyLifecycleEvent } from './events.js'
import type { ApiKeyActionContext, ApiKeyRecord } from './manager-types.js'
import type { ApiKeyRow } from './store.js'

/**
 * A row as administrators see it, at `now`. `pendingLastUsedAt` is the last
 * use still queued for the next flush: a record read right after a
 * validation shows it, not the stored value that flush will overwrite.
 */
export function toApiKeyRecord(
  row: ApiKeyRow,
  now: number,
  pendingLastUsedAt: number | undefined,
  rotationThreshold: number,
): ApiKeyRecord {
  const lastUsedAt =
    pendingLastUsedAt !== undefined &&
    (row.lastUsedAt === null || pendingLastUsedAt > row.lastUsedAt)
      ? pendingLastUsedAt
      : row.lastUsedAt
  const status = apiKeyStatus(row, now)
  const date = (ms: number | null) => (ms === null ? null : new Date(ms))
  const life = row.expiresAt - row.createdAt
  return {
    keyId: row.keyId,
    name: row.name,
    prefix: row.prefix,
    region: row.region,
    start: row.start,
    tier: row.tier,
    permissions: [...row.permissions],
    allowedIps: row.allowedIps === null ? null : [...row.allowedIps],
    status,
    createdAt: new Date(row.createdAt),
    expiresAt: new Date(row.expiresAt),
    rotatedAt: date(row.rotatedAt),
    graceUntil: date(row.graceUntil),
    replacedBy: row.replacedBy,
    revokedAt: date(row.revokedAt),
    revokedReason: row.revokedReason,
    lastUsedAt: date(lastUsedAt),
    createdBy: row.createdBy,
    shouldRotate: now >= row.createdAt + Math.floor(life * rotationThreshold),
  }
}

/** The payload of a lifecycle event, from a row, a cached key or a record. */
export function lifecycleEvent(k: {
  keyId: string
  name: string
  createdAt: number | Date
  expiresAt: number | Date
}): ApiKeyLifecycleEvent {
  return {
    keyId: k.keyId,
    name: k.name,
    createdAt: new Date(k.createdAt),
    expiresAt: new Date(k.expiresAt),
  }
}

/** The audit event of an administrative action, attributed to who asked. */
export function auditEventOf(
  event: AuditEventInput['event'],
  keyId: string | null,
  context: ApiKeyActionContext,
  at: number,
  detail: AuditEventInput['detail'],
): AuditEventInput {
  return {
    event,
    keyId,
    actor: context.actor ?? null,
    ip: context.ip === undefined ? null : normalizeIp(context.ip),
    at,
    detail,
  }
}
