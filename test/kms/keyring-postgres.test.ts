import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { PostgresKeyringStore } from '../../src/kms/keyring/postgres.js'
import { KeyringStoreError } from '../../src/kms/keyring/store.js'
import { rejection } from '../helpers/rejection.js'
import { createPgSchema, DATABASE_URL, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'
import { describeKeyringStoreContract, keyringEntry } from './keyring.contract.js'

const entry = keyringEntry

/** The connection string with an application_name, to find (or not) its connections. */
const tagged = (name: string) => {
  const url = new URL(DATABASE_URL)
  url.searchParams.set('application_name', name)
  return url.toString()
}

describe.skipIf(!HAS_POSTGRES)('PostgresKeyringStore', () => {
  let db: PgSchema
  let n = 0
  beforeAll(async () => {
    db = await createPgSchema(import.meta.url)
  })
  afterAll(async () => db.drop())

  // One table per test in this file's schema. The store borrows the shared
  // pool; the other instance opens its own pool from a connection string:
  // two processes' worth of connections on one keyring.
  describeKeyringStoreContract('PostgresKeyringStore (two pools on one table)', async () => {
    const table = `keyring_${++n}`
    const store = new PostgresKeyringStore({ pool: db.pool, schema: db.schema, table })
    let other: PostgresKeyringStore | undefined
    return {
      store,
      other: async () => {
        other = new PostgresKeyringStore({
          connectionString: DATABASE_URL,
          schema: db.schema,
          table,
        })
        return other
      },
      close: async () => {
        await store.close()
        await other?.close()
      },
    }
  })

  it('migrate() from several instances at once on a fresh schema: created once, usable by all', async () => {
    const schema = `${db.schema}_fresh`
    const pool2 = new pg.Pool({ connectionString: DATABASE_URL, max: 4 })
    try {
      const stores = [db.pool, pool2, db.pool, pool2, db.pool, pool2].map(
        (pool) => new PostgresKeyringStore({ pool, schema }),
      )
      await Promise.all(stores.map((s) => s.migrate()))
      const { rows } = await db.pool.query({
        text: `SELECT count(*)::int AS n FROM "${schema}".fraiseql_keyring_migrations`,
      })
      expect(rows).toEqual([{ n: 2 }]) // 0001 and 0002, each once
      const results = await Promise.all(stores.map((s, i) => s.insertFirstActive(entry(String(i)))))
      expect(new Set(results.map((r) => r.id)).size).toBe(1)
    } finally {
      await db.pool.query({ text: `DROP SCHEMA IF EXISTS "${schema}" CASCADE` })
      await pool2.end()
    }
  })

  it('a pool it opened from connectionString is ended by close(); a borrowed pool stays open', async () => {
    const name = `keyring_owned_${randomBytes(4).toString('hex')}`
    const owned = new PostgresKeyringStore({
      connectionString: tagged(name),
      schema: db.schema,
      table: 'keyring_owned',
    })
    await owned.migrate()
    const connections = async () =>
      (
        await db.pool.query({
          text: 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
          values: [name],
        })
      ).rows[0] as { n: number }
    expect((await connections()).n).toBeGreaterThan(0)
    await owned.close()
    // The server drops a backend from pg_stat_activity shortly after the socket closes.
    await vi.waitFor(async () => expect(await connections()).toEqual({ n: 0 }), {
      timeout: 5000,
      interval: 20,
    })

    const borrowed = new PostgresKeyringStore({
      pool: db.pool,
      schema: db.schema,
      table: 'keyring_owned',
    })
    await borrowed.list()
    await borrowed.close()
    expect((await db.pool.query({ text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }])
    expect(await rejection(borrowed.list())).toBeInstanceOf(KeyringStoreError)
  })

  it('maps a constraint violation to ERR_KEYRING_STORE with the SQLSTATE only: no values, no SQL', async () => {
    const store = new PostgresKeyringStore({
      pool: db.pool,
      schema: db.schema,
      table: 'keyring_err',
    })
    await store.migrate()
    const a = await store.insertFirstActive(entry('a'))
    const err = await rejection(store.rotate(a.id, entry('a', 2)))
    expect(err).toBeInstanceOf(KeyringStoreError)
    expect((err as KeyringStoreError).code).toBe('ERR_KEYRING_STORE')
    expect((err as Error).cause).toEqual({ service: 'postgres', code: '23505' })
    expect(`${(err as Error).message} ${JSON.stringify((err as Error).cause)}`).not.toMatch(
      /aaaa|insert|keyring_err/i,
    )
    // The transaction rolled back: the old key is still the active one.
    expect((await store.active())?.id).toBe(a.id)
  })

  it('an unreachable server is ERR_KEYRING_STORE naming the network code, never the URL or password', async () => {
    const store = new PostgresKeyringStore({
      connectionString: 'postgres://keyuser:hunter2secret@127.0.0.1:1/db',
      schema: db.schema,
    })
    const err = await rejection(store.active())
    expect(err).toBeInstanceOf(KeyringStoreError)
    expect((err as Error).cause).toEqual({ service: 'postgres', code: 'ECONNREFUSED' })
    expect(JSON.stringify({ m: (err as Error).message, c: (err as Error).cause })).not.toMatch(
      /hunter2|keyuser/,
    )
    await store.close()
  })

  it('setStatus refuses to activate a key, even from untyped callers', async () => {
    const store = new PostgresKeyringStore({
      pool: db.pool,
      schema: db.schema,
      table: 'keyring_set',
    })
    await store.migrate()
    const a = await store.insertFirstActive(entry('a'))
    await store.setStatus(a.id, 'retired')
    expect(await rejection(store.setStatus(a.id, 'active' as never))).toBeInstanceOf(
      KeyringStoreError,
    )
    expect(await store.active()).toBeUndefined()
  })

  it('the one-active guard lives in the database: a second active row is refused outright', async () => {
    const store = new PostgresKeyringStore({
      pool: db.pool,
      schema: db.schema,
      table: 'keyring_idx',
    })
    await store.migrate()
    await store.insertFirstActive(entry('a'))
    await expect(
      db.pool.query({
        text: `INSERT INTO "${db.schema}".keyring_idx (id, status, wrapped_key, created_at, uses_reserved, seq) VALUES ('x', 'active', '{}', 1, 0, 9)`,
      }),
    ).rejects.toMatchObject({ code: '23505' })
    await expect(
      db.pool.query({
        text: `INSERT INTO "${db.schema}".keyring_idx (id, status, wrapped_key, created_at, uses_reserved, seq) VALUES ('y', 'revoked', '{}', 1, 0, 9)`,
      }),
    ).rejects.toMatchObject({ code: '23514' })
  })

  it('refuses bad options with ERR_CONFIG_INVALID naming the field', () => {
    const bad = [
      [{}, 'pool'],
      [{ pool: db.pool, connectionString: DATABASE_URL }, 'connectionString'],
      [{ connectionString: 'sqlite:/tmp/x.db' }, 'connectionString'],
      [{ connectionString: 'mysql://h/db' }, 'connectionString'],
      [{ pool: db.pool, schema: 'Bad"Schema' }, 'schema'],
      [{ pool: db.pool, schema: 'pg_catalog' }, 'schema'],
      [{ pool: db.pool, table: 'a'.repeat(48) }, 'table'],
      [{ pool: {} }, 'pool'],
      [{ pool: db.pool, logger: {} }, 'logger'],
    ] as const
    for (const [options, field] of bad) {
      let thrown: unknown
      try {
        new PostgresKeyringStore(options as never)
      } catch (err) {
        thrown = err
      }
      expect(thrown, field).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
      expect((thrown as Error).message, field).toContain(`\`${field}\``)
    }
  })
})
