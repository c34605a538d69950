/**
 * Reading and vouching for the keyed audit chain: verifying it (against
 * an anchor from an append-only sink, which is what detects a deleted
 * tail), signing checkpoints of its newest row, and keying a chain that
 * was written before it was keyed.
 */
import type { Clock } from '../internal/clock.js'
import { describeError, type Logger } from '../internal/logger.js'
import {
  type AuditAnchor,
  type AuditChainReport,
  AuditChainVerifier,
  type AuditCheckpoint,
  auditHash,
  auditMac,
  checkpointMac,
} from './audit-chain.js'
import { ApiKeyAuditCheckpointError } from './errors.js'
import { hashesEqual } from './hash.js'
import type { PepperRing } from './pepper-ring.js'
import type { ApiKeyStore } from './store.js'

export class AuditLog {
  readonly #store: ApiKeyStore
  readonly #peppers: PepperRing
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #onCheckpoint: ((checkpoint: AuditCheckpoint) => void | Promise<void>) | undefined
  /** The sequence of the last checkpoint emitted by the timer: one per growth of the chain. */
  #checkpointedSeq = -1

  constructor(deps: {
    store: ApiKeyStore
    peppers: PepperRing
    clock: Clock
    logger: Logger
    onCheckpoint: ((checkpoint: AuditCheckpoint) => void | Promise<void>) | undefined
  }) {
    this.#store = deps.store
    this.#peppers = deps.peppers
    this.#clock = deps.clock
    this.#logger = deps.logger
    this.#onCheckpoint = deps.onCheckpoint
  }

  /**
   * A chain written before it was keyed ends in a SHA-256 row, which the
   * verifier refuses (`unkeyed`: anyone could have written it). One keyed
   * row after it authenticates the legacy prefix through its `prevHash`.
   */
  async keyLegacyChain(): Promise<void> {
    const last = await this.#store.lastAudit()
    const keys = this.#peppers.auditKeys
    if (last === undefined || keys === undefined) return
    if (auditMac(keys.chain, last.seq, last.prevHash, last) === last.hash) return
    if (auditHash(last.seq, last.prevHash, last) !== last.hash) return
    await this.#store.appendAudit([
      {
        event: 'pepper',
        keyId: null,
        actor: 'system',
        ip: null,
        at: this.#clock(),
        detail: { version: 1, auditChain: 'keyed', legacyUntil: last.seq },
      },
    ])
  }

  /**
   * `ApiKeyManager.verifyAuditChain`: checks the anchor, runs `flush` (so
   * queued events are in the chain), then reads the whole log.
   */
  async verify(
    anchor: AuditAnchor | AuditCheckpoint | undefined,
    flush: () => Promise<void>,
  ): Promise<AuditChainReport> {
    const keys = this.#peppers.auditKeysOrThrow()
    if (anchor !== undefined) {
      if (
        !Number.isSafeInteger(anchor.sequence) ||
        anchor.sequence < 1 ||
        typeof anchor.hash !== 'string'
      ) {
        throw new ApiKeyAuditCheckpointError('the anchor needs a sequence from 1 and a hash')
      }
      if ('mac' in anchor && !this.verifyCheckpoint(anchor)) {
        throw new ApiKeyAuditCheckpointError('the anchor is not a checkpoint this pepper signed')
      }
    }
    await flush()
    return readAndVerify(this.#store, new AuditChainVerifier({ key: keys.chain, anchor }))
  }

  /** `ApiKeyManager.checkpoint`, after `flush`. */
  async checkpoint(flush: () => Promise<void>): Promise<AuditCheckpoint | undefined> {
    const keys = this.#peppers.auditKeysOrThrow()
    await flush()
    const last = await this.#store.lastAudit()
    if (last === undefined) return undefined
    const body = { sequence: last.seq, hash: last.hash, at: this.#clock() }
    const checkpoint: AuditCheckpoint = { ...body, mac: checkpointMac(keys.checkpoint, body) }
    const log = this.#logger.info ?? this.#logger.warn
    log.call(this.#logger, { auditCheckpoint: checkpoint }, 'api-key audit checkpoint')
    await this.#onCheckpoint?.(checkpoint)
    return checkpoint
  }

  /** Whether `checkpoint` carries this store's checkpoint MAC (constant time). */
  verifyCheckpoint(checkpoint: AuditCheckpoint): boolean {
    const keys = this.#peppers.auditKeysOrThrow()
    if (typeof checkpoint.mac !== 'string' || !/^[0-9a-f]{64}$/.test(checkpoint.mac)) return false
    const expected = checkpointMac(keys.checkpoint, checkpoint)
    return hashesEqual(Buffer.from(expected, 'hex'), Buffer.from(checkpoint.mac, 'hex'))
  }

  /**
   * The timer's checkpoint, taken with `take` (the manager's public
   * `checkpoint()`), only when the chain grew since the last one.
   */
  async checkpointIfGrown(take: () => Promise<AuditCheckpoint | undefined>): Promise<void> {
    try {
      const last = await this.#store.lastAudit()
      if (last === undefined || last.seq === this.#checkpointedSeq) return
      const checkpoint = await take()
      if (checkpoint !== undefined) this.#checkpointedSeq = checkpoint.sequence
    } catch (err) {
      // The next tick retries: the sequence is not marked as checkpointed.
      this.#logger.error({ err: describeError(err) }, 'could not emit an api-key audit checkpoint')
    }
  }
}

/**
 * Reads a store's whole audit log in order and checks the hash chain; the
 * report names the `seq` of the first broken link. Without the pepper it
 * checks plain SHA-256 links only: the chain of a store used on its own.
 * An `ApiKeyManager` keys its chain, so verify that one with
 * `manager.verifyAuditChain()` (a keyed row here reports `hash`).
 *
 * @example
 * ```ts
 * const report = await verifyAuditChain(store)
 * if (!report.ok) alert(`audit log altered at row ${report.brokenAt} (${report.reason})`)
 * ```
 */
export async function verifyAuditChain(
  store: ApiKeyStore,
  options: { readonly anchor?: AuditAnchor } = {},
): Promise<AuditChainReport> {
  return readAndVerify(store, new AuditChainVerifier({ anchor: options.anchor }))
}

/** Feeds the whole log to `verifier`, 1000 rows a read. */
async function readAndVerify(
  store: ApiKeyStore,
  verifier: AuditChainVerifier,
): Promise<AuditChainReport> {
  let after = 0
  for (;;) {
    const rows = await store.readAudit(after, 1000)
    for (const row of rows) if (!verifier.push(row)) return verifier.report()
    if (rows.length < 1000) return verifier.report()
    after = rows[rows.length - 1]!.seq
  }
}
