import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  type ApiKeyChange,
  ApiKeyStoreError,
  PostgresApiKeyStore,
} from '../../src/api-keys/index.js'
import { rejection } from '../helpers/rejection.js'
import { createPgSchema, DATABASE_URL, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'
import { expectConfigErrors, schemasOf, WAIT } from './helpers.js'
import { apiKeyRow, describeApiKeyStoreContract } from './store.contract.js'

describe.skipIf(!HAS_POSTGRES)('PostgresApiKeyStore', () => {
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

  // The store borrows the shared pool; the other opens its own pool from a
  // connection string: two processes' worth of connections on one schema.
  describeApiKeyStoreContract('PostgresApiKeyStore (two pools on one schema)', async () => {
    const schema = freshSchema()
    const store = new PostgresApiKeyStore({ pool: db.pool, schema })
    let other: PostgresApiKeyStore | undefined
    return {
      store,
      other: async () => {
        other = new PostgresApiKeyStore({ connectionString: DATABASE_URL, schema })
        return other
      },
      close: async () => {
        await store.close()
        await other?.close()
      },
    }
  })

  it('a lost LISTEN connection resets the subscriber, which reconnects and keeps receiving', async () => {
    const schema = freshSchema()
    const url = new URL(DATABASE_URL)
    url.searchParams.set('application_name', `listen_${schema}`.slice(0, 60))
    const listener = new PostgresApiKeyStore({
      connectionString: url.toString(),
      schema,
      reconnectDelayMs: 20,
      logger: { warn: () => {}, error: () => {} },
    })
    const writer = new PostgresApiKeyStore({ pool: db.pool, schema })
    await listener.migrate()
    const seen: ApiKeyChange[] = []
    let resets = 0
    await listener.subscribe(
      (c) => seen.push(c),
      () => resets++,
    )
    await db.pool.query({
      text: 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
      values: [`listen_${schema}`.slice(0, 60)],
    })
    const row = apiKeyRow()
    // Once the listener has reconnected, write until its notification arrives
    // (a write racing the re-LISTEN is not seen; a repeated one is a
    // duplicate, refused). Bounded by WAIT, not a fixed 200 × 25 ms.
    await vi.waitFor(async () => {
      if (resets >= 2) {
        await writer
          .insertKey(row, {
            event: 'created',
            keyId: row.keyId,
            actor: null,
            ip: null,
            at: 1,
            detail: {},
          })
          .catch(() => {})
      }
      expect(seen).toContainEqual({ event: 'created', keyId: row.keyId })
    }, WAIT)
    expect(resets).toBeGreaterThanOrEqual(2) // once when lost, once after reconnecting
    await listener.close()
    await writer.close()
  })

  it('a borrowed pool stays open after close(); failures are ERR_API_KEY_STORE with only the SQLSTATE', async () => {
    const schema = freshSchema()
    const store = new PostgresApiKeyStore({ pool: db.pool, schema })
    const err = await rejection(store.getKey('AbCdEfGhIjKl'))
    expect(err).toBeInstanceOf(ApiKeyStoreError)
    expect((err as Error).cause).toEqual({ service: 'postgres', code: '42P01' })
    await store.migrate()
    await store.close()
    expect((await db.pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
  })

  it('refuses bad options with ERR_CONFIG_INVALID naming the field', () => {
    expectConfigErrors(
      (o) => new PostgresApiKeyStore(o),
      [
        [{}, 'pool'],
        [{ pool: db.pool, connectionString: DATABASE_URL }, 'connectionString'],
        [{ connectionString: 'sqlite:/tmp/x.db' }, 'connectionString'],
        [{ pool: db.pool, schema: 'pg_catalog' }, 'schema'],
        [{ pool: {} }, 'pool'],
      ],
      { closed: true },
    )
  })
})
