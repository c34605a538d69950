/**
 * Where `keys` and `dek` act: a database (`--database-url`: a SQLite file or
 * a PostgreSQL URL) opened directly, or a running server's admin API
 * (`--url`, authenticated with `--api-key` or FRAISEQL_ADMIN_API_KEY).
 */
import { existsSync } from 'node:fs'
import { type DatabaseLocation, parseDatabaseUrl, SQLITE_MEMORY } from '../internal/sql/url.js'
import { type CliIO, UsageError } from './command.js'

export type Target =
  | { readonly kind: 'database'; readonly location: DatabaseLocation }
  | { readonly kind: 'api'; readonly url: URL; readonly apiKey: string }

export const TARGET_OPTIONS = {
  'database-url': { type: 'string' },
  'context-prefix': { type: 'string' },
  url: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const

export const TARGET_HELP = `Target (one of):
      --database-url <url>   A SQLite file (path, sqlite: or file: URL) or a
                             postgres:// URL; default FRAISEQL_DATABASE_URL
          --context-prefix <p>   The server's KeyManager contextPrefix (the KMS
                             context its keys are bound to); default
                             FRAISEQL_KMS_CONTEXT_PREFIX. The example server
                             uses "example" and prints the exact line.
      --url <url>            A running server's admin API, e.g. http://127.0.0.1:3000
      --api-key <key>        Admin API key for --url; default FRAISEQL_ADMIN_API_KEY
      --json                 Print JSON instead of a table
  -h, --help                 Show this help

KMS (for work that wraps or unwraps keys with --database-url): the
FRAISEQL_KMS_PROVIDER family of variables, as the server reads them
(https://github.com/fraiseql/fraiseql-security/blob/main/docs/kms.md,
"Selecting a KMS from the environment").
`

export function targetOf(
  values: {
    'database-url'?: string | undefined
    url?: string | undefined
    'api-key'?: string | undefined
  },
  io: CliIO,
): Target {
  const url = values.url
  if (url !== undefined && values['database-url'] !== undefined) {
    throw new UsageError('give --database-url or --url, not both')
  }
  if (url !== undefined) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined
    if (parsed === undefined || !/^https?:$/.test(parsed.protocol)) {
      throw new UsageError('--url must be an http(s) URL')
    }
    const apiKey = values['api-key'] ?? io.env.FRAISEQL_ADMIN_API_KEY
    if (apiKey === undefined || apiKey === '') {
      throw new UsageError(
        '--url needs --api-key (or FRAISEQL_ADMIN_API_KEY) with the admin permission',
      )
    }
    return { kind: 'api', url: parsed, apiKey }
  }
  const database = values['database-url'] ?? io.env.FRAISEQL_DATABASE_URL
  if (database === undefined) throw new UsageError('give --database-url or --url')
  try {
    return { kind: 'database', location: parseDatabaseUrl(database) }
  } catch (err) {
    throw new UsageError(`--database-url ${(err as Error).message}`)
  }
}

/**
 * The `contextPrefix` the server's KeyManager was built with: without the
 * same one, every unwrap fails with ERR_KMS_DECRYPTION_FAILED, because the
 * prefix is part of the KMS encryption context.
 */
export function contextPrefixOf(
  values: { 'context-prefix'?: string | undefined },
  io: CliIO,
): { contextPrefix?: string } {
  const prefix = values['context-prefix'] ?? io.env.FRAISEQL_KMS_CONTEXT_PREFIX
  if (prefix === undefined || prefix === '') return {}
  if (prefix.length > 256) throw new UsageError('--context-prefix is at most 256 characters')
  return { contextPrefix: prefix }
}

/**
 * Read-only commands never create a database: better-sqlite3 would make an
 * empty file at a mistyped path and the command would print an empty table.
 */
export function requireExistingDatabase(location: DatabaseLocation): void {
  if (location.dialect !== 'sqlite' || location.filename === SQLITE_MEMORY) return
  if (!existsSync(location.filename))
    throw new UsageError(`--database-url: no database at ${location.filename} (check the path)`)
}

/** A JSON call to the admin API; a non-2xx answer throws with the server's `detail`. */
export async function adminCall<T>(
  target: Extract<Target, { kind: 'api' }>,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(new URL(path, target.url), {
    method,
    headers: {
      authorization: `Bearer ${target.apiKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = text === '' ? undefined : JSON.parse(text)
  } catch {
    parsed = undefined
  }
  if (!res.ok) {
    const detail = (parsed as { detail?: unknown } | undefined)?.detail
    throw new Error(
      `${method} ${path}: ${res.status} ${typeof detail === 'string' ? detail : res.statusText}`,
    )
  }
  return parsed as T
}
