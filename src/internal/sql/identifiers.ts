/**
 * Names we splice into SQL (schemas, tables, indexes). Values always travel
 * as bound parameters; identifiers cannot, so they are checked against one
 * strict shape that is valid unquoted in PostgreSQL and SQLite alike, and
 * quoted anyway.
 */
import { z } from 'zod'

/** PostgreSQL truncates longer identifiers silently (NAMEDATALEN - 1). */
export const MAX_IDENTIFIER_LENGTH = 63

/**
 * A lowercase SQL identifier of at most `maxLength` characters. `pg_` and
 * `sqlite_` prefixes are refused: both databases reserve them for their own
 * objects (`CREATE SCHEMA pg_x` fails; `sqlite_` tables are internal).
 */
export function sqlIdentifier(maxLength: number = MAX_IDENTIFIER_LENGTH) {
  return z
    .string()
    .regex(
      new RegExp(`^[a-z_][a-z0-9_]{0,${maxLength - 1}}$`),
      `must be a lowercase SQL identifier (a-z, 0-9, _; at most ${maxLength} characters)`,
    )
    .refine((v) => !v.startsWith('pg_') && !v.startsWith('sqlite_'), {
      message: 'must not start with pg_ or sqlite_ (reserved by the database)',
    })
}

/** A schema or table name: see {@link sqlIdentifier}. */
export const SqlIdentifierSchema = sqlIdentifier()

/** `"name"` quoted for SQL; the value was validated by {@link SqlIdentifierSchema}. */
export const quoteIdent = (name: string) => `"${name}"`
