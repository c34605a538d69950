/**
 * The PostgreSQL side of the shared SQL layer: a structural pool type (so any
 * `pg.Pool` fits without importing `pg`), Kysely's PostgresDialect over a
 * pool we either borrow or own, the lazy `pg` import for connection strings,
 * and `migratePostgres` for components that keep their own raw SQL.
 */
import { Kysely, type Migration, PostgresDialect, type PostgresPool } from 'kysely'
import { z } from 'zod'
import type { Logger } from '../logger.js'
import { importOptional } from '../optional-import.js'
import { runMigrations } from './migrate.js'

export { quoteIdent, SqlIdentifierSchema } from './identifiers.js'

/** What the SQL layer needs of a `pg.Pool`: one-shot queries and checked-out clients. */
export interface PgPoolLike {
  query(config: { text: string; values?: unknown[]; name?: string }): Promise<{ rows: unknown[] }>
  connect(): Promise<PgClientLike>
}

export interface PgClientLike {
  query(...args: never[]): unknown
  release(err?: boolean | Error): void
}

/** A pool we created from a connection string, and therefore end. */
export interface OwnedPgPool extends PgPoolLike {
  end(): Promise<void>
  on(event: 'error', listener: (err: Error) => void): unknown
  readonly ended?: boolean
}

export const PgPoolSchema = z.custom<PgPoolLike>(
  (v) =>
    typeof (v as Partial<PgPoolLike> | null)?.query === 'function' &&
    typeof (v as Partial<PgPoolLike> | null)?.connect === 'function',
  { message: 'must be a pg Pool (query and connect)' },
)

/**
 * Kysely's dialect over `pool`. Kysely ends the pool in `destroy()`; a
 * borrowed pool is wrapped so that `end` does nothing, which lets every
 * handle be destroyed the same way without ever ending the caller's pool.
 */
export function postgresDialect(pool: PgPoolLike): PostgresDialect {
  const borrowed = {
    connect: () => pool.connect(),
    end: async () => {},
  }
  return new PostgresDialect({ pool: borrowed as unknown as PostgresPool })
}

interface PgModule {
  Pool: new (config: {
    connectionString: string
    allowExitOnIdle?: boolean
    max?: number
  }) => OwnedPgPool
}

/**
 * A new `pg.Pool` for `connectionString`, importing `pg` on first use.
 * `allowExitOnIdle`: a store's idle connections never keep the process alive.
 */
export async function createPgPool(
  connectionString: string,
  feature: string,
  onError: (err: Error) => void,
): Promise<OwnedPgPool> {
  const mod = await importOptional<PgModule & { default?: PgModule }>('pg', feature)
  const { Pool } = mod.default ?? mod
  const pool = new Pool({ connectionString, allowExitOnIdle: true })
  // An idle client losing its connection emits 'error' on the pool; with no
  // listener that event would crash the process.
  pool.on('error', onError)
  return pool
}

/**
 * What a pool's `error` listener logs: the error's name and code, never its
 * message (a server's text is not ours to vouch for).
 */
export function idleConnectionLogger(logger: Logger): (err: Error) => void {
  return (err) => {
    const code = (err as { code?: unknown }).code
    logger.warn(
      { err: { name: err.name, ...(typeof code === 'string' ? { code } : {}) } },
      'PostgreSQL idle connection failed',
    )
  }
}

const watchedPools = new WeakSet<object>()

/**
 * Listens for `error` on a pool the caller lent us, once per pool however
 * many stores share it. pg's pool emits `error` when an idle client's
 * connection ends (a PostgreSQL restart: "terminating connection due to
 * administrator command"); with no listener Node throws it and the process
 * dies before any store call could fail over. The pool replaces the client by
 * itself; the next query reconnects or fails as a typed store error.
 */
export function watchBorrowedPool(pool: PgPoolLike, logger: Logger): void {
  const on = (pool as { on?: unknown }).on
  if (typeof on !== 'function' || watchedPools.has(pool)) return
  watchedPools.add(pool)
  on.call(pool, 'error', idleConnectionLogger(logger))
}

export interface MigrateOptions {
  /** Schema holding the tables and the migration bookkeeping (created if missing). */
  readonly schema: string
  /** Name of this component's migration table (each component keeps its own history). */
  readonly migrationTable: string
  /** Migrations by name, applied in name order. */
  readonly migrations: Record<string, Migration>
}

/**
 * Applies pending migrations on a borrowed pool, under Kysely's advisory
 * lock (see migrate.ts). The pool is never ended. Migrations receive a
 * Kysely instance scoped to `schema`.
 */
export async function migratePostgres(pool: PgPoolLike, options: MigrateOptions): Promise<void> {
  const db = new Kysely<unknown>({ dialect: postgresDialect(pool) })
  try {
    await runMigrations(
      db,
      { dialect: 'postgres', schema: options.schema },
      { migrationTable: options.migrationTable, migrations: options.migrations },
    )
  } finally {
    await db.destroy()
  }
}
