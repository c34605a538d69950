/**
 * What we keep of a database failure. A pg error's `detail` repeats the
 * offending values (`Key (id)=(…) already exists`), its `where` and
 * `internalQuery` the SQL text, and a connection error can name the host and
 * user: none of that may reach a log line or an error a caller serializes.
 * Only the service and its error code survive.
 */
import type { SqlDialect } from './migrate.js'

/** A sanitized database failure: which database, and its own error code. */
export interface SqlFailure {
  readonly service: SqlDialect
  /** SQLSTATE (`23505`), SQLite result code (`SQLITE_BUSY`) or Node network code (`ECONNREFUSED`). */
  readonly code?: string
}

/** Error codes are short upper-case tokens; anything else is not kept. */
const CODE = /^[A-Z0-9_]{1,40}$/

/** Reduces any thrown value to a {@link SqlFailure}. */
export function sanitizeSqlError(service: SqlDialect, err: unknown): SqlFailure {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && CODE.test(code) ? { service, code } : { service }
}

/** A migration failed; `migration` names it (`(setup)` for the bookkeeping tables). */
export class SqlMigrationError extends Error {
  readonly migration: string

  constructor(migration: string, target: string, cause: SqlFailure) {
    super(`migration ${migration} failed in ${target}`, { cause })
    this.name = 'SqlMigrationError'
    this.migration = migration
  }
}
