/**
 * Issue 21, item 1: a database writer who can also call the public
 * KeyManager API (or who borrows an app that does) wraps a key they know
 * under the context of the keyring's data keys or of the API-key peppers,
 * then plants it as the active row. Every public call now refuses the
 * reserved `fraiseql.` context names, and a key wrapped under any context a
 * public call can produce does not unwrap as a data key or a pepper.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ApiKeyManager } from '../../src/api-keys/index.js'
import { KeyManager, LocalKmsProvider } from '../../src/kms/index.js'
import { codeOf, describeOnBothDatabases, randomId } from '../helpers/db-writer.js'

const quiet = { warn: () => {}, error: () => {} }

describe('public KeyManager calls refuse the reserved context names', () => {
  const km = new KeyManager({
    providers: { local: new LocalKmsProvider({ keys: { app: randomBytes(32) } }) },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    logger: quiet,
  })
  const reserved = [
    { 'fraiseql.dek': randomId() },
    { 'fraiseql.api-key-pepper': '2' },
    { 'fraiseql.field': 'string;utf-8' },
    { 'FraiseQL.Dek': randomId() },
    { table: 'x', 'fraiseql.anything': 'y' },
  ]
  it.each(reserved)(
    'encrypt, generateDataKey, encryptField, decrypt: ERR_KMS_RESERVED_CONTEXT for %o',
    async (context) => {
      expect(await codeOf(km.encrypt(randomBytes(32), { context }))).toBe(
        'ERR_KMS_RESERVED_CONTEXT',
      )
      expect(await codeOf(km.generateDataKey({ context }))).toBe('ERR_KMS_RESERVED_CONTEXT')
      expect(await codeOf(km.encryptField('x', { context }))).toBe('ERR_KMS_RESERVED_CONTEXT')
      const sealed = await km.encrypt('x', { context: { table: 'x' } })
      expect(await codeOf(km.decrypt(sealed, context))).toBe('ERR_KMS_RESERVED_CONTEXT')
    },
  )
})

describeOnBothDatabases('a planted data key', import.meta.url, (db) => {
  it('is refused at initialize(): the new process never encrypts under a key the attacker knows', async () => {
    const provider = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
    const make = () =>
      new KeyManager({
        providers: { local: provider },
        defaultProvider: 'local',
        defaultKeyId: 'app',
        contextPrefix: 'orders-api',
        keyring: db().keyringStore(),
        logger: quiet,
      })
    const victim = make()
    await victim.initialize()
    const before = await victim.localEncrypt('written before the attack', 'customer:1')

    // The attacker's key, wrapped by the same KMS key through the public API.
    const known = randomBytes(32)
    const id = randomId()
    const attacker = make()
    expect(await codeOf(attacker.encrypt(known, { context: { 'fraiseql.dek': id } }))).toBe(
      'ERR_KMS_RESERVED_CONTEXT',
    )
    // The best a public call can do: a context of its own.
    const wrapped = await attacker.encrypt(known, { context: { dek: id } })
    await db().sql(`UPDATE fraiseql_keyring SET status = 'decrypt-only' WHERE status = 'active'`)
    await db().sql(
      `INSERT INTO fraiseql_keyring (id, status, wrapped_key, created_at, uses_reserved, seq)
       VALUES (?, 'active', ?, ?, 0, 1000)`,
      [id, JSON.stringify(wrapped.toJSON()), Date.now()],
    )

    const fresh = make()
    expect(await codeOf(fresh.initialize())).toBe('ERR_KMS_DECRYPTION_FAILED')
    expect(fresh.hasCachedDataKey()).toBe(false)
    // No legitimate data lost: the running process still reads what it wrote.
    expect(await victim.localDecrypt(before, 'customer:1')).toBe('written before the attack')
  })
})

describeOnBothDatabases('a planted API-key pepper', import.meta.url, (db) => {
  it('cannot be wrapped through the public API, and a pepper wrapped otherwise fails closed at start', async () => {
    const keyManager = new KeyManager({
      providers: { local: new LocalKmsProvider({ keys: { app: randomBytes(32) } }) },
      defaultProvider: 'local',
      defaultKeyId: 'app',
      logger: quiet,
    })
    const victim = new ApiKeyManager({ store: db().apiKeyStore(), keyManager, logger: quiet })
    await victim.initialize()
    const { key } = await victim.create({ name: 'legit', permissions: ['read'] })

    const known = randomBytes(32)
    expect(
      await codeOf(keyManager.encrypt(known, { context: { 'fraiseql.api-key-pepper': '2' } })),
    ).toBe('ERR_KMS_RESERVED_CONTEXT')
    const wrapped = await keyManager.encrypt(known, { context: { 'api-key-pepper': '2' } })
    await db().sql('INSERT INTO api_key_peppers (version, wrapped, created_at) VALUES (?, ?, ?)', [
      2,
      JSON.stringify(wrapped.toJSON()),
      Date.now(),
    ])

    const fresh = new ApiKeyManager({ store: db().apiKeyStore(), keyManager, logger: quiet })
    expect(await codeOf(fresh.initialize())).toBe('ERR_KMS_DECRYPTION_FAILED')
    await fresh.close()
    // The legitimate key still validates in the process that holds the real pepper.
    expect((await victim.validate(key)).keyId).toBeDefined()
    await victim.close()
  })
})
