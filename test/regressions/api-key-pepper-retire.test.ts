/**
 * Issue 21, item 6: pepper versions piled up forever (each one unwrapped at
 * every start, each one a secret to guard). `retirePepper(version)` deletes
 * one once no key row uses it, refusing (`ERR_API_KEY_PEPPER_IN_USE`) while
 * any row does, for the current version and for version 1 (the audit
 * chain's key); key writes refuse a retired version. On real PostgreSQL
 * and SQLite.
 */
import { expect, it } from 'vitest'
import { ApiKeyManager } from '../../src/api-keys/index.js'
import {
  applicationKeyManager,
  codeOf,
  describeOnBothDatabases,
  quiet,
} from '../helpers/db-writer.js'

describeOnBothDatabases('retiring an old pepper version', import.meta.url, (db) => {
  const keyManager = applicationKeyManager()
  const manager = () => new ApiKeyManager({ store: db().apiKeyStore(), keyManager, logger: quiet })
  const versions = async () =>
    (await db().sql('SELECT version FROM api_key_peppers ORDER BY version')).map((r) =>
      Number(r.version),
    )

  it('is refused while a key uses it, for the current version and version 1; allowed after the rehash', async () => {
    const m = manager()
    const first = await m.create({ name: 'on v1' })
    await m.rotatePepper()
    const second = await m.create({ name: 'on v2' })
    expect(await codeOf(m.retirePepper(2))).toBe('ERR_API_KEY_PEPPER_IN_USE')
    await m.rotatePepper()
    // Version 2 is no longer current, but `second` is still hashed under it.
    expect(await codeOf(m.retirePepper(2))).toBe('ERR_API_KEY_PEPPER_IN_USE')
    expect(await codeOf(m.retirePepper(1))).toBe('ERR_API_KEY_PEPPER_IN_USE')
    expect(await codeOf(m.retirePepper(0))).toBe('ERR_API_KEY_REQUEST_INVALID')
    expect(await versions()).toEqual([1, 2, 3])

    // A validation rehashes `second` under version 3; retirePepper flushes it first.
    await m.validate(second.key)
    expect(await m.retirePepper(2, { actor: 'ops' })).toEqual({ version: 2, retired: true })
    expect(await versions()).toEqual([1, 3])
    expect(await m.retirePepper(2)).toEqual({ version: 2, retired: false })
    const rows = await db().sql(
      `SELECT actor, detail FROM api_key_audit_log WHERE event = 'pepper' ORDER BY seq`,
    )
    expect(rows.map((r) => [r.actor, JSON.parse(String(r.detail))])).toContainEqual([
      'ops',
      { version: 2, retired: true },
    ])

    // A fresh process loads what is left; every key still validates; the chain verifies.
    const fresh = manager()
    expect((await fresh.validate(first.key)).keyId).toBe(first.keyId)
    expect((await fresh.validate(second.key)).keyId).toBe(second.keyId)
    expect(await fresh.verifyAuditChain()).toMatchObject({ ok: true })
    await fresh.close()
    await m.close()
  })

  it('a key write under a retired version is refused by the store', async () => {
    const m = manager()
    await m.create({ name: 'seed' })
    const store = db().apiKeyStore()
    const row = (await store.listKeys({ limit: 1 }))[0]!
    const ghost = { ...row, keyId: `${row.keyId.slice(0, -4)}zzzz`, pepperVersion: 2 }
    expect(
      await codeOf(
        store.insertKey(ghost, {
          event: 'created',
          keyId: ghost.keyId,
          actor: null,
          ip: null,
          at: Date.now(),
          detail: {},
        }),
      ),
    ).toBe('ERR_API_KEY_STORE')

    // A stale process's lazy rehash onto the retired version is skipped; the
    // rest of its flush (the audit rows) is written.
    await store.flush({
      lastUsed: new Map(),
      rehash: [
        {
          keyId: row.keyId,
          hash: new Uint8Array(32),
          pepperVersion: 2,
          fromVersion: row.pepperVersion,
          rowMac: new Uint8Array(32),
          fromRowMac: row.rowMac ?? undefined,
        },
      ],
      audit: [{ event: 'validated', keyId: row.keyId, actor: null, ip: null, at: 1, detail: {} }],
    })
    expect(await store.getKey(row.keyId)).toEqual(row)
    expect((await store.lastAudit())?.keyId).toBe(row.keyId)
    expect((await m.validate((await m.create({ name: 'after' })).key)).keyId).toBeDefined()
    await store.close()
    await m.close()
  })
})
