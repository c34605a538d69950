/**
 * The tamper-evident audit chain. Each row's `hash` is SHA-256 over the
 * canonical JSON of its own fields and the previous row's hash, so editing,
 * deleting or reordering any row breaks every link after it. Rows are
 * appended under one lock per chain (PostgreSQL advisory lock, SQLite write
 * lock), so processes sharing a database extend one chain.
 *
 * The chain detects changes made by anyone without the means to rewrite
 * every later row; an attacker who can rewrite the whole table can forge a
 * new chain. Export the latest hash elsewhere (a log pipeline, a ticket) to
 * anchor it.
 */
import { createHash } from 'node:crypto'
import { canonicalJson } from '../internal/canonical-json.js'

/** What the audit log records. `validated` and `rejected` rows are aggregated per flush. */
export type AuditEventType = 'created' | 'rotated' | 'revoked' | 'validated' | 'rejected' | 'pepper'

export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = [
  'created',
  'rotated',
  'revoked',
  'validated',
  'rejected',
  'pepper',
]

/** Scalar details only: never a key, a secret or a hash. */
export type AuditDetail = Readonly<Record<string, string | number | boolean | null>>

/** An event about to be appended. */
export interface AuditEventInput {
  readonly event: AuditEventType
  /** The key concerned (ids are public), or null (a malformed key has none). */
  readonly keyId: string | null
  /** Who did it: an admin principal, `system`, or null for a client request. */
  readonly actor: string | null
  /** The client address, normalized (`::ffff:` removed). */
  readonly ip: string | null
  /** Milliseconds since the epoch. */
  readonly at: number
  readonly detail: AuditDetail
}

/** An event as stored, with its place in the chain. */
export interface AuditRecord extends AuditEventInput {
  /** Position in the chain, from 1. */
  readonly seq: number
  /** `hash` of the previous row; 64 zeros for the first. */
  readonly prevHash: string
  readonly hash: string
}

export const GENESIS_HASH = '0'.repeat(64)

/** The hash a row must carry, from its fields and the previous row's hash. */
export function auditHash(seq: number, prevHash: string, e: AuditEventInput): string {
  const body = canonicalJson({
    seq,
    prevHash,
    event: e.event,
    keyId: e.keyId,
    actor: e.actor,
    ip: e.ip,
    at: e.at,
    detail: e.detail,
  })
  return createHash('sha256').update(body).digest('hex')
}

/** Chains `events` after the row `(seq, hash)` (or the genesis). */
export function chainEvents(
  last: { seq: number; hash: string } | undefined,
  events: readonly AuditEventInput[],
): AuditRecord[] {
  let seq = last?.seq ?? 0
  let prevHash = last?.hash ?? GENESIS_HASH
  return events.map((e) => {
    seq++
    const hash = auditHash(seq, prevHash, e)
    const record: AuditRecord = { ...e, seq, prevHash, hash }
    prevHash = hash
    return record
  })
}

/** The result of {@link verifyAuditRecords} / `verifyAuditChain()`. */
export type AuditChainReport =
  | { readonly ok: true; readonly checked: number; readonly lastHash: string }
  | {
      readonly ok: false
      readonly checked: number
      /** The `seq` of the first row that does not follow from the one before it. */
      readonly brokenAt: number
      /** `gap`: a row is missing; `link`: prevHash differs from the previous hash; `hash`: the row was altered. */
      readonly reason: 'gap' | 'link' | 'hash'
    }

/** Incremental verifier: feed rows in `seq` order, read the report at the end. */
export class AuditChainVerifier {
  #expectedSeq = 1
  #prevHash = GENESIS_HASH
  #checked = 0
  #broken: AuditChainReport | undefined

  /** Checks the next row; returns false once the chain is broken (stop reading). */
  push(row: AuditRecord): boolean {
    if (this.#broken !== undefined) return false
    const fail = (reason: 'gap' | 'link' | 'hash') => {
      this.#broken = { ok: false, checked: this.#checked, brokenAt: row.seq, reason }
      return false
    }
    if (row.seq !== this.#expectedSeq) return fail('gap')
    if (row.prevHash !== this.#prevHash) return fail('link')
    if (auditHash(row.seq, row.prevHash, row) !== row.hash) return fail('hash')
    this.#checked++
    this.#expectedSeq++
    this.#prevHash = row.hash
    return true
  }

  report(): AuditChainReport {
    return this.#broken ?? { ok: true, checked: this.#checked, lastHash: this.#prevHash }
  }
}

/** Verifies rows given in `seq` order. */
export function verifyAuditRecords(rows: Iterable<AuditRecord>): AuditChainReport {
  const v = new AuditChainVerifier()
  for (const row of rows) if (!v.push(row)) break
  return v.report()
}
