/**
 * Where `keys` and `dek` act: a database (`--database-url`: a SQLite file or
 * a PostgreSQL URL) opened directly, or a running server's admin API
 * (`--url`, authenticated with `--api-key` or FRAISEQL_ADMIN_API_KEY).
 */
import { existsSync, readFileSync } from 'node:fs'
import { request as httpRequest, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { resolve } from 'node:path'
import { type DatabaseLocation, parseDatabaseUrl, SQLITE_MEMORY } from '../internal/sql/url.js'
import { type CliIO, UsageError } from './command.js'

export type Target =
  | { readonly kind: 'database'; readonly location: DatabaseLocation }
  | {
      readonly kind: 'api'
      readonly url: URL
      readonly apiKey: string
      /** `--cacert`, `--cert`, `--key`, read once (PEM). */
      readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }
    }

export const TARGET_OPTIONS = {
  'database-url': { type: 'string' },
  'context-prefix': { type: 'string' },
  url: { type: 'string' },
  'api-key': { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
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
      --cacert <file>        PEM CA that signed the server's certificate (https)
      --cert <file>          PEM client certificate, for an mTLS server
      --key <file>           PEM key of --cert
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
    cacert?: string | undefined
    cert?: string | undefined
    key?: string | undefined
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
    if ((values.cert === undefined) !== (values.key === undefined))
      throw new UsageError('--cert and --key go together')
    const pem = (flag: string, file: string | undefined) => {
      if (file === undefined) return {}
      try {
        return { [flag]: readFileSync(resolve(io.cwd, file)) }
      } catch (err) {
        throw new UsageError(
          `--${flag === 'ca' ? 'cacert' : flag} ${file}: ${(err as Error).message}`,
        )
      }
    }
    const tls = {
      ...pem('ca', values.cacert),
      ...pem('cert', values.cert),
      ...pem('key', values.key),
    }
    if (Object.keys(tls).length > 0 && parsed.protocol !== 'https:')
      throw new UsageError('--cacert, --cert and --key need an https:// --url')
    return { kind: 'api', url: parsed, apiKey, ...(Object.keys(tls).length > 0 ? { tls } : {}) }
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
  const url = new URL(path, target.url)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const { status, statusText, text } = await send(url, method, target, payload)
  let parsed: unknown
  try {
    parsed = text === '' ? undefined : JSON.parse(text)
  } catch {
    parsed = undefined
  }
  if (status < 200 || status > 299) {
    const detail = (parsed as { detail?: unknown } | undefined)?.detail
    throw new Error(
      `${method} ${path}: ${status} ${typeof detail === 'string' ? detail : statusText}`,
    )
  }
  return parsed as T
}

/**
 * One request through node:http(s), which takes a CA, a client certificate
 * and its key (fetch takes none without undici), bounded to 30 s.
 */
function send(
  url: URL,
  method: string,
  target: Extract<Target, { kind: 'api' }>,
  payload: string | undefined,
): Promise<{ status: number; statusText: string; text: string }> {
  const options: RequestOptions = {
    method,
    headers: {
      authorization: `Bearer ${target.apiKey}`,
      ...(payload === undefined
        ? {}
        : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
    },
    timeout: 30_000,
    ...(target.tls ?? {}),
  }
  const requestFn = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = requestFn(url, options, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      )
    })
    req.on('timeout', () => req.destroy(new Error(`${url.origin} did not answer within 30 s`)))
    req.on('error', (err) => reject(new Error(`${method} ${url.origin}`, { cause: err })))
    req.end(payload)
  })
}
