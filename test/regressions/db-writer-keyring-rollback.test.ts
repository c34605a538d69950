/**
 * Issue 21, item 3: a database writer rolls the keyring back. Setting an old
 * data key active again and resetting its use counter made new processes
 * encrypt under it with the count starting over (defeating the NIST SP
 * 800-38D use limit and the rotation away from a suspect key); a retired
 * key kept decrypting in processes that had cached it. Rows now carry a
 * generation and a MAC (keyed from the data key itself), the active key must
 * be the newest generation, and a running process never goes backwards.
 * Every attack below is plain SQL, as the attacker runs it.
 */
import { randomBytes } from 'node:crypto'
import { expect, it, vi } from 'vitest'
import { KeyManager, LocalKmsProvider } from '../../src/kms/index.js'
import { type AttackedDatabase, codeOf, describeOnBothDatabases } from '../helpers/db-writer.js'

let tables = 0
const T0 = 1_795_000_000_000

/** A fresh keyring table, and processes (KeyManagers) sharing it and one KMS key. */
function setup(db: AttackedDatabase) {
  const table = `kr_rollback_${++tables}_${randomBytes(3).toString('hex')}`
  const provider = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
  const refused: Array<{ code?: string; dataKey?: string }> = []
  const logger = {
    warn: () => {},
    error: (obj: object) => refused.push(obj as { code?: string; dataKey?: string }),
  }
  let now = T0
  const clock = () => now
  const process = () =>
    new KeyManager({
      providers: { local: provider },
      defaultProvider: 'local',
      defaultKeyId: 'app',
      contextPrefix: 'orders-api',
      keyring: db.keyringStore(table),
      limits: { reserveBlock: 2, refreshIntervalMs: 1000 },
      clock,
      logger,
    })
  return {
    table,
    refused,
    process,
    advance: (ms: number) => {
      now += ms
    },
    sql: db.sql.bind(db),
    store: () => db.keyringStore(table),
  }
}

describeOnBothDatabases('a database writer rolling the keyring back', import.meta.url, (db) => {
  it('an old key set active again with its counter reset: refused by new and running processes, nothing lost', async () => {
    const t = setup(db())
    const victim = t.process()
    await victim.initialize()
    const [old] = await victim.dataKeys()
    const underOld = await victim.localEncrypt('before rotation', 'customer:1')
    await victim.rotateDataKey()
    const underNew = await victim.localEncrypt('after rotation', 'customer:1')

    await t.sql(`UPDATE ${t.table} SET status = 'decrypt-only' WHERE status = 'active'`)
    await t.sql(`UPDATE ${t.table} SET status = 'active', uses_reserved = 0 WHERE id = ?`, [
      old!.id,
    ])

    const fresh = t.process()
    expect(await codeOf(fresh.initialize())).toBe('ERR_KEYRING_ROLLBACK')
    expect(fresh.hasCachedDataKey()).toBe(false)
    // The running process, once its block is spent, refuses too (never
    // encrypts under the old key with its count reset).
    await victim.localEncrypt('rest of the block', 'customer:2')
    expect(await codeOf(victim.localEncrypt('next block', 'customer:2'))).toBe(
      'ERR_KEYRING_ROLLBACK',
    )
    expect(t.refused.map((r) => r.code)).toContain('ERR_KEYRING_ROLLBACK')
    expect(t.refused.map((r) => r.dataKey)).toContain(old!.id)
    // No legitimate data lost: both keys still decrypt.
    expect(await victim.localDecrypt(underOld, 'customer:1')).toBe('before rotation')
    expect(await victim.localDecrypt(underNew, 'customer:1')).toBe('after rotation')
    // And once the rows are put back, a new process reads everything.
    await t.sql(`UPDATE ${t.table} SET status = 'decrypt-only' WHERE id = ?`, [old!.id])
    await t.sql(`UPDATE ${t.table} SET status = 'active' WHERE id <> ?`, [old!.id])
    const restored = t.process()
    await restored.initialize()
    expect(await restored.localDecrypt(underOld, 'customer:1')).toBe('before rotation')
    expect(await restored.localDecrypt(underNew, 'customer:1')).toBe('after rotation')
  })

  it('an old key given a higher generation to pass for the newest: its MAC fails (ERR_KEYRING_TAMPERED)', async () => {
    const t = setup(db())
    const victim = t.process()
    await victim.initialize()
    const [old] = await victim.dataKeys()
    await victim.rotateDataKey()
    await t.sql(`UPDATE ${t.table} SET status = 'decrypt-only' WHERE status = 'active'`)
    await t.sql(
      `UPDATE ${t.table} SET status = 'active', uses_reserved = 0, generation = 99 WHERE id = ?`,
      [old!.id],
    )
    expect(await codeOf(t.process().initialize())).toBe('ERR_KEYRING_TAMPERED')
    expect(t.refused).toContainEqual({ code: 'ERR_KEYRING_TAMPERED', dataKey: old!.id })
  })

  it.each([
    ['lowered below every other', '-1'],
    ['cleared', 'NULL'],
  ])(
    'the newer key hidden by its generation %s: refused, the old key never becomes active',
    async (_, value) => {
      const t = setup(db())
      const victim = t.process()
      await victim.initialize()
      const [old] = await victim.dataKeys()
      const underOld = await victim.localEncrypt('before rotation', 'customer:1')
      await victim.rotateDataKey()
      await victim.rotateDataKey()
      await t.sql(
        `UPDATE ${t.table} SET status = 'decrypt-only', generation = ${value}, row_mac = CASE WHEN ${value} IS NULL THEN NULL ELSE row_mac END WHERE id <> ?`,
        [old!.id],
      )
      await t.sql(`UPDATE ${t.table} SET status = 'active', uses_reserved = 0 WHERE id = ?`, [
        old!.id,
      ])
      const fresh = t.process()
      expect(['ERR_KEYRING_ROLLBACK', 'ERR_KEYRING_TAMPERED']).toContain(
        await codeOf(fresh.initialize()),
      )
      expect(fresh.hasCachedDataKey()).toBe(false)
      expect(await victim.localDecrypt(underOld, 'customer:1')).toBe('before rotation')
    },
  )

  it('a retired key stops decrypting in a process that cached it, and cannot be revived by the database', async () => {
    const t = setup(db())
    const victim = t.process()
    await victim.initialize()
    const [old] = await victim.dataKeys()
    const underOld = await victim.localEncrypt('under the retired key', 'customer:1')
    await victim.rotateDataKey()
    const underNew = await victim.localEncrypt('under the current key', 'customer:1')
    expect(await victim.localDecrypt(underOld, 'customer:1')).toBe('under the retired key')

    // Legitimately retired (its data was re-encrypted), by another process's store.
    await t.store().setStatus(old!.id, 'retired')
    // The victim learns it at its next keyring read: the first local
    // operation after refreshIntervalMs starts one.
    t.advance(1001)
    await victim.localDecrypt(underNew, 'customer:1')
    await vi.waitFor(async () => {
      expect(await codeOf(victim.localDecrypt(underOld, 'customer:1'))).toBe(
        'ERR_KMS_DECRYPTION_FAILED',
      )
    })

    // The writer revives it: decrypt-only, then active with the counter reset.
    await t.sql(`UPDATE ${t.table} SET status = 'decrypt-only' WHERE id = ?`, [old!.id])
    t.advance(1001)
    await victim.localDecrypt(underNew, 'customer:1')
    await vi.waitFor(() => expect(t.refused.map((r) => r.dataKey)).toContain(old!.id))
    expect(await codeOf(victim.localDecrypt(underOld, 'customer:1'))).toBe(
      'ERR_KMS_DECRYPTION_FAILED',
    )
    await t.sql(`UPDATE ${t.table} SET status = 'decrypt-only' WHERE status = 'active'`)
    await t.sql(`UPDATE ${t.table} SET status = 'active', uses_reserved = 0 WHERE id = ?`, [
      old!.id,
    ])
    expect(await codeOf(t.process().initialize())).toBe('ERR_KEYRING_ROLLBACK')
    await victim.localEncrypt('rest of the block', 'customer:2').catch(() => undefined)
    expect(await codeOf(victim.localEncrypt('next block', 'customer:2'))).toBe(
      'ERR_KEYRING_ROLLBACK',
    )
    // No legitimate data lost: the current key's data still decrypts.
    expect(await victim.localDecrypt(underNew, 'customer:1')).toBe('under the current key')
  })

  it('the active key’s use counter set back: the running process refuses its next block', async () => {
    const t = setup(db())
    const victim = t.process()
    await victim.initialize()
    const [active] = await victim.dataKeys()
    const sealed = [
      await victim.localEncrypt('one', 'customer:1'),
      await victim.localEncrypt('two', 'customer:1'),
      await victim.localEncrypt('three', 'customer:1'),
    ]
    await t.sql(`UPDATE ${t.table} SET uses_reserved = 0 WHERE id = ?`, [active!.id])
    await victim.localEncrypt('rest of the block', 'customer:1')
    expect(await codeOf(victim.localEncrypt('next block', 'customer:1'))).toBe(
      'ERR_KEYRING_ROLLBACK',
    )
    expect(t.refused).toContainEqual({ code: 'ERR_KEYRING_ROLLBACK', dataKey: active!.id })
    expect(await victim.localDecrypt(sealed[2]!, 'customer:1')).toBe('three')
  })

  it('a row whose MAC was cleared is refused; rows from before the migration are sealed by sealUnmacedDataKeys()', async () => {
    const t = setup(db())
    const victim = t.process()
    await victim.initialize()
    const first = await victim.localEncrypt('first key', 'customer:1')
    await victim.rotateDataKey()
    const second = await victim.localEncrypt('second key', 'customer:1')

    // The writer clears the MAC (and the generation): refused, never trusted.
    await t.sql(`UPDATE ${t.table} SET row_mac = NULL WHERE status = 'active'`)
    expect(await codeOf(t.process().initialize())).toBe('ERR_KEYRING_TAMPERED')

    // As after upgrading: every row without MAC or generation. The operator
    // seals them once, and every ciphertext still decrypts.
    await t.sql(`UPDATE ${t.table} SET row_mac = NULL, generation = NULL`)
    const upgraded = t.process()
    expect(await codeOf(upgraded.initialize())).toBe('ERR_KEYRING_TAMPERED')
    expect(await upgraded.sealUnmacedDataKeys()).toEqual({ sealed: 2 })
    expect(await upgraded.sealUnmacedDataKeys()).toEqual({ sealed: 0 })
    await upgraded.initialize()
    expect(await upgraded.localDecrypt(first, 'customer:1')).toBe('first key')
    expect(await upgraded.localDecrypt(second, 'customer:1')).toBe('second key')
    // The active key is still the newest: it stays active, and encrypts.
    expect((await upgraded.dataKeys()).find((k) => k.status === 'active')?.id).toBe(
      (await victim.dataKeys()).find((k) => k.status === 'active')?.id,
    )
    await upgraded.localEncrypt('after the upgrade', 'customer:3')
  })
})
