/**
 * Issue 21, item 5: the audit chain was plain SHA-256 with no key and no
 * anchor, so a database writer could delete the newest rows (what is left
 * still verifies) or edit a row and recompute every later hash. The chain
 * is now HMAC-SHA256 under a pepper subkey, `verifyAuditChain()` takes an
 * anchor (`{ sequence, hash }`, e.g. a signed checkpoint shipped to an
 * append-only sink), and SHA-256 rows are accepted only as the legacy prefix
 * of a chain written before the key existed.
 */
import { expect, it, vi } from 'vitest'
import {
  ApiKeyManager,
  type AuditCheckpoint,
  type AuditRecord,
  auditHash,
} from '../../src/api-keys/index.js'
import {
  type AttackedDatabase,
  applicationKeyManager,
  codeOf,
  describeOnBothDatabases,
  quiet,
} from '../helpers/db-writer.js'

/** The attacker's view of the log: plain SQL. */
async function rows(db: AttackedDatabase): Promise<AuditRecord[]> {
  const raw = await db.sql('SELECT * FROM api_key_audit_log ORDER BY seq')
  return raw.map((r) => ({
    seq: Number(r.seq),
    event: r.event as AuditRecord['event'],
    keyId: (r.key_id ?? null) as string | null,
    actor: (r.actor ?? null) as string | null,
    ip: (r.ip ?? null) as string | null,
    at: Number(r.at),
    detail: JSON.parse(String(r.detail)),
    prevHash: String(r.prev_hash),
    hash: String(r.hash),
  }))
}

/** Recomputes every link from `fromSeq` on with plain SHA-256, as the review did. */
async function rechainWithSha256(db: AttackedDatabase, fromSeq: number): Promise<void> {
  const all = await rows(db)
  let prev = all.find((r) => r.seq === fromSeq - 1)?.hash ?? '0'.repeat(64)
  for (const r of all) {
    if (r.seq < fromSeq) continue
    const hash = auditHash(r.seq, prev, r)
    await db.sql('UPDATE api_key_audit_log SET prev_hash = ?, hash = ? WHERE seq = ?', [
      prev,
      hash,
      r.seq,
    ])
    prev = hash
  }
}

describeOnBothDatabases('the audit history rewritten in the database', import.meta.url, (db) => {
  const keyManager = applicationKeyManager()
  const shipped: AuditCheckpoint[] = []
  const manager = () =>
    new ApiKeyManager({
      store: db().apiKeyStore(),
      keyManager,
      logger: quiet,
      auditCheckpointIntervalMs: false,
      onCheckpoint: (c) => {
        shipped.push(c)
      },
    })

  it('a deleted tail verifies without an anchor and is reported as truncated against one', async () => {
    const m = manager()
    const kept = await m.create({ name: 'kept' })
    await m.create({ name: 'second' })
    const checkpoint = await m.checkpoint()
    expect(checkpoint).toBeDefined()
    expect(shipped.at(-1)).toEqual(checkpoint)
    expect(await m.verifyAuditChain({ anchor: checkpoint! })).toMatchObject({
      ok: true,
      anchored: true,
      lastSequence: checkpoint!.sequence,
    })

    // The attacker removes the last two rows (the second key's creation and the one before).
    await db().sql('DELETE FROM api_key_audit_log WHERE seq > ?', [checkpoint!.sequence - 2])

    const fresh = manager()
    // Without an anchor nothing can tell a shorter chain from a complete one.
    expect(await fresh.verifyAuditChain()).toMatchObject({ ok: true })
    expect(await fresh.verifyAuditChain({ anchor: checkpoint! })).toEqual({
      ok: false,
      checked: checkpoint!.sequence - 2,
      brokenAt: checkpoint!.sequence - 1,
      reason: 'truncated',
    })
    // The bare { sequence, hash } the caller recorded works the same.
    expect(
      await fresh.verifyAuditChain({
        anchor: { sequence: checkpoint!.sequence, hash: checkpoint!.hash },
      }),
    ).toMatchObject({ ok: false, reason: 'truncated' })
    // No legitimate data is lost: the keys still validate.
    expect((await fresh.validate(kept.key)).keyId).toBe(kept.keyId)
    await fresh.close()
    await m.close()
    await db().sql('DELETE FROM api_key_audit_log')
  })

  it('an edited row re-chained with SHA-256 is refused, whether from the row or from the first', async () => {
    const m = manager()
    await m.create({ name: 'one', permissions: ['read'] })
    const victim = await m.create({ name: 'two' })
    await m.revoke(victim.keyId, 'leaked')
    const checkpoint = (await m.checkpoint())!
    const log = await rows(db())
    const revoked = log.find((r) => r.event === 'revoked')!

    // The attacker rewrites the revocation's actor and relinks from there.
    await db().sql(`UPDATE api_key_audit_log SET actor = 'nobody' WHERE seq = ?`, [revoked.seq])
    await rechainWithSha256(db(), revoked.seq)
    const fresh = manager()
    expect(await fresh.verifyAuditChain()).toMatchObject({
      ok: false,
      brokenAt: revoked.seq,
      reason: 'hash',
    })

    // Re-chaining the whole table with SHA-256 leaves nothing keyed.
    await rechainWithSha256(db(), 1)
    expect(await fresh.verifyAuditChain()).toMatchObject({ ok: false, reason: 'unkeyed' })
    // And against the shipped checkpoint the rewritten head does not match.
    expect(await fresh.verifyAuditChain({ anchor: checkpoint })).toMatchObject({
      ok: false,
      brokenAt: checkpoint.sequence,
      reason: 'anchor',
    })
    await fresh.close()
    await m.close()
    await db().sql('DELETE FROM api_key_audit_log')
  })

  it('a chain written with plain SHA-256 before the upgrade is keyed from its end on start', async () => {
    // The old chain: a store used on its own chains with SHA-256, as every
    // release before this one did.
    const legacy = db().apiKeyStore()
    await legacy.migrate()
    const at = Date.now()
    await legacy.appendAudit(
      [1, 2, 3].map((n) => ({
        event: 'revoked' as const,
        keyId: `legacy${n}`,
        actor: 'ops',
        ip: null,
        at,
        detail: { reason: 'old' },
      })),
    )
    const before = (await rows(db())).at(-1)!
    const m = manager()
    const report = await m.verifyAuditChain()
    expect(report).toMatchObject({ ok: true, keyedFrom: before.seq + 1 })
    const switchRow = (await rows(db())).find((r) => r.seq === before.seq + 1)!
    expect(switchRow.detail).toMatchObject({ auditChain: 'keyed', legacyUntil: before.seq })

    // Editing a legacy row and re-chaining only the legacy part breaks the
    // switch row's link, which the key protects.
    await db().sql(`UPDATE api_key_audit_log SET actor = 'nobody' WHERE seq = ?`, [before.seq - 1])
    const restore = await rows(db())
    await rechainWithSha256(db(), before.seq - 1)
    // rechainWithSha256 relinks everything after too; put the keyed rows back.
    for (const r of restore.filter((x) => x.seq > before.seq)) {
      await db().sql('UPDATE api_key_audit_log SET prev_hash = ?, hash = ? WHERE seq = ?', [
        r.prevHash,
        r.hash,
        r.seq,
      ])
    }
    expect(await m.verifyAuditChain()).toMatchObject({
      ok: false,
      brokenAt: before.seq + 1,
      reason: 'link',
    })
    await m.close()
    await legacy.close()
    await db().sql('DELETE FROM api_key_audit_log')
  })

  it('a forged checkpoint is refused with ERR_API_KEY_AUDIT_CHECKPOINT_INVALID', async () => {
    const m = manager()
    await m.create({ name: 'one' })
    const checkpoint = (await m.checkpoint())!
    expect(m.verifyCheckpoint(checkpoint)).toBe(true)
    const forged = { ...checkpoint, sequence: checkpoint.sequence - 1 }
    expect(m.verifyCheckpoint(forged)).toBe(false)
    expect(await codeOf(m.verifyAuditChain({ anchor: forged }))).toBe(
      'ERR_API_KEY_AUDIT_CHECKPOINT_INVALID',
    )
    expect(await codeOf(m.verifyAuditChain({ anchor: { sequence: 0, hash: 'x' } }))).toBe(
      'ERR_API_KEY_AUDIT_CHECKPOINT_INVALID',
    )
    await m.close()
    await db().sql('DELETE FROM api_key_audit_log')
  })

  it('checkpoints are logged and passed to onCheckpoint at the configured interval', async () => {
    const lines: Array<{ obj: object; msg: string | undefined }> = []
    const seen: AuditCheckpoint[] = []
    const m = new ApiKeyManager({
      store: db().apiKeyStore(),
      keyManager,
      logger: { ...quiet, info: (obj: object, msg?: string) => lines.push({ obj, msg }) },
      auditCheckpointIntervalMs: 1000,
      onCheckpoint: (c) => {
        seen.push(c)
      },
    })
    await m.create({ name: 'one' })
    await vi.waitFor(() => expect(seen.length).toBeGreaterThan(0), { timeout: 10_000 })
    const last = (await rows(db())).at(-1)!
    expect(seen[0]).toMatchObject({ sequence: last.seq, hash: last.hash })
    expect(m.verifyCheckpoint(seen[0]!)).toBe(true)
    expect(lines).toContainEqual({
      obj: { auditCheckpoint: seen[0] },
      msg: 'api-key audit checkpoint',
    })
    await m.close()
    await db().sql('DELETE FROM api_key_audit_log')
  })
})
