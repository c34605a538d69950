import { z } from 'zod'
import { parseOptions } from '../internal/options.js'
import { openSqlDatabase } from '../internal/sql/database.js'
import { refineSqliteStoreOptions } from '../internal/sql/options.js'
import { SqliteDatabaseSchema } from '../internal/sql/sqlite.js'
import { SqlApiKeyStore } from './sql.js'

/**
 * Options of {@link SqliteApiKeyStore}: a borrowed better-sqlite3 `database`
 * or a `filename` the store opens.
 *
 * @example
 * ```ts
 * SqliteApiKeyStoreOptionsSchema.parse({ filename: '.data/api-keys.db' })
 * ```
 */
export const SqliteApiKeyStoreOptionsSchema = z
  .object({
    /** A better-sqlite3 `Database` to borrow; the store never closes it. Give this or `filename`. */
    database: SqliteDatabaseSchema.optional(),
    /**
     * Path of the database file (`:memory:` for keys that die with the
     * process). Opened in WAL mode, created with mode 0600; closed by `close()`.
     */
    filename: z
      .string()
      .min(1)
      .refine((v) => !v.includes('\0'), 'must not contain a NUL character')
      .optional(),
    /**
     * How long a write waits for another process's write lock, for a file the store opens.
     * @default 5000
     */
    busyTimeoutMs: z.number().int().min(0).max(600_000).optional(),
    /**
     * How often processes sharing the file look for key changes made by the
     * others (one indexed read of the audit log per interval).
     * @default 1000
     */
    pollIntervalMs: z.number().int().min(10).max(3_600_000).default(1000),
  })
  .strict()
  .superRefine(refineSqliteStoreOptions)

export type SqliteApiKeyStoreOptions = z.input<typeof SqliteApiKeyStoreOptionsSchema>

/**
 * API keys in SQLite: the embedded default, for one server or several
 * processes on one host sharing the file. Same tables and audit chain as
 * {@link PostgresApiKeyStore}; other processes' changes are picked up by
 * polling the audit log every `pollIntervalMs`.
 *
 * @example
 * ```ts
 * import { ApiKeyManager, SqliteApiKeyStore } from 'fraiseql-security/api-keys'
 * const keys = new ApiKeyManager({ store: new SqliteApiKeyStore({ filename: '.data/api-keys.db' }), keyManager })
 * ```
 */
export class SqliteApiKeyStore extends SqlApiKeyStore {
  constructor(options: SqliteApiKeyStoreOptions) {
    const o = parseOptions('SqliteApiKeyStore', SqliteApiKeyStoreOptionsSchema, options)
    super({
      dialect: 'sqlite',
      chainLock: 'fraiseql_api_key_audit',
      pollIntervalMs: o.pollIntervalMs,
      open: () =>
        openSqlDatabase('SqliteApiKeyStore', {
          ...(o.database === undefined
            ? { location: { dialect: 'sqlite', filename: o.filename! } }
            : { database: o.database }),
          ...(o.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: o.busyTimeoutMs }),
        }),
    })
  }
}
