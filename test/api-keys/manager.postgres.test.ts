/**
 * ApiKeyManager over real PostgreSQL, as several processes sharing one
 * database run it: revocation, rotation and creation reach every cache
 * through LISTEN/NOTIFY; and with a real KMS client (Vault Transit, AWS
 * KMS and Cloud KMS through their emulators) validations make no KMS call.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ApiKeyManager, PostgresApiKeyStore } from '../../src/api-keys/index.js'
import { KeyManager } from '../../src/kms/index.js'
import { emulatedProvider, PROVIDER_NAMES } from '../helpers/kms-emulators.js'
import { createPgSchema, DATABASE_URL, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'
import { codeOf, countCalls, countingKms, schemasOf, WAIT } from './helpers.js'

const quiet = { warn: () => {}, error: () => {} }

/** Each emulator's operation names for encrypt and decrypt. */
const ENCRYPT: Record<string, string> = { vault: 'encrypt', aws: 'Encrypt', gcp: 'Encrypt' }
const DECRYPT: Record<string, string> = { vault: 'decrypt', aws: 'Decrypt', gcp: 'Decrypt' }

describe.skipIf(!HAS_POSTGRES)('ApiKeyManager on PostgreSQL', () => {
  let db: PgSchema
  const schemas = schemasOf(() => db)
  const freshSchema = () => schemas.fresh()
  beforeAll(async () => {
    db = await createPgSchema(import.meta.url)
  })
  afterAll(async () => {
    await schemas.dropAll()
    await db.drop()
  })

  it('two processes: revocation, rotation and creation in one reach the other through LISTEN/NOTIFY', async () => {
    const schema = freshSchema()
    const { keyManager } = countingKms()
    const storeA = new PostgresApiKeyStore({ pool: db.pool, schema })
    const counted = countCalls(new PostgresApiKeyStore({ connectionString: DATABASE_URL, schema }))
    const a = new ApiKeyManager({ store: storeA, keyManager, logger: quiet })
    const b = new ApiKeyManager({ store: counted.store, keyManager, logger: quiet })
    try {
      await Promise.all([a.initialize(), b.initialize()])
      const first = await a.create({ name: 'one', tier: 'pro' })
      await vi.waitFor(
        async () => expect(await codeOf(b.validate(first.key))).toBe('resolved'),
        WAIT,
      )
      // Cached in b now: no read per validation.
      const reads = counted.calls.getKey ?? 0
      for (let i = 0; i < 50; i++) await b.validate(first.key)
      expect(counted.calls.getKey ?? 0).toBe(reads)

      await a.revoke(first.keyId, 'leaked')
      await vi.waitFor(
        async () => expect(await codeOf(b.validate(first.key))).toBe('ERR_API_KEY_REVOKED'),
        WAIT,
      )

      const second = await a.create({ name: 'two' })
      expect((await b.validate(second.key)).keyId).toBe(second.keyId)
      const rotated = await a.rotate(second.keyId, { graceMinutes: 0 })
      await vi.waitFor(
        async () => expect(await codeOf(b.validate(second.key))).toBe('ERR_API_KEY_EXPIRED'),
        WAIT,
      )
      expect((await b.validate(rotated.key)).keyId).toBe(rotated.keyId)

      await a.flush()
      await b.flush()
      expect(await a.verifyAuditChain()).toMatchObject({ ok: true })
    } finally {
      await a.close()
      await b.close()
      await storeA.close()
      await counted.store.close()
    }
  })

  it('a pepper rotated by one process is loaded by the other; old and new keys keep validating in both', async () => {
    const schema = freshSchema()
    const { keyManager } = countingKms()
    const stores = [
      new PostgresApiKeyStore({ pool: db.pool, schema }),
      new PostgresApiKeyStore({ connectionString: DATABASE_URL, schema }),
    ]
    const [a, b] = stores.map(
      (store) => new ApiKeyManager({ store, keyManager, logger: quiet }),
    ) as [ApiKeyManager, ApiKeyManager]
    try {
      const old = await a.create({ name: 'old' })
      await b.initialize()
      await a.rotatePepper()
      const fresh = await a.create({ name: 'fresh' })
      await vi.waitFor(
        async () => expect(await codeOf(b.validate(fresh.key))).toBe('resolved'),
        WAIT,
      )
      expect((await b.validate(old.key)).keyId).toBe(old.keyId)
      await b.flush()
      const { rows } = await db.pool.query({
        text: `SELECT key_id, pepper_version FROM "${schema}".api_keys ORDER BY pepper_version`,
      })
      expect(rows).toEqual(
        expect.arrayContaining([
          { key_id: old.keyId, pepper_version: 2 },
          { key_id: fresh.keyId, pepper_version: 2 },
        ]),
      )
    } finally {
      for (const m of [a, b]) await m.close()
      for (const s of stores) await s.close()
    }
  })

  describe.each(PROVIDER_NAMES.filter((p) => p !== 'local'))('with %s', (name) => {
    it('one KMS call to create the pepper, one per process to unwrap it, none per validation', async () => {
      const emulated = await emulatedProvider(name)
      const schema = freshSchema()
      const keyManager = new KeyManager({
        providers: { [name]: emulated.provider },
        defaultProvider: name,
        defaultKeyId: emulated.keyId,
        logger: quiet,
      })
      const stores = [
        new PostgresApiKeyStore({ pool: db.pool, schema }),
        new PostgresApiKeyStore({ pool: db.pool, schema }),
      ]
      const [a, b] = stores.map(
        (store) => new ApiKeyManager({ store, keyManager, logger: quiet }),
      ) as [ApiKeyManager, ApiKeyManager]
      const calls = () => emulated.emulator!.calls.count()
      try {
        const before = calls()
        const { key } = await a.create({ name: 'kms' })
        const afterCreate = calls()
        // Creating the pepper: one encryption (a client may also look the key up once).
        expect(emulated.emulator!.calls.count(ENCRYPT[name])).toBe(1)
        expect(afterCreate - before).toBeLessThanOrEqual(2)
        await b.initialize()
        expect(emulated.emulator!.calls.count(DECRYPT[name])).toBe(1)
        const started = calls()
        for (let i = 0; i < 200; i++) {
          await a.validate(key)
          await b.validate(key)
        }
        expect(calls()).toBe(started)
      } finally {
        for (const m of [a, b]) await m.close()
        for (const s of stores) await s.close()
        await emulated.close()
      }
    }, 60_000)
  })
})
