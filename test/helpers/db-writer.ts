/**
 * The attacker of issue 21: someone who can write the database (an SQL
 * injection elsewhere, a stolen replica credential, a rogue operator) but
 * holds no key. Each suite runs once on real PostgreSQL and once on SQLite;
 * `sql()` writes rows with plain SQL, as that attacker would, bypassing the
 * package entirely.
 */
import { randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe } from 'vitest'
import { PostgresApiKeyStore, SqliteApiKeyStore } from '../../src/api-keys/index.js'
import type { ApiKeyStore } from '../../src/api-keys/store.js'
import {
  KeyManager,
  type KeyringStore,
  LocalKmsProvider,
  PostgresKeyringStore,
  SqliteKeyringStore,
} from '../../src/kms/index.js'
import { createPgSchema, HAS_POSTGRES, type PgSchema } from './services.js'

export interface AttackedDatabase {
  readonly kind: 'postgres' | 'sqlite'
  /** A keyring store on this database (a new object each call, the same tables; `table` picks another keyring). */
  keyringStore(table?: string): KeyringStore
  /** An API-key store on this database (a new object each call, the same tables). */
  apiKeyStore(): ApiKeyStore
  /** Plain SQL with `?` placeholders, as the attacker runs it. */
  sql(text: string, params?: readonly unknown[]): Promise<Array<Record<string, unknown>>>
}

/** Runs `body` against PostgreSQL (when reachable; always in CI) and SQLite. */
export function describeOnBothDatabases(
  title: string,
  fileUrl: string,
  body: (db: () => AttackedDatabase) => void,
): void {
  describe.skipIf(!HAS_POSTGRES)(`${title} (PostgreSQL)`, () => {
    let pg: PgSchema
    let current: AttackedDatabase
    beforeAll(async () => {
      pg = await createPgSchema(fileUrl)
      current = {
        kind: 'postgres',
        keyringStore: (table) =>
          new PostgresKeyringStore({
            pool: pg.pool,
            schema: pg.schema,
            ...(table ? { table } : {}),
          }),
        apiKeyStore: () => new PostgresApiKeyStore({ pool: pg.pool, schema: pg.schema }),
        async sql(text, params = []) {
          let n = 0
          const result = await pg.pool.query(
            text.replace(/\?/g, () => `$${++n}`),
            params as unknown[],
          )
          return result.rows as Array<Record<string, unknown>>
        },
      }
    })
    afterAll(async () => pg.drop())
    body(() => current)
  })

  describe(`${title} (SQLite)`, () => {
    let database: Database.Database
    let current: AttackedDatabase
    beforeAll(() => {
      database = new Database(':memory:')
      current = {
        kind: 'sqlite',
        keyringStore: (table) => new SqliteKeyringStore({ database, ...(table ? { table } : {}) }),
        apiKeyStore: () => new SqliteApiKeyStore({ database }),
        async sql(text, params = []) {
          const statement = database.prepare(text)
          const values = params.map((p) => (typeof p === 'boolean' ? Number(p) : p))
          if (statement.reader) return statement.all(...values) as Array<Record<string, unknown>>
          statement.run(...values)
          return []
        },
      }
    })
    afterAll(() => database.close())
    body(() => current)
  })
}

/** A fresh 16-byte id in hex, as the keyring writes them. */
export const randomId = (): string => randomBytes(16).toString('hex')

/** The `code` of the error a promise rejects with; fails the test if it resolves. */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code
  }
  throw new Error('expected a rejection')
}

/** A logger that drops everything. */
export const quiet = { warn: () => {}, error: () => {} }

/**
 * The application's KMS: a local provider with a fresh key, held by the
 * legitimate processes and never by the attacker.
 */
export function applicationKeyManager(): KeyManager {
  return new KeyManager({
    providers: { local: new LocalKmsProvider({ keys: { app: randomBytes(32) } }) },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    logger: quiet,
  })
}
