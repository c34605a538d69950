/**
 * The per-row MAC of `api_keys`. The key's HMAC only proves the caller holds
 * the key string; whether that key is revoked, when it expires, what it may
 * do and from where are plain columns a database writer could edit
 * (`revoked_at = NULL`, `permissions = '["admin"]'`). Each row therefore
 * carries HMAC-SHA256 over every security-relevant column, keyed by a
 * subkey of the row's pepper (HKDF-SHA256, RFC 5869, with its own `info`,
 * so the subkey is independent of the key-hashing one), and is refused on
 * load when it does not match.
 *
 * Covered: key id, key hash, pepper version, prefix, region, tier,
 * permissions, allowed addresses, created/expires/rotated/grace/revoked
 * times and the replacement id. Not covered, because nothing is decided by
 * them: name, display start, revocation reason, last use, creator, the
 * retained encrypted key (which is itself bound to its key id).
 */
import { hkdfSync } from 'node:crypto'
import { canonicalJson } from '../internal/canonical-json.js'
import { hashesEqual, Pepper } from './hash.js'
import type { ApiKeyRow } from './store.js'

const ROW_MAC_INFO = 'fraiseql-security api-key row mac v1'
/** The audit chain's links (audit-chain.ts). */
const AUDIT_CHAIN_INFO = 'fraiseql-security api-key audit chain v1'
/** Checkpoints: their own subkey, so a checkpoint MAC is never a valid link or the reverse. */
const AUDIT_CHECKPOINT_INFO = 'fraiseql-security api-key audit checkpoint v1'

/** An HKDF-SHA256 (RFC 5869) subkey of a pepper, one per `info` label. */
function pepperSubkey(pepper: Uint8Array, info: string): Pepper {
  const sub = Buffer.from(hkdfSync('sha256', pepper, new Uint8Array(0), info, 32))
  try {
    return new Pepper(sub)
  } finally {
    sub.fill(0)
  }
}

/** The row-MAC key of one pepper version. `pepper` is not kept; zero it as usual. */
export function rowMacKey(pepper: Uint8Array): Pepper {
  return pepperSubkey(pepper, ROW_MAC_INFO)
}

/** The audit-chain link key and the checkpoint key, from pepper version 1. */
export function auditKeys(pepper: Uint8Array): { chain: Pepper; checkpoint: Pepper } {
  return {
    chain: pepperSubkey(pepper, AUDIT_CHAIN_INFO),
    checkpoint: pepperSubkey(pepper, AUDIT_CHECKPOINT_INFO),
  }
}

type Covered = Pick<
  ApiKeyRow,
  | 'keyId'
  | 'hash'
  | 'pepperVersion'
  | 'prefix'
  | 'region'
  | 'tier'
  | 'permissions'
  | 'allowedIps'
  | 'createdAt'
  | 'expiresAt'
  | 'rotatedAt'
  | 'graceUntil'
  | 'replacedBy'
  | 'revokedAt'
>

/** The MAC a row must carry. */
export function rowMac(key: Pepper, row: Covered): Buffer {
  return key.mac(
    canonicalJson({
      v: 1,
      keyId: row.keyId,
      hash: Buffer.from(row.hash).toString('hex'),
      pepperVersion: row.pepperVersion,
      prefix: row.prefix,
      region: row.region,
      tier: row.tier,
      permissions: [...row.permissions],
      allowedIps: row.allowedIps === null ? null : [...row.allowedIps],
      createdAt: row.createdAt,
      expiresAt: row.expiresAt,
      rotatedAt: row.rotatedAt,
      graceUntil: row.graceUntil,
      replacedBy: row.replacedBy,
      revokedAt: row.revokedAt,
    }),
  )
}

/** Whether `row` carries the MAC its columns call for (constant time). A row without one fails. */
export function rowMacValid(key: Pepper, row: ApiKeyRow): boolean {
  const stored = row.rowMac
  if (stored === undefined || stored === null) return false
  return hashesEqual(rowMac(key, row), stored)
}
