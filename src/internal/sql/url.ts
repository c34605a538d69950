/**
 * Connection strings for the SQL layer. One string picks the database:
 *
 * - `postgres://…` or `postgresql://…`: PostgreSQL, passed to `pg` as is.
 * - `sqlite:<path>` (`sqlite:data/keys.db`, `sqlite:/var/lib/app/keys.db`),
 *   `sqlite:///abs/path` and `file:///abs/path` URLs (percent-decoded), a plain
 *   path, or `:memory:` / `sqlite::memory:`: SQLite.
 *
 * Anything else that looks like a URL (`mysql://`, a misspelt `postgre://`) is
 * refused rather than opened as a file of that name; a file whose name
 * contains a colon is written `./name:with:colon`. Query strings are refused:
 * better-sqlite3 does not read SQLite URI parameters, and silently ignoring
 * `?mode=ro` would be worse.
 */
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { SqlDialect } from './migrate.js'

export type DatabaseLocation =
  | { readonly dialect: 'postgres'; readonly connectionString: string }
  | { readonly dialect: 'sqlite'; readonly filename: string }

/** The in-memory SQLite file name. */
export const SQLITE_MEMORY = ':memory:'

/** Parses a connection string, or throws an Error whose message says what is wrong. */
export function parseDatabaseUrl(value: string): DatabaseLocation {
  if (value.length === 0) throw new Error('must not be empty')
  if (value.includes('\0')) throw new Error('must not contain a NUL character')
  if (/^postgres(?:ql)?:\/\//i.test(value)) {
    if (!URL.canParse(value)) throw new Error('is not a valid PostgreSQL URL')
    return { dialect: 'postgres', connectionString: value }
  }
  if (/^sqlite:/i.test(value)) {
    const rest = value.slice('sqlite:'.length)
    if (rest.startsWith('//')) return sqlite(fileUrlPath(`file:${rest}`))
    if (rest.includes('?')) throw new Error('query parameters are not supported')
    if (rest.length === 0) throw new Error('needs a path after sqlite:')
    return sqlite(rest)
  }
  if (/^file:/i.test(value)) return sqlite(fileUrlPath(value))
  // Two or more letters then a colon: a URL scheme, not a Windows drive.
  if (/^[a-z][a-z0-9+.-]+:/i.test(value) && value !== SQLITE_MEMORY) {
    throw new Error('must be a postgres://, postgresql://, sqlite: or file: URL, or a path')
  }
  return sqlite(value)
}

function sqlite(filename: string): DatabaseLocation {
  return { dialect: 'sqlite', filename }
}

function fileUrlPath(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new Error('is not a valid file URL')
  }
  if (url.search !== '' || url.hash !== '') {
    throw new Error('query parameters are not supported')
  }
  try {
    return fileURLToPath(url)
  } catch {
    throw new Error('must be an absolute file URL on this host (file:///path)')
  }
}

/**
 * A zod schema for a connection-string option. With `dialect`, a string for
 * the other database is refused (a PostgreSQL store given `sqlite:` …).
 */
export function databaseUrlSchema(dialect?: SqlDialect) {
  return z.string().transform((value, ctx): DatabaseLocation => {
    let location: DatabaseLocation
    try {
      location = parseDatabaseUrl(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
      return z.NEVER
    }
    if (dialect !== undefined && location.dialect !== dialect) {
      ctx.addIssue({
        code: 'custom',
        message:
          dialect === 'postgres'
            ? 'must be a postgres:// or postgresql:// URL'
            : 'must be a SQLite path or sqlite:/file: URL',
      })
      return z.NEVER
    }
    return location
  })
}
