/**
 * The PostgreSQL side of the shared SQL layer: a structural pool type (so any
 * `pg.Pool` fits without importing `pg`), identifier checks, and migrations
 * run through Kysely's migrator, which serializes concurrent runs with a
 * PostgreSQL advisory lock so two processes starting together do not race.
 */
import { Kysely, type Migration, Migrator, PostgresDialect } from 'kysely'
import { z } from 'zod'

/** What the store needs of a `pg.Pool`: one-shot queries and checked-out clients. */
export interface PgPoolLike {
  query(config: { text: string; values?: unknown[]; name?: string }): Promise<{ rows: unknown[] }>
  connect(): Promise<PgClientLike>
}

export interface PgClientLike {
  query(...args: never[]): unknown
  release(err?: boolean | Error): void
}

export const PgPoolSchema = z.custom<PgPoolLike>(
  (v) =>
    typeof (v as Partial<PgPoolLike> | null)?.query === 'function' &&
    typeof (v as Partial<PgPoolLike> | null)?.connect === 'function',
  { message: 'must be a pg Pool (query and connect)' },
)

/** A PostgreSQL identifier we can splice into SQL unquoted-safe (then quote anyway). */
export const SqlIdentifierSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier (a-z, 0-9, _; at most 63)')

/** `"schema"` quoted for SQL; the value was validated by {@link SqlIdentifierSchema}. */
export const quoteIdent = (name: string) => `"${name}"`

export interface MigrateOptions {
  /** Schema holding the tables and the migration bookkeeping. */
  readonly schema: string
  /** Name of this component's migration table (each component keeps its own history). */
  readonly migrationTable: string
  /** Migrations by name, applied in name order. */
  readonly migrations: Record<string, Migration>
}

/**
 * Applies pending migrations. The caller's pool is borrowed, never ended:
 * Kysely's `destroy()` would close it, so the instance is simply dropped.
 */
export async function migratePostgres(pool: PgPoolLike, options: MigrateOptions): Promise<void> {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: pool as unknown as ConstructorParameters<typeof PostgresDialect>[0]['pool'],
    }),
  })
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => options.migrations },
    migrationTableSchema: options.schema,
    migrationTableName: `${options.migrationTable}`,
    migrationLockTableName: `${options.migrationTable}_lock`,
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName
    throw new Error(`migration ${failed ?? '(setup)'} failed in schema ${options.schema}`, {
      cause: error,
    })
  }
}
