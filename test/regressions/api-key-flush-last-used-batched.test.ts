/**
 * Regression (cost as the work grows, issue 19): a flush wrote each key's
 * last use with its own UPDATE, one round trip per key used since the last
 * flush. With 1e4 active keys one flush took 30 s on PostgreSQL
 * (bench/api-keys growth), far past its 1 s interval, and it ran on the
 * event loop that serves validations. The last uses now go in one UPDATE
 * per 500 keys, still only moving `last_used_at` forward. Checked by the
 * number of statements, on both dialects.
 */
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  type ApiKeyStore,
  PostgresApiKeyStore,
  SqliteApiKeyStore,
} from '../../src/api-keys/index.js'
import { T0 } from '../api-keys/helpers.js'
import { apiKeyRow } from '../api-keys/store.contract.js'
import { createPgSchema, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'

const KEYS = 600
const created = (keyId: string) => ({
  event: 'created' as const,
  keyId,
  actor: 'admin',
  ip: null,
  at: T0,
  detail: {},
})
const isLastUseUpdate = (text: string) => /^\s*update\b[^;]*api_keys.*last_used_at/is.test(text)

/**
 * Flushes the last use of KEYS keys, one of which was already used later,
 * and returns how many last-use UPDATEs the flush sent.
 */
async function flushMany(store: ApiKeyStore, statements: () => string[]): Promise<number> {
  await store.migrate()
  const rows = Array.from({ length: KEYS }, () => apiKeyRow())
  for (const row of rows) await store.insertKey(row, created(row.keyId))
  const later = rows[0]!.keyId
  await store.flush({ lastUsed: new Map([[later, T0 + 5000]]), rehash: [], audit: [] })
  const before = statements().filter(isLastUseUpdate).length
  await store.flush({
    lastUsed: new Map(rows.map((r, i) => [r.keyId, T0 + 1000 + i])),
    rehash: [],
    audit: [],
  })
  const sent = statements().filter(isLastUseUpdate).length - before
  expect((await store.getKey(later))?.lastUsedAt).toBe(T0 + 5000)
  for (const i of [1, 499, 500, KEYS - 1]) {
    expect((await store.getKey(rows[i]!.keyId))?.lastUsedAt).toBe(T0 + 1000 + i)
  }
  return sent
}

describe('a flush writes last uses in bounded batches, not one UPDATE per key', () => {
  it('SQLite: 600 keys take 2 UPDATEs', async () => {
    const db = new Database(':memory:')
    const texts: string[] = []
    const prepare = db.prepare.bind(db)
    db.prepare = ((source: string) => {
      texts.push(source)
      return prepare(source)
    }) as typeof db.prepare
    const store = new SqliteApiKeyStore({ database: db })
    try {
      expect(await flushMany(store, () => texts)).toBe(Math.ceil(KEYS / 500))
    } finally {
      await store.close()
      db.close()
    }
  })

  describe.skipIf(!HAS_POSTGRES)('PostgreSQL', () => {
    let db: PgSchema
    beforeAll(async () => {
      db = await createPgSchema(import.meta.url)
    })
    afterAll(async () => {
      vi.restoreAllMocks()
      await db.drop()
    })

    it('600 keys take 2 UPDATEs', async () => {
      const texts: string[] = []
      const query = pg.Client.prototype.query
      vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (
        this: pg.Client,
        ...args: unknown[]
      ) {
        const first = args[0]
        const text =
          typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text
        if (text !== undefined) texts.push(text)
        return (query as (...a: unknown[]) => unknown).apply(this, args)
      } as typeof query)
      const store = new PostgresApiKeyStore({ pool: db.pool, schema: db.schema })
      try {
        expect(await flushMany(store, () => texts)).toBe(Math.ceil(KEYS / 500))
      } finally {
        await store.close()
      }
    }, 60_000)
  })
})
