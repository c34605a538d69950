/**
 * One migration runner for both dialects, on Kysely's `Migrator`.
 *
 * Serialization: on PostgreSQL the migrator holds a session-level advisory
 * lock (`pg_advisory_lock`) around the whole run, and the run itself is one
 * transaction. Kysely's SQLite adapter takes no lock at all and runs without
 * a transaction, so two processes starting on a fresh file would both apply
 * `0001` and one would fail; our SQLite dialect (sqlite.ts) declares
 * transactional DDL and begins transactions with `BEGIN IMMEDIATE`, which
 * makes the run one write transaction: the second process waits (busy
 * timeout), then reads the migration table inside its own write lock and
 * finds nothing pending. The bookkeeping tables created before the lock use
 * `IF NOT EXISTS` and re-check on failure (Kysely does this itself).
 */
import { type Kysely, type Migration, Migrator } from 'kysely'
import { type SqlFailure, SqlMigrationError, sanitizeSqlError } from './errors.js'

export type SqlDialect = 'postgres' | 'sqlite'

/** Column types that differ between the dialects; everything else is written once. */
export interface SqlColumnTypes {
  /** Raw bytes: `bytea` on PostgreSQL, `blob` on SQLite. */
  readonly bytes: 'bytea' | 'blob'
  /**
   * A boolean stored as `integer` 0/1 on both: SQLite has no boolean and
   * better-sqlite3 refuses to bind JavaScript booleans.
   */
  readonly flag: 'integer'
}

/** What a migration knows about where it runs. */
export interface SqlMigrationContext {
  readonly dialect: SqlDialect
  readonly types: SqlColumnTypes
}

/**
 * One migration, written once with Kysely's schema builder for both
 * dialects. `db` is already scoped to the component's schema (PostgreSQL),
 * so table names are written unqualified. There is no `down`: migrations
 * only move forward, and each runs in the run's single transaction.
 */
export interface SqlMigration {
  up(db: Kysely<unknown>, context: SqlMigrationContext): Promise<void>
}

/** A component's migrations and the table recording which ran. */
export interface SqlMigrationSet {
  /** This component's history table; its lock table is `<name>_lock`. */
  readonly migrationTable: string
  /** Applied in name order (`0001_…`, `0002_…`); never rename or remove one. */
  readonly migrations: Readonly<Record<string, SqlMigration>>
}

export const COLUMN_TYPES: Readonly<Record<SqlDialect, SqlColumnTypes>> = {
  postgres: { bytes: 'bytea', flag: 'integer' },
  sqlite: { bytes: 'blob', flag: 'integer' },
}

/**
 * Applies every pending migration of `set`. `db` must be the unscoped
 * instance (the migrator qualifies its own tables with `schema`); on SQLite
 * it must come from our dialect, and in-process callers hold the file lock.
 */
export async function runMigrations(
  db: Kysely<unknown>,
  target: { readonly dialect: SqlDialect; readonly schema: string | undefined },
  set: SqlMigrationSet,
): Promise<void> {
  const context: SqlMigrationContext = {
    dialect: target.dialect,
    types: COLUMN_TYPES[target.dialect],
  }
  const migrations: Record<string, Migration> = {}
  for (const [name, m] of Object.entries(set.migrations)) {
    migrations[name] = {
      up: (trx: Kysely<unknown>) =>
        m.up(target.schema === undefined ? trx : trx.withSchema(target.schema), context),
    }
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    ...(target.schema === undefined ? {} : { migrationTableSchema: target.schema }),
    migrationTableName: set.migrationTable,
    migrationLockTableName: `${set.migrationTable}_lock`,
  })
  let { error, results } = await migrator.migrateToLatest()
  // The bookkeeping tables are created before Kysely takes its lock, and on
  // PostgreSQL a `CREATE ... IF NOT EXISTS` racing another instance's can
  // still fail (a unique violation in the catalog) before that instance has
  // committed, so Kysely's own re-check misses it. The setup is idempotent:
  // a run that failed there, with no migration applied, is simply run again.
  for (let attempt = 1; attempt < SETUP_ATTEMPTS && isSetupFailure(error, results); attempt++) {
    ;({ error, results } = await migrator.migrateToLatest())
  }
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? '(setup)'
    const where = target.schema === undefined ? target.dialect : `schema ${target.schema}`
    const cause: SqlFailure = sanitizeSqlError(target.dialect, error)
    throw new SqlMigrationError(failed, where, cause)
  }
}

/** Runs of a migration whose bookkeeping setup failed (a race with another instance). */
const SETUP_ATTEMPTS = 3

function isSetupFailure(
  error: unknown,
  results: readonly { status: string }[] | undefined,
): boolean {
  return error !== undefined && (results === undefined || results.length === 0)
}
