/**
 * Issue 21, item 4 (and the review follow-up on encryptField): a database
 * writer copies one row's encrypted field into another row or tenant, or
 * edits the clear `valueType` / `encoding` stored next to the ciphertext.
 * decrypt() used to trust the stored context (and skip contextPrefix's
 * `service`), and an empty aad sealed exactly as none.
 */
import { randomBytes } from 'node:crypto'
import { expect, it } from 'vitest'
import { KeyManager, LocalKmsProvider } from '../../src/kms/index.js'
import { codeOf, describeOnBothDatabases } from '../helpers/db-writer.js'

const quiet = { warn: () => {}, error: () => {} }

describeOnBothDatabases('encrypted fields moved between rows', import.meta.url, (db) => {
  const provider = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
  const make = (contextPrefix = 'orders-api', requireAad = false) =>
    new KeyManager({
      providers: { local: provider },
      defaultProvider: 'local',
      defaultKeyId: 'app',
      contextPrefix,
      requireAad,
      keyring: db().keyringStore(),
      logger: quiet,
    })
  const table = `fields_${randomBytes(4).toString('hex')}`

  async function twoRows(a: string, b: string): Promise<void> {
    await db().sql(`CREATE TABLE IF NOT EXISTS ${table} (id integer primary key, secret text)`)
    await db().sql(`DELETE FROM ${table}`)
    await db().sql(`INSERT INTO ${table} (id, secret) VALUES (1, ?), (2, ?)`, [a, b])
  }
  /** The attacker's write: row 2 gets row 1's ciphertext. */
  async function copyRow1IntoRow2(): Promise<void> {
    await db().sql(
      `UPDATE ${table} SET secret = (SELECT secret FROM ${table} WHERE id = 1) WHERE id = 2`,
    )
  }
  const secretOf = async (id: number) =>
    String((await db().sql(`SELECT secret FROM ${table} WHERE id = ?`, [id]))[0]!.secret)

  it('encryptField bound to its row: a copied field is refused, decrypt without a context is ERR_KMS_CONTEXT_REQUIRED', async () => {
    const km = make()
    const f1 = await km.encryptField('111-11-1111', { context: { customer: '1' } })
    const f2 = await km.encryptField('222-22-2222', { context: { customer: '2' } })
    await twoRows(JSON.stringify(f1), JSON.stringify(f2))
    await copyRow1IntoRow2()
    const moved = await secretOf(2)
    expect(await codeOf(km.decryptField(moved, { customer: '2' }))).toBe(
      'ERR_KMS_DECRYPTION_FAILED',
    )
    // Trusting the stored context would have opened it.
    expect(await codeOf(km.decryptField(moved))).toBe('ERR_KMS_CONTEXT_REQUIRED')
    // No legitimate data lost: row 1 still opens under its own binding.
    expect(await km.decryptField(await secretOf(1), { customer: '1' })).toBe('111-11-1111')
  })

  it("decrypt() checks contextPrefix's service even when the stored context names another", async () => {
    const other = make('billing-api')
    const sealed = await other.encrypt('card', { context: { customer: '1' } })
    const km = make('orders-api')
    expect(await codeOf(km.decrypt(sealed, { customer: '1' }))).toBe('ERR_KMS_DECRYPTION_FAILED')
    expect(Buffer.from(await other.decrypt(sealed, { customer: '1' })).toString()).toBe('card')
  })

  it('encryptField binds valueType and encoding: editing them in the stored JSON is refused', async () => {
    const km = make()
    const field = await km.encryptField({ admin: false }, { context: { customer: '1' } })
    await twoRows(JSON.stringify(field), JSON.stringify(field))
    const edited = JSON.parse(await secretOf(1)) as Record<string, unknown>
    for (const [valueType, encoding] of [
      ['string', 'utf-8'],
      ['bytes', 'binary'],
    ] as const) {
      const swapped = JSON.stringify({ ...edited, valueType, encoding })
      await db().sql(`UPDATE ${table} SET secret = ? WHERE id = 1`, [swapped])
      expect(await codeOf(km.decryptField(await secretOf(1), { customer: '1' }))).toBe(
        'ERR_KMS_DECRYPTION_FAILED',
      )
    }
    expect(await km.decryptField(await secretOf(2), { customer: '1' })).toEqual({ admin: false })
  })

  it('localEncrypt: an empty aad is refused, requireAad refuses none, and a copied ciphertext fails under its new row', async () => {
    const km = make()
    await km.initialize()
    expect(await codeOf(km.localEncrypt('x', ''))).toBe('ERR_KEY_MANAGER_AAD_REQUIRED')
    expect(await codeOf(km.localEncrypt(new Uint8Array(1), new Uint8Array(0)))).toBe(
      'ERR_KEY_MANAGER_AAD_REQUIRED',
    )
    const strict = make('orders-api', true)
    await strict.initialize()
    expect(await codeOf(strict.localEncrypt('x'))).toBe('ERR_KEY_MANAGER_AAD_REQUIRED')

    await twoRows(
      await km.localEncrypt('111-11-1111', 'customer:1'),
      await km.localEncrypt('222-22-2222', 'customer:2'),
    )
    await copyRow1IntoRow2()
    expect(await codeOf(km.localDecrypt(await secretOf(2), 'customer:2'))).toBe(
      'ERR_KMS_DECRYPTION_FAILED',
    )
    expect(await km.localDecrypt(await secretOf(1), 'customer:1')).toBe('111-11-1111')
  })
})
