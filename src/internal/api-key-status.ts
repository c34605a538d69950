import type { ApiKeyRow, ApiKeyStatus } from '../api-keys/index.js'

/**
 * A stored key's status at `now`. One definition for the manager and the
 * CLI's KMS-free `keys list`, so both say the same of a row.
 */
export function apiKeyStatus(
  row: Pick<ApiKeyRow, 'revokedAt' | 'expiresAt' | 'graceUntil'>,
  now: number,
): ApiKeyStatus {
  if (row.revokedAt !== null) return 'revoked'
  if (now >= row.expiresAt) return 'expired'
  if (row.graceUntil === null) return 'active'
  return now >= row.graceUntil ? 'rotated' : 'grace'
}
