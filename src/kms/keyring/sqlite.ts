import { z } from 'zod'
import { parseOptions } from '../../internal/options.js'
import { openSqlDatabase } from '../../internal/sql/database.js'
import { refineSqliteStoreOptions } from '../../internal/sql/options.js'
import { SqliteDatabaseSchema } from '../../internal/sql/sqlite.js'
import { DEFAULT_KEYRING_TABLE, KeyringTableSchema, SqlKeyringStore } from './sql.js'

/**
 * Options of {@link SqliteKeyringStore}: a borrowed better-sqlite3 `database`
 * or a `filename` the store opens.
 *
 * @example
 * ```ts
 * const options = SqliteKeyringStoreOptionsSchema.parse({ filename: '.data/keyring.db' })
 * ```
 */
export const SqliteKeyringStoreOptionsSchema = z
  .object({
    /**
     * A better-sqlite3 `Database` to borrow. The store never closes it.
     * Give this or `filename`.
     */
    database: SqliteDatabaseSchema.optional(),
    /**
     * Path of the database file, taken verbatim (`:memory:` for a keyring
     * that dies with the process). The store opens it (needs the
     * `better-sqlite3` package) in WAL mode, creating the file with mode
     * 0600 and its directory with 0700 if missing, and closes it in
     * `close()`. Give this or `database`.
     */
    filename: z
      .string()
      .min(1)
      .refine((v) => !v.includes('\0'), 'must not contain a NUL character')
      .optional(),
    /**
     * Name of the keyring table (at most 47 characters).
     * @default 'fraiseql_keyring'
     */
    table: KeyringTableSchema.default(DEFAULT_KEYRING_TABLE),
    /**
     * How long a write waits for another process's write lock before failing
     * with `ERR_KEYRING_STORE`, for a file the store opens.
     * @default 5000
     */
    busyTimeoutMs: z.number().int().min(0).max(600_000).optional(),
  })
  .strict()
  .superRefine(refineSqliteStoreOptions)

export type SqliteKeyringStoreOptions = z.input<typeof SqliteKeyringStoreOptionsSchema>

/**
 * The keyring in SQLite: the embedded default for a single server, or
 * several processes on one host sharing the file (SQLite's locks serialize
 * them; writes wait up to `busyTimeoutMs`). Same table, guards and
 * migrations as {@link PostgresKeyringStore}. Nothing is imported or opened
 * until the first call. Keep the file with your data's backups: losing it
 * loses every local ciphertext.
 *
 * @example
 * ```ts
 * import { KeyManager, SqliteKeyringStore } from 'fraiseql-security/kms'
 * const keyring = new SqliteKeyringStore({ filename: '.data/keyring.db' })
 * const keys = new KeyManager({ providers, defaultProvider: 'vault', defaultKeyId: 'app', keyring })
 * await keys.initialize() // runs keyring.migrate()
 * ```
 */
export class SqliteKeyringStore extends SqlKeyringStore {
  constructor(options: SqliteKeyringStoreOptions) {
    const o = parseOptions('SqliteKeyringStore', SqliteKeyringStoreOptionsSchema, options)
    super('sqlite', o.table, () =>
      openSqlDatabase('SqliteKeyringStore', {
        ...(o.database === undefined
          ? { location: { dialect: 'sqlite', filename: o.filename! } }
          : { database: o.database }),
        ...(o.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: o.busyTimeoutMs }),
      }),
    )
  }
}
