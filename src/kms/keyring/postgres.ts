import { z } from 'zod'
import { stderrLogger } from '../../internal/logger.js'
import { LoggerOptionSchema, parseOptions } from '../../internal/options.js'
import { openSqlDatabase } from '../../internal/sql/database.js'
import { SqlIdentifierSchema } from '../../internal/sql/identifiers.js'
import { refinePgStoreOptions } from '../../internal/sql/options.js'
import { PgPoolSchema, watchBorrowedPool } from '../../internal/sql/postgres.js'
import { databaseUrlSchema } from '../../internal/sql/url.js'
import { DEFAULT_KEYRING_TABLE, KeyringTableSchema, SqlKeyringStore } from './sql.js'

/**
 * Options of {@link PostgresKeyringStore}: a borrowed `pool` or a
 * `connectionString`, plus where the table lives.
 *
 * @example
 * ```ts
 * const options = PostgresKeyringStoreOptionsSchema.parse({ connectionString: process.env.DATABASE_URL, schema: 'security' })
 * ```
 */
export const PostgresKeyringStoreOptionsSchema = z
  .object({
    /**
     * A `pg.Pool` to borrow. The store never ends it. Give this or
     * `connectionString`.
     */
    pool: PgPoolSchema.optional(),
    /**
     * `postgres://` or `postgresql://` URL: the store opens its own pool
     * (needs the `pg` package) and ends it in `close()`. Give this or `pool`.
     */
    connectionString: databaseUrlSchema('postgres').optional(),
    /**
     * Schema of the keyring table and its migration history; `migrate()`
     * creates it if missing.
     * @default 'public'
     */
    schema: SqlIdentifierSchema.default('public'),
    /**
     * Name of the keyring table (at most 47 characters: derived names are
     * longer). Each table is its own keyring.
     * @default 'fraiseql_keyring'
     */
    table: KeyringTableSchema.default(DEFAULT_KEYRING_TABLE),
    /** Where failures of the pool's idle connections (owned or borrowed) are logged. @default stderr */
    logger: LoggerOptionSchema.optional(),
  })
  .strict()
  .superRefine(refinePgStoreOptions)

export type PostgresKeyringStoreOptions = z.input<typeof PostgresKeyringStoreOptionsSchema>

/**
 * The keyring in PostgreSQL: what processes sharing one database use, so
 * they converge on one active data key and decrypt each other's ciphertexts.
 * One table (`migrate()` creates it, under an advisory lock so processes
 * starting together do not race); a partial unique index keeps at most one
 * key active, and rotation and use reservation are guarded in the database.
 * Nothing is imported or connected until the first call.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { KeyManager, PostgresKeyringStore } from 'fraiseql-security/kms'
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const keyring = new PostgresKeyringStore({ pool, schema: 'security' })
 * const keys = new KeyManager({ providers, defaultProvider: 'vault', defaultKeyId: 'app', keyring })
 * await keys.initialize() // runs keyring.migrate()
 * ```
 */
export class PostgresKeyringStore extends SqlKeyringStore {
  constructor(options: PostgresKeyringStoreOptions) {
    const o = parseOptions('PostgresKeyringStore', PostgresKeyringStoreOptionsSchema, options)
    // At once, not at the first call: the caller's pool may already hold idle clients.
    if (o.pool !== undefined) watchBorrowedPool(o.pool, o.logger ?? stderrLogger)
    super('postgres', o.table, () =>
      openSqlDatabase('PostgresKeyringStore', {
        ...(o.pool === undefined ? { location: o.connectionString! } : { pool: o.pool }),
        schema: o.schema,
        ...(o.logger === undefined ? {} : { logger: o.logger }),
      }),
    )
  }
}
