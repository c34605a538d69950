/**
 * The tamper-evident audit chain. Each row's `hash` is HMAC-SHA256, keyed by
 * an HKDF subkey of pepper version 1 (row-mac.ts), over the canonical JSON
 * of its own fields and the previous row's hash, so editing, deleting or
 * reordering any row breaks every link after it, and a database writer
 * (who holds no pepper) cannot compute the links of a re-chained table.
 * Rows are appended under one lock per chain (PostgreSQL advisory lock,
 * SQLite write lock), so processes sharing a database extend one chain.
 *
 * Chains written before the key existed used plain SHA-256 (`auditHash`);
 * the verifier accepts such rows only as a prefix that a keyed row follows
 * (its MAC covers the last legacy hash, so the prefix is authenticated from
 * there on). A chain that ends unkeyed is reported (`unkeyed`): a writer
 * could have re-chained it with SHA-256.
 *
 * Deleting the newest rows leaves a valid shorter chain; only an anchor the
 * caller kept elsewhere (a checkpoint shipped to an append-only sink)
 * detects it (`truncated`).
 */
import { createHash } from 'node:crypto'
import { canonicalJson } from '../internal/canonical-json.js'

/** A key that MACs chain links (structural: the manager passes a pepper subkey). */
export interface AuditChainKey {
  mac(data: string): Uint8Array
}

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

/** What a link is computed over. */
function auditBody(seq: number, prevHash: string, e: AuditEventInput): string {
  return canonicalJson({
    seq,
    prevHash,
    event: e.event,
    keyId: e.keyId,
    actor: e.actor,
    ip: e.ip,
    at: e.at,
    detail: e.detail,
  })
}

/**
 * The unkeyed (legacy) hash a row written before the keyed chain carries:
 * SHA-256 of its fields and the previous row's hash. Anyone can compute it,
 * which is why chains are now keyed; kept to verify the legacy prefix.
 */
export function auditHash(seq: number, prevHash: string, e: AuditEventInput): string {
  return createHash('sha256')
    .update(auditBody(seq, prevHash, e))
    .digest('hex')
}

/** The keyed link: HMAC-SHA256 under the audit-chain subkey, hex. */
export function auditMac(
  key: AuditChainKey,
  seq: number,
  prevHash: string,
  e: AuditEventInput,
): string {
  return Buffer.from(key.mac(auditBody(seq, prevHash, e))).toString('hex')
}

/**
 * Chains `events` after the row `(seq, hash)` (or the genesis): keyed when
 * `key` is given (the manager always gives it), SHA-256 otherwise (a store
 * used on its own, as before).
 */
export function chainEvents(
  last: { seq: number; hash: string } | undefined,
  events: readonly AuditEventInput[],
  key?: AuditChainKey,
): AuditRecord[] {
  let seq = last?.seq ?? 0
  let prevHash = last?.hash ?? GENESIS_HASH
  return events.map((e) => {
    seq++
    const hash = key === undefined ? auditHash(seq, prevHash, e) : auditMac(key, seq, prevHash, e)
    const record: AuditRecord = { ...e, seq, prevHash, hash }
    prevHash = hash
    return record
  })
}

/**
 * A point of the chain the caller recorded outside the database: the last
 * `sequence` and its `hash` (an {@link AuditCheckpoint} fits).
 */
export interface AuditAnchor {
  readonly sequence: number
  readonly hash: string
}

/** Why a chain does not verify. */
export type AuditChainFailure =
  /** A row is missing (seq jumps). */
  | 'gap'
  /** prevHash differs from the previous row's hash. */
  | 'link'
  /** The row was altered (its hash is not the MAC, or the SHA-256, of its fields). */
  | 'hash'
  /** The chain stops before the anchor's sequence: its tail was deleted. */
  | 'truncated'
  /** The row at the anchor's sequence carries another hash: the chain was rewritten. */
  | 'anchor'
  /** No keyed row follows the legacy SHA-256 rows: anyone could have written them. */
  | 'unkeyed'

/** The result of {@link verifyAuditRecords} / `verifyAuditChain()`. */
export type AuditChainReport =
  | {
      readonly ok: true
      readonly checked: number
      readonly lastHash: string
      /** The `seq` of the last row (0 for an empty chain). */
      readonly lastSequence: number
      /** The first keyed row's `seq`; rows before it are legacy SHA-256. null: none is keyed (or no key was given). */
      readonly keyedFrom: number | null
      /** Whether an anchor was given and matched. */
      readonly anchored: boolean
    }
  | {
      readonly ok: false
      readonly checked: number
      /** The `seq` of the first row that does not follow from the one before it (the first missing one for `truncated` and `unkeyed`). */
      readonly brokenAt: number
      readonly reason: AuditChainFailure
    }

/** What {@link AuditChainVerifier} checks against. */
export interface AuditChainVerifierOptions {
  /** The audit-chain subkey; without it only legacy SHA-256 rows verify. */
  readonly key?: AuditChainKey | undefined
  readonly anchor?: AuditAnchor | undefined
}

/** Incremental verifier: feed rows in `seq` order, read the report at the end. */
export class AuditChainVerifier {
  #expectedSeq = 1
  #prevHash = GENESIS_HASH
  #checked = 0
  #keyedFrom: number | null = null
  #broken: AuditChainReport | undefined
  readonly #key: AuditChainKey | undefined
  readonly #anchor: AuditAnchor | undefined

  constructor(options: AuditChainVerifierOptions = {}) {
    this.#key = options.key
    this.#anchor = options.anchor
  }

  /** Checks the next row; returns false once the chain is broken (stop reading). */
  push(row: AuditRecord): boolean {
    if (this.#broken !== undefined) return false
    const fail = (reason: AuditChainFailure) => {
      this.#broken = { ok: false, checked: this.#checked, brokenAt: row.seq, reason }
      return false
    }
    if (row.seq !== this.#expectedSeq) return fail('gap')
    if (row.prevHash !== this.#prevHash) return fail('link')
    if (!this.#hashValid(row)) return fail('hash')
    if (this.#anchor !== undefined && row.seq === this.#anchor.sequence) {
      if (row.hash !== this.#anchor.hash) return fail('anchor')
    }
    this.#checked++
    this.#expectedSeq++
    this.#prevHash = row.hash
    return true
  }

  /**
   * Keyed rows once one was seen; before that, a row is keyed (the switch)
   * or legacy SHA-256. A legacy row after a keyed one is a downgrade.
   */
  #hashValid(row: AuditRecord): boolean {
    const key = this.#key
    if (key !== undefined && auditMac(key, row.seq, row.prevHash, row) === row.hash) {
      this.#keyedFrom ??= row.seq
      return true
    }
    if (this.#keyedFrom !== null) return false
    return auditHash(row.seq, row.prevHash, row) === row.hash
  }

  report(): AuditChainReport {
    if (this.#broken !== undefined) return this.#broken
    const next = this.#checked + 1
    if (this.#anchor !== undefined && this.#checked < this.#anchor.sequence) {
      return { ok: false, checked: this.#checked, brokenAt: next, reason: 'truncated' }
    }
    if (this.#key !== undefined && this.#checked > 0 && this.#keyedFrom === null) {
      return { ok: false, checked: this.#checked, brokenAt: next, reason: 'unkeyed' }
    }
    return {
      ok: true,
      checked: this.#checked,
      lastHash: this.#prevHash,
      lastSequence: this.#checked,
      keyedFrom: this.#keyedFrom,
      anchored: this.#anchor !== undefined,
    }
  }
}

/** Verifies rows given in `seq` order (legacy SHA-256 rows without `options.key`). */
export function verifyAuditRecords(
  rows: Iterable<AuditRecord>,
  options: AuditChainVerifierOptions = {},
): AuditChainReport {
  const v = new AuditChainVerifier(options)
  for (const row of rows) if (!v.push(row)) break
  return v.report()
}

/** A signed statement of the chain's head, for an append-only sink outside the database. */
export interface AuditCheckpoint {
  /** The last row's `seq`. */
  readonly sequence: number
  /** The last row's `hash`. */
  readonly hash: string
  /** When it was taken (ms since the epoch, the manager's clock). */
  readonly at: number
  /** HMAC-SHA256 (hex) over the three fields under the checkpoint subkey of pepper 1. */
  readonly mac: string
}

/** The MAC a checkpoint must carry. */
export function checkpointMac(key: AuditChainKey, c: Omit<AuditCheckpoint, 'mac'>): string {
  return Buffer.from(
    key.mac(canonicalJson({ v: 1, sequence: c.sequence, hash: c.hash, at: c.at })),
  ).toString('hex')
}
