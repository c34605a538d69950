/**
 * The SQL layer's handle: one Kysely instance over PostgreSQL (pg) or SQLite
 * (better-sqlite3), whichever the caller gave, with the few things every
 * component on top needs the same way:
 *
 * - ownership: a pool or database the caller passed in is borrowed and never
 *   ended or closed; one opened from a connection string is ours and closed
 *   by {@link SqlDatabase.close};
 * - `db` scoped to the component's schema (PostgreSQL), so queries and
 *   migrations name tables unqualified and are written once for both dialects;
 * - {@link SqlDatabase.run} / {@link SqlDatabase.transaction} for writes
 *   (SQLite: serialized per file in this process, `BEGIN IMMEDIATE`);
 * - {@link SqlDatabase.migrate}: per-component migration history, runs
 *   serialized across processes (see migrate.ts).
 *
 * Optional peers (`pg`, `better-sqlite3`) are imported only when a
 * connection string needs them; a borrowed pool or database needs neither.
 */
import { Kysely, sql } from 'kysely'
import { z } from 'zod'
import { stderrLogger } from '../logger.js'
import { LoggerOptionSchema, parseOptions } from '../options.js'
import { SqlIdentifierSchema } from './identifiers.js'
import { runMigrations, type SqlDialect, type SqlMigrationSet } from './migrate.js'
import {
  createPgPool,
  idleConnectionLogger,
  type OwnedPgPool,
  type PgPoolLike,
  PgPoolSchema,
  postgresDialect,
  watchBorrowedPool,
} from './postgres.js'
import {
  type OwnedSqliteDatabase,
  openSqliteDatabase,
  type SqliteDatabaseLike,
  SqliteDatabaseSchema,
  sqliteDialect,
  sqliteLockKey,
  withFileLock,
} from './sqlite.js'
import type { DatabaseLocation } from './url.js'

export const OpenSqlDatabaseOptionsSchema = z
  .object({
    /** A borrowed `pg.Pool`. */
    pool: PgPoolSchema.optional(),
    /** A borrowed better-sqlite3 `Database`. */
    database: SqliteDatabaseSchema.optional(),
    /** Where to connect, from {@link parseDatabaseUrl}: the handle owns what it opens. */
    location: z
      .custom<DatabaseLocation>(
        (v) =>
          (v as Partial<DatabaseLocation> | null)?.dialect === 'postgres' ||
          (v as Partial<DatabaseLocation> | null)?.dialect === 'sqlite',
        { message: 'must be a parsed connection string (parseDatabaseUrl)' },
      )
      .optional(),
    /**
     * PostgreSQL schema of the component's tables (created by `migrate()` if
     * missing). SQLite has none.
     * @default 'public'
     */
    schema: SqlIdentifierSchema.optional(),
    /**
     * How long a SQLite writer waits for another process's write lock, for a
     * database the handle opens (better-sqlite3's `timeout`).
     * @default 5000
     */
    busyTimeoutMs: z.number().int().min(0).max(600_000).default(5000),
    /** Where errors of the pool's idle connections (owned or borrowed) are logged. @default stderr */
    logger: LoggerOptionSchema.optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const given = [o.pool, o.database, o.location].filter((v) => v !== undefined).length
    if (given !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['pool'],
        message: 'give exactly one of pool, database or a connection string',
      })
    }
    const sqlite = o.database !== undefined || o.location?.dialect === 'sqlite'
    if (sqlite && o.schema !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['schema'], message: 'SQLite has no schemas' })
    }
  })

export type OpenSqlDatabaseOptions = z.input<typeof OpenSqlDatabaseOptionsSchema>

export interface TransactionOptions {
  /**
   * PostgreSQL: take `pg_advisory_xact_lock` on this name first, so writers
   * of one logical resource (an audit chain) serialize across processes even
   * when their rows do not conflict. Released at commit or rollback. SQLite
   * needs none: its transactions already hold the database's write lock.
   */
  readonly advisoryLock?: string
}

/** An open SQL database shared by one component; see the module comment. */
export class SqlDatabase<DB = unknown> {
  readonly dialect: SqlDialect
  /** PostgreSQL schema `db` is scoped to; undefined on SQLite. */
  readonly schema: string | undefined
  /** True when the handle opened the pool or database itself and closes it. */
  readonly owned: boolean
  /**
   * The pool (owned or borrowed), for what Kysely does not cover: a
   * dedicated `LISTEN` connection, named prepared statements.
   */
  readonly pgPool: PgPoolLike | undefined
  readonly #base: Kysely<DB>
  readonly #db: Kysely<DB>
  readonly #lockKey: unknown
  readonly #release: () => Promise<void>
  #closed = false

  /** @internal Use {@link openSqlDatabase}. */
  constructor(init: {
    dialect: SqlDialect
    schema: string | undefined
    owned: boolean
    pgPool: PgPoolLike | undefined
    base: Kysely<DB>
    lockKey: unknown
    release: () => Promise<void>
  }) {
    this.dialect = init.dialect
    this.schema = init.schema
    this.owned = init.owned
    this.pgPool = init.pgPool
    this.#base = init.base
    this.#db = init.schema === undefined ? init.base : init.base.withSchema(init.schema)
    this.#lockKey = init.lockKey
    this.#release = init.release
  }

  /**
   * The Kysely instance, scoped to {@link schema}. Reads may use it
   * directly; writes go through {@link run} or {@link transaction}.
   */
  get db(): Kysely<DB> {
    this.#checkOpen()
    return this.#db
  }

  get closed(): boolean {
    return this.#closed
  }

  /**
   * Runs `fn` (autocommit statements). On SQLite it holds this process's
   * lock on the file, so it never waits synchronously for another
   * connection of the same process.
   */
  async run<T>(fn: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    this.#checkOpen()
    if (this.dialect === 'postgres') return fn(this.#db)
    return withFileLock(this.#lockKey, () => fn(this.#db))
  }

  /**
   * Runs `fn` in one transaction, committed when it resolves and rolled back
   * when it throws. PostgreSQL: READ COMMITTED (set explicitly), so a statement blocked by a
   * concurrent writer re-checks its WHERE against the committed row (guards
   * such as `status = 'active'` stay exact). SQLite: `BEGIN IMMEDIATE`.
   */
  async transaction<T>(
    fn: (trx: Kysely<DB>) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    return this.run((db) => {
      // Stated, not inherited: a server or role whose default is REPEATABLE
      // READ would turn a concurrent guarded UPDATE into a serialization
      // failure instead of a re-check.
      const builder =
        this.dialect === 'postgres'
          ? db.transaction().setIsolationLevel('read committed')
          : db.transaction()
      return builder.execute(async (trx) => {
        if (this.dialect === 'postgres' && options.advisoryLock !== undefined) {
          await sql`select pg_advisory_xact_lock(hashtextextended(${options.advisoryLock}, 0))`.execute(
            trx,
          )
        }
        return fn(trx)
      })
    })
  }

  /** Applies the component's pending migrations; idempotent and safe across processes. */
  async migrate(set: SqlMigrationSet): Promise<void> {
    this.#checkOpen()
    const base = this.#base as Kysely<unknown>
    const target = { dialect: this.dialect, schema: this.schema }
    if (this.dialect === 'postgres') return runMigrations(base, target, set)
    return withFileLock(this.#lockKey, () => runMigrations(base, target, set))
  }

  /**
   * Closes what the handle opened (an owned pool is ended, an owned SQLite
   * database closed); a borrowed pool or database stays open. Idempotent.
   * Wait for in-flight operations first.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#base.destroy()
    await this.#release()
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('the SQL database handle is closed')
  }
}

/**
 * Opens a handle over a borrowed pool or database, or over what a parsed
 * connection string names (imports `pg` or `better-sqlite3` then). Bad
 * options throw `ERR_CONFIG_INVALID` naming the field; `feature` names the
 * component in that error and in a missing-package error.
 *
 * @example
 * ```ts
 * const h = await openSqlDatabase('ApiKeyStore', { location: parseDatabaseUrl(url), logger })
 * await h.migrate({ migrationTable: 'fraiseql_api_keys_migrations', migrations })
 * const row = await h.db.selectFrom('api_keys' as never).selectAll().executeTakeFirst()
 * ```
 */
export async function openSqlDatabase<DB = unknown>(
  feature: string,
  options: OpenSqlDatabaseOptions,
): Promise<SqlDatabase<DB>> {
  const o = parseOptions(feature, OpenSqlDatabaseOptionsSchema, options)
  if (o.pool !== undefined) {
    watchBorrowedPool(o.pool, o.logger ?? stderrLogger)
    return postgresHandle<DB>(o.pool, o.schema, undefined)
  }
  if (o.database !== undefined) return sqliteHandle<DB>(o.database, undefined)
  const location = o.location!
  if (location.dialect === 'postgres') {
    const logger = o.logger ?? stderrLogger
    const pool = await createPgPool(
      location.connectionString,
      feature,
      idleConnectionLogger(logger),
    )
    return postgresHandle<DB>(pool, o.schema, pool)
  }
  const database = await openSqliteDatabase(location.filename, feature, o.busyTimeoutMs)
  return sqliteHandle<DB>(database, database)
}

function postgresHandle<DB>(
  pool: PgPoolLike,
  schema: string | undefined,
  owned: OwnedPgPool | undefined,
): SqlDatabase<DB> {
  return new SqlDatabase<DB>({
    dialect: 'postgres',
    schema: schema ?? 'public',
    owned: owned !== undefined,
    pgPool: pool,
    base: new Kysely<DB>({ dialect: postgresDialect(pool) }),
    lockKey: undefined,
    release: async () => {
      if (owned !== undefined && owned.ended !== true) await owned.end()
    },
  })
}

function sqliteHandle<DB>(
  database: SqliteDatabaseLike,
  owned: OwnedSqliteDatabase | undefined,
): SqlDatabase<DB> {
  return new SqlDatabase<DB>({
    dialect: 'sqlite',
    schema: undefined,
    owned: owned !== undefined,
    pgPool: undefined,
    base: new Kysely<DB>({ dialect: sqliteDialect(database) }),
    lockKey: sqliteLockKey(database),
    release: async () => {
      // Wait for this process's writers of the file, then close.
      if (owned !== undefined) await withFileLock(sqliteLockKey(owned), async () => owned.close())
    },
  })
}
