/**
 * Regression (specification parity): the API-key tables had no index on
 * what keys are looked up by besides their id and creation time: every
 * query by expiry (`expires_at`), by revocation (`revoked_at`, as
 * `listKeys({ includeRevoked: false })` and `checkLifecycle()` filter), or
 * of a key's audit trail (`api_key_audit_log.key_id`, `at`) read the whole
 * table. A second migration adds them, on PostgreSQL and SQLite, and
 * upgrades a database the first migration made.
 */
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PostgresApiKeyStore, SqliteApiKeyStore } from '../../src/api-keys/index.js'
import { API_KEY_MIGRATIONS } from '../../src/api-keys/sql.js'
import { openSqlDatabase } from '../../src/internal/sql/database.js'
import type { SqlMigrationSet } from '../../src/internal/sql/migrate.js'
import { T0 } from '../api-keys/helpers.js'
import { apiKeyRow } from '../api-keys/store.contract.js'
import { createPgSchema, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'

/** The first migration alone: a database as the previous release left it. */
const FIRST_RELEASE: SqlMigrationSet = {
  migrationTable: API_KEY_MIGRATIONS.migrationTable,
  migrations: { '0001_api_keys': API_KEY_MIGRATIONS.migrations['0001_api_keys']! },
}

const created = (keyId: string) => ({
  event: 'created' as const,
  keyId,
  actor: 'admin',
  ip: null,
  at: T0,
  detail: {},
})

/** Each index: its table, its columns in order, and a query the planner must answer with it. */
const INDEXES = [
  {
    name: 'api_keys_expires_at',
    table: 'api_keys',
    columns: ['expires_at'],
    query: (t: (name: string) => string) =>
      `SELECT key_id FROM ${t('api_keys')} WHERE expires_at < 1795000000000`,
  },
  {
    name: 'api_keys_revoked_at',
    table: 'api_keys',
    columns: ['revoked_at'],
    query: (t: (name: string) => string) =>
      `SELECT key_id FROM ${t('api_keys')} WHERE revoked_at IS NULL`,
  },
  {
    name: 'api_key_audit_log_key_id_at',
    table: 'api_key_audit_log',
    columns: ['key_id', 'at'],
    query: (t: (name: string) => string) =>
      `SELECT seq FROM ${t('api_key_audit_log')} WHERE key_id = 'k1' ORDER BY at`,
  },
  {
    name: 'api_key_audit_log_at',
    table: 'api_key_audit_log',
    columns: ['at'],
    query: (t: (name: string) => string) =>
      `SELECT seq FROM ${t('api_key_audit_log')} WHERE at >= 1795000000000`,
  },
] as const

describe.skipIf(!HAS_POSTGRES)('PostgreSQL', () => {
  let db: PgSchema
  beforeAll(async () => {
    db = await createPgSchema(import.meta.url)
  })
  afterAll(async () => {
    await db.drop()
  })
  let n = 0
  const freshSchema = async () => {
    const schema = `${db.schema}_${++n}`
    await db.pool.query(`CREATE SCHEMA "${schema}"`)
    return schema
  }

  async function indexColumns(schema: string): Promise<Map<string, string[]>> {
    const { rows } = await db.pool.query<{ index: string; column: string }>(
      `SELECT i.relname AS index, a.attname AS column
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace s ON s.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE s.nspname = $1
        ORDER BY i.relname, k.n`,
      [schema],
    )
    const out = new Map<string, string[]>()
    for (const r of rows) out.set(r.index, [...(out.get(r.index) ?? []), r.column])
    return out
  }

  async function planOf(sql: string): Promise<string> {
    const client = await db.pool.connect()
    try {
      await client.query('BEGIN')
      // Empty tables: a sequential scan is cheapest, so take it off the table
      // to ask whether an index can answer the query at all.
      await client.query('SET LOCAL enable_seqscan = off')
      const { rows } = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`)
      return JSON.stringify(rows[0]?.['QUERY PLAN'])
    } finally {
      await client.query('ROLLBACK')
      client.release()
    }
  }

  it('a new schema gets every index, and the planner can answer each query with it', async () => {
    const schema = await freshSchema()
    const store = new PostgresApiKeyStore({ pool: db.pool, schema })
    await store.migrate()
    const indexes = await indexColumns(schema)
    for (const index of INDEXES) {
      expect(indexes.get(index.name), index.name).toEqual(index.columns)
      const plan = await planOf(index.query((t) => `"${schema}"."${t}"`))
      expect(plan, index.name).toContain(`"Index Name":"${index.name}"`)
    }
    await store.close()
  })

  it('a database of the first release is upgraded, its keys intact, once', async () => {
    const schema = await freshSchema()
    const h = await openSqlDatabase('test', { pool: db.pool, schema })
    await h.migrate(FIRST_RELEASE)
    await h.close()
    expect([...(await indexColumns(schema)).keys()]).not.toContain('api_keys_expires_at')
    const row = apiKeyRow()
    const store = new PostgresApiKeyStore({ pool: db.pool, schema })
    await store.insertKey(row, created(row.keyId))
    await store.migrate()
    await store.migrate()
    const indexes = await indexColumns(schema)
    for (const index of INDEXES) expect(indexes.get(index.name), index.name).toEqual(index.columns)
    expect(await store.getKey(row.keyId)).toStrictEqual(row)
    const { rows } = await db.pool.query(
      `SELECT name FROM "${schema}".api_keys_migrations ORDER BY name`,
    )
    expect(rows.map((r) => r.name)).toEqual(Object.keys(API_KEY_MIGRATIONS.migrations).sort())
    await store.close()
  })
})

describe('SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fsl-api-key-indexes-'))
  afterAll(() => rm(dir, { recursive: true, force: true }))
  let n = 0
  const freshFile = () => join(dir, `k${++n}.db`)

  function indexColumns(file: string): Map<string, string[]> {
    const d = new Database(file, { readonly: true })
    try {
      const out = new Map<string, string[]>()
      const indexes = d
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .all() as { name: string }[]
      for (const { name } of indexes) {
        const cols = d.prepare(`PRAGMA index_info("${name}")`).all() as { name: string }[]
        out.set(
          name,
          cols.map((c) => c.name),
        )
      }
      return out
    } finally {
      d.close()
    }
  }

  function planOf(file: string, sql: string): string {
    const d = new Database(file, { readonly: true })
    try {
      const rows = d.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]
      return rows.map((r) => r.detail).join('\n')
    } finally {
      d.close()
    }
  }

  it('a new file gets every index, and the planner answers each query with it', async () => {
    const filename = freshFile()
    const store = new SqliteApiKeyStore({ filename })
    await store.migrate()
    await store.close()
    const indexes = indexColumns(filename)
    for (const index of INDEXES) {
      expect(indexes.get(index.name), index.name).toEqual(index.columns)
      expect(
        planOf(
          filename,
          index.query((t) => t),
        ),
        index.name,
      ).toMatch(new RegExp(`USING (COVERING )?INDEX ${index.name}\\b`))
    }
  })

  it('a file of the first release is upgraded, its keys intact, once', async () => {
    const filename = freshFile()
    const h = await openSqlDatabase('test', { location: { dialect: 'sqlite', filename } })
    await h.migrate(FIRST_RELEASE)
    await h.close()
    expect([...indexColumns(filename).keys()]).not.toContain('api_keys_expires_at')
    const row = apiKeyRow()
    const store = new SqliteApiKeyStore({ filename })
    await store.insertKey(row, created(row.keyId))
    await store.migrate()
    await store.migrate()
    expect(await store.getKey(row.keyId)).toStrictEqual(row)
    await store.close()
    const indexes = indexColumns(filename)
    for (const index of INDEXES) expect(indexes.get(index.name), index.name).toEqual(index.columns)
    const d = new Database(filename, { readonly: true })
    const names = d.prepare('SELECT name FROM api_keys_migrations ORDER BY name').all()
    d.close()
    expect(names.map((r) => (r as { name: string }).name)).toEqual(
      Object.keys(API_KEY_MIGRATIONS.migrations).sort(),
    )
  })
})
