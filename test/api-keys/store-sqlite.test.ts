import { mkdtempSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { ApiKeyStoreError, SqliteApiKeyStore } from '../../src/api-keys/index.js'
import { rejection } from '../helpers/rejection.js'
import { expectConfigErrors } from './helpers.js'
import { apiKeyRow, describeApiKeyStoreContract } from './store.contract.js'

const dir = mkdtempSync(join(tmpdir(), 'fsl-api-keys-sqlite-'))
afterAll(() => rm(dir, { recursive: true, force: true }))
let n = 0
const freshFile = () => join(dir, `k${++n}.db`)

// The store opens its own file; the other borrows a second connection on it.
describeApiKeyStoreContract('SqliteApiKeyStore (two connections on one file)', async () => {
  const filename = freshFile()
  const store = new SqliteApiKeyStore({ filename, pollIntervalMs: 20 })
  let second: Database.Database | undefined
  let other: SqliteApiKeyStore | undefined
  return {
    store,
    other: async () => {
      second = new Database(filename)
      other = new SqliteApiKeyStore({ database: second, pollIntervalMs: 20 })
      return other
    },
    close: async () => {
      await store.close()
      await other?.close()
      second?.close()
    },
  }
})

describe('SqliteApiKeyStore', () => {
  it('creates its file with mode 0600, and close() ends its polling and its handle', async () => {
    const filename = join(dir, `nested${++n}`, 'keys.db')
    const store = new SqliteApiKeyStore({ filename })
    await store.migrate()
    await store.subscribe(
      () => {},
      () => {},
    )
    expect(statSync(filename).mode & 0o777).toBe(0o600)
    await store.close()
    const err = await rejection(store.getKey('AbCdEfGhIjKl'))
    expect(err).toBeInstanceOf(ApiKeyStoreError)
    expect((err as Error).message).toMatch(/closed/)
  })

  it('never closes a borrowed database', async () => {
    const db = new Database(':memory:')
    const store = new SqliteApiKeyStore({ database: db })
    await store.migrate()
    await store.close()
    expect(db.open).toBe(true)
    db.close()
  })

  it('maps database failures to ERR_API_KEY_STORE without SQL values', async () => {
    const store = new SqliteApiKeyStore({ filename: freshFile() })
    const err = await rejection(store.getKey('AbCdEfGhIjKl'))
    expect(err).toMatchObject({
      code: 'ERR_API_KEY_STORE',
      cause: { service: 'sqlite', code: 'SQLITE_ERROR' },
    })
    await store.migrate()
    const row = apiKeyRow({ hash: new Uint8Array(5) })
    const bad = await rejection(
      store
        .insertKey(row, {
          event: 'created',
          keyId: row.keyId,
          actor: null,
          ip: null,
          at: 1,
          detail: {},
        })
        .then(() => store.getKey(row.keyId)),
    )
    expect(bad).toMatchObject({ code: 'ERR_API_KEY_STORE' })
    expect(`${(bad as Error).message}`).not.toContain(row.keyId)
    await store.close()
  })

  it('refuses bad options with ERR_CONFIG_INVALID naming the field', () => {
    const db = new Database(':memory:')
    expectConfigErrors(
      (o) => new SqliteApiKeyStore(o),
      [
        [{}, 'database'],
        [{ filename: 'x.db', database: db }, 'filename'],
        [{ database: db, busyTimeoutMs: 5 }, 'busyTimeoutMs'],
        [{ filename: 'x.db', pollIntervalMs: 1 }, 'pollIntervalMs'],
        [{ filename: 'x.db', schema: 'public' }, 'schema'],
      ],
      { closed: true },
    )
    db.close()
  })
})
