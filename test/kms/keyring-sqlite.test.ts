import { mkdtempSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { SqliteKeyringStore } from '../../src/kms/keyring/sqlite.js'
import { KeyringStoreError } from '../../src/kms/keyring/store.js'
import { runTogether } from '../helpers/processes.js'
import { rejection } from '../helpers/rejection.js'
import { describeKeyringStoreContract, keyringEntry } from './keyring.contract.js'

const dir = mkdtempSync(join(tmpdir(), 'fsl-keyring-sqlite-'))
afterAll(() => rm(dir, { recursive: true, force: true }))
let n = 0
const freshFile = () => join(dir, `k${++n}.db`)

const entry = keyringEntry

// The store opens its own file; the other instance borrows a second
// better-sqlite3 connection on the same file: owned and borrowed, one keyring.
describeKeyringStoreContract('SqliteKeyringStore (two connections on one file)', async () => {
  const filename = freshFile()
  const store = new SqliteKeyringStore({ filename })
  let second: Database.Database | undefined
  return {
    store,
    other: async () => {
      second = new Database(filename)
      return new SqliteKeyringStore({ database: second })
    },
    close: async () => {
      await store.close()
      second?.close()
    },
  }
})

interface WorkerResult {
  active: string
  granted: number[]
}

describe('SqliteKeyringStore', () => {
  it('four processes starting on one fresh file: one migration, one active key, exactly 100 of 200 blocks granted', async () => {
    const filename = freshFile()
    const worker = fileURLToPath(new URL('./fixtures/sqlite-keyring-worker.ts', import.meta.url))
    const results = await runTogether<WorkerResult>(
      Array.from({ length: 4 }, () => ['--import', 'tsx', worker, filename, '50']),
    )
    expect(new Set(results.map((r) => r.active)).size).toBe(1)
    const granted = results.flatMap((r) => r.granted)
    expect(granted).toHaveLength(100)
    expect(new Set(granted).size).toBe(100)
    const check = new Database(filename, { readonly: true })
    try {
      expect(check.prepare('select count(*) as n from fraiseql_keyring_migrations').get()).toEqual({
        n: 1,
      })
      expect(check.prepare('select uses_reserved from fraiseql_keyring').all()).toEqual([
        { uses_reserved: 1000 },
      ])
    } finally {
      check.close()
    }
  }, 120_000)

  it('opens its own file in WAL mode with mode 0600, and closes it in close()', async () => {
    const filename = join(dir, `nested${++n}`, 'keyring.db')
    const store = new SqliteKeyringStore({ filename })
    await store.migrate()
    await store.insertFirstActive(entry('a'))
    expect(statSync(filename).mode & 0o777).toBe(0o600)
    expect(statSync(`${filename}-wal`).mode & 0o777).toBe(0o600)
    const probe = new Database(filename)
    expect(probe.pragma('journal_mode', { simple: true })).toBe('wal')
    probe.close()
    await store.close()
    await store.close()
    const err = await rejection(store.list())
    expect(err).toBeInstanceOf(KeyringStoreError)
    expect((err as Error).message).toMatch(/closed/)
  })

  it('never closes a borrowed database, and leaves its journal mode alone', async () => {
    const db = new Database(freshFile())
    const store = new SqliteKeyringStore({ database: db })
    await store.migrate()
    await store.close()
    expect(db.open).toBe(true)
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete')
    db.close()
  })

  it('a write blocked past busyTimeoutMs by another writer is ERR_KEYRING_STORE with SQLITE_BUSY', async () => {
    const filename = freshFile()
    const store = new SqliteKeyringStore({ filename, busyTimeoutMs: 50 })
    await store.migrate()
    const a = await store.insertFirstActive(entry('a'))
    // Another process holding the write lock, played by a raw connection.
    const holder = new Database(filename)
    holder.exec('begin immediate')
    try {
      const err = await rejection(store.reserveUses(a.id, 1, 10))
      expect(err).toBeInstanceOf(KeyringStoreError)
      expect((err as Error).cause).toEqual({ service: 'sqlite', code: 'SQLITE_BUSY' })
    } finally {
      holder.exec('rollback')
      holder.close()
    }
    expect(await store.reserveUses(a.id, 1, 10)).toBe(1)
    await store.close()
  })

  it('maps database failures to ERR_KEYRING_STORE without SQL values (duplicate id)', async () => {
    const store = new SqliteKeyringStore({ filename: freshFile() })
    await store.migrate()
    const a = await store.insertFirstActive(entry('a'))
    // A new key reusing an existing id violates the primary key.
    const err = await rejection(store.rotate(a.id, entry('a', 2)))
    expect(err).toBeInstanceOf(KeyringStoreError)
    expect((err as Error).cause).toEqual({
      service: 'sqlite',
      code: 'SQLITE_CONSTRAINT_PRIMARYKEY',
    })
    expect(`${(err as Error).message} ${JSON.stringify((err as Error).cause)}`).not.toContain(
      'aaaa',
    )
    // The transaction rolled back: the old key is still the active one.
    expect((await store.active())?.id).toBe(a.id)
    await store.close()
  })

  it('before migrate(), calls fail with ERR_KEYRING_STORE (no table), not a raw driver error', async () => {
    const store = new SqliteKeyringStore({ filename: freshFile() })
    const err = await rejection(store.list())
    expect(err).toBeInstanceOf(KeyringStoreError)
    expect((err as Error).cause).toEqual({ service: 'sqlite', code: 'SQLITE_ERROR' })
    await store.close()
  })

  it('setStatus refuses to activate a key, even from untyped callers', async () => {
    const store = new SqliteKeyringStore({ filename: freshFile() })
    await store.migrate()
    const a = await store.insertFirstActive(entry('a'))
    await store.setStatus(a.id, 'decrypt-only')
    expect(await rejection(store.setStatus(a.id, 'active' as never))).toBeInstanceOf(
      KeyringStoreError,
    )
    expect(await store.active()).toBeUndefined()
    await store.close()
  })

  it('keeps separate keyrings in separate tables of one file', async () => {
    const filename = freshFile()
    const a = new SqliteKeyringStore({ filename, table: 'keyring_a' })
    const b = new SqliteKeyringStore({ filename, table: 'keyring_b' })
    await Promise.all([a.migrate(), b.migrate()])
    await a.insertFirstActive(entry('a'))
    expect(await b.list()).toEqual([])
    await Promise.all([a.close(), b.close()])
  })

  it('refuses bad options with ERR_CONFIG_INVALID naming the field', () => {
    const db = new Database(':memory:')
    const bad = [
      [{}, 'database'],
      [{ filename: 'x.db', database: db }, 'filename'],
      [{ filename: '' }, 'filename'],
      [{ filename: 'x.db', table: 'Bad-Name' }, 'table'],
      [{ filename: 'x.db', table: 'sqlite_master' }, 'table'],
      [{ filename: 'x.db', table: 'k'.repeat(48) }, 'table'],
      [{ database: db, busyTimeoutMs: 10 }, 'busyTimeoutMs'],
      [{ database: {} }, 'database'],
      [{ filename: 'x.db', schema: 'public' }, 'schema'],
    ] as const
    for (const [options, field] of bad) {
      let thrown: unknown
      try {
        new SqliteKeyringStore(options as never)
      } catch (err) {
        thrown = err
      }
      expect(thrown, field).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
      expect((thrown as Error).message, field).toContain(`\`${field}\``)
    }
    db.close()
  })
})
