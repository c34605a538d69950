/**
 * Issue 21, item 2: the key's HMAC covered only the key string, so a
 * database writer could turn a revoked key into an admin key with plain SQL
 * (`revoked_at = NULL`, `permissions = '["admin"]'`, a ten-year expiry, a
 * wider address list, another tier). Each row now carries a MAC of its
 * security-relevant columns under a pepper subkey; an edited row is refused
 * (`ERR_API_KEY_TAMPERED`) and audited, and the other keys keep working.
 */
import { expect, it } from 'vitest'
import { ApiKeyManager } from '../../src/api-keys/index.js'
import {
  applicationKeyManager,
  codeOf,
  describeOnBothDatabases,
  quiet,
} from '../helpers/db-writer.js'

const TEN_YEARS = 10 * 365 * 86_400_000

describeOnBothDatabases('an API-key row edited in the database', import.meta.url, (db) => {
  const keyManager = applicationKeyManager()
  const manager = () => new ApiKeyManager({ store: db().apiKeyStore(), keyManager, logger: quiet })

  const attacks: Array<[string, string, (now: number) => unknown[]]> = [
    [
      'revival',
      'UPDATE api_keys SET revoked_at = NULL, revoked_reason = NULL WHERE key_id = ?',
      () => [],
    ],
    ['escalation', `UPDATE api_keys SET permissions = '["admin"]' WHERE key_id = ?`, () => []],
    [
      'extension',
      'UPDATE api_keys SET expires_at = ? WHERE key_id = ?',
      (now) => [now + TEN_YEARS],
    ],
    ['tier change', `UPDATE api_keys SET tier = 'unlimited' WHERE key_id = ?`, () => []],
    ['address widening', `UPDATE api_keys SET allowed_ips = NULL WHERE key_id = ?`, () => []],
  ]

  it.each(attacks)(
    '%s is refused with ERR_API_KEY_TAMPERED and audited; other keys keep validating',
    async (name, statement, params) => {
      const m = manager()
      await m.initialize()
      const victim = await m.create({
        name: `victim ${name}`,
        permissions: ['read'],
        allowedIps: ['127.0.0.1'],
      })
      const bystander = await m.create({ name: 'bystander', permissions: ['read'] })
      if (name === 'revival') await m.revoke(victim.keyId, 'leaked')
      else expect((await m.validate(victim.key, { ip: '127.0.0.1' })).permissions).toEqual(['read'])

      await db().sql(statement, [...params(Date.now()), victim.keyId])

      // A fresh process (nothing cached) reads the edited row.
      const fresh = manager()
      expect(await codeOf(fresh.validate(victim.key, { ip: '127.0.0.1' }))).toBe(
        'ERR_API_KEY_TAMPERED',
      )
      expect((await fresh.validate(bystander.key)).keyId).toBe(bystander.keyId)
      await fresh.flush()
      const audit = await db().sql(
        `SELECT detail FROM api_key_audit_log WHERE event = 'rejected' AND key_id = ?`,
        [victim.keyId],
      )
      expect(audit.map((r) => JSON.parse(String(r.detail)))).toContainEqual(
        expect.objectContaining({ reason: 'tampered' }),
      )
      // Rotating the edited key would launder the edit into the replacement.
      expect(await codeOf(fresh.rotate(victim.keyId))).toBe('ERR_API_KEY_TAMPERED')
      await fresh.close()
      await m.close()
    },
  )

  it('a row without a MAC (written before it existed) is refused until sealUnmacedRows() is run', async () => {
    const m = manager()
    await m.initialize()
    const old = await m.create({ name: 'legacy', permissions: ['read'] })
    await db().sql('UPDATE api_keys SET row_mac = NULL WHERE key_id = ?', [old.keyId])
    const fresh = manager()
    expect(await codeOf(fresh.validate(old.key))).toBe('ERR_API_KEY_TAMPERED')
    expect((await fresh.sealUnmacedRows()).sealed).toBe(1)
    expect((await fresh.validate(old.key)).permissions).toEqual(['read'])
    // Sealing is one-shot: a row with a MAC is never re-sealed.
    expect((await fresh.sealUnmacedRows()).sealed).toBe(0)
    await fresh.close()
    await m.close()
  })
})
