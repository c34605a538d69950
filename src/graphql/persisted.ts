/**
 * Persisted operations: a manifest of the queries a client may send, keyed
 * by the SHA-256 of each query's text, the key Apollo's automatic persisted
 * queries (APQ) use (`extensions.persistedQuery.sha256Hash`, version 1).
 */
import { createHash } from 'node:crypto'
import { ConfigError } from '../errors.js'
import { rejection } from '../internal/graphql-rejection.js'
import { type GraphqlRuntime, graphqlRuntime } from '../internal/graphql-runtime.js'
import { GraphqlRejectedError } from './errors.js'

const SHA256_HEX = /^[0-9a-f]{64}$/

/**
 * An immutable manifest of persisted operations. Each key must be the
 * lowercase hex SHA-256 of its query's UTF-8 text; a manifest where it is
 * not (built with another hash, or edited by hand) is refused at
 * construction: a key that lies would let a query run under another's name.
 *
 * @example
 * ```ts
 * import { PersistedOperations } from 'fraiseql-security/graphql'
 * const ops = PersistedOperations.fromQueries(['query Me { me { id } }'])
 * ops.has(PersistedOperations.hash('query Me { me { id } }')) // true
 * ```
 */
export class PersistedOperations {
  readonly #byHash: ReadonlyMap<string, string>

  constructor(manifest: Readonly<Record<string, string>> | ReadonlyMap<string, string>) {
    const entries =
      manifest instanceof Map
        ? [...(manifest as ReadonlyMap<string, string>)]
        : Object.entries(manifest as Readonly<Record<string, string>>)
    const issues: { path: PropertyKey[]; message: string }[] = []
    const byHash = new Map<string, string>()
    for (const [hash, query] of entries) {
      if (typeof query !== 'string' || query === '') {
        issues.push({ path: ['manifest', hash], message: 'must be a non-empty query string' })
      } else if (!SHA256_HEX.test(hash)) {
        issues.push({ path: ['manifest', hash], message: 'key must be a lowercase hex SHA-256' })
      } else if (PersistedOperations.hash(query) !== hash) {
        issues.push({
          path: ['manifest', hash],
          message: 'key is not the SHA-256 of its query (UTF-8 text, as sent)',
        })
      } else {
        byHash.set(hash, query)
      }
    }
    if (issues.length > 0) throw new ConfigError('PersistedOperations', issues)
    this.#byHash = byHash
  }

  /** A manifest of these queries, each under its own hash. */
  static fromQueries(queries: Iterable<string>): PersistedOperations {
    const manifest = new Map<string, string>()
    for (const q of queries) manifest.set(PersistedOperations.hash(q), q)
    return new PersistedOperations(manifest)
  }

  /** Lowercase hex SHA-256 of the query's UTF-8 text: the APQ `sha256Hash`. */
  static hash(query: string): string {
    return createHash('sha256').update(query, 'utf8').digest('hex')
  }

  /** Whether the manifest holds this hash. */
  has(hash: string): boolean {
    return this.#byHash.has(hash)
  }

  /** The query of a hash, if the manifest holds it. */
  get(hash: string): string | undefined {
    return this.#byHash.get(hash)
  }

  /** Whether this exact query text is in the manifest. */
  hasQuery(query: string): boolean {
    return this.#byHash.has(PersistedOperations.hash(query))
  }

  /** Number of operations. */
  get size(): number {
    return this.#byHash.size
  }
}

/** The request fields mercurius hands the persisted-query provider. */
export interface PersistedQueryRequest {
  readonly query?: unknown
  readonly persisted?: unknown
  readonly extensions?: unknown
}

/** mercurius's `persistedQueryProvider` contract. */
export interface PersistedQueryProvider {
  isPersistedQuery(request: PersistedQueryRequest): boolean
  isPersistedQueryRetry(request: PersistedQueryRequest): boolean
  getHash(request: PersistedQueryRequest): string
  getQueryFromHash(hash: string): Promise<string | undefined>
  getHashForQuery?: (query: string) => string
  saveQuery?: (hash: string, query: string) => Promise<void>
}

export interface PersistedQueryOptions {
  /**
   * Run only manifest operations: a full query is accepted only if its hash
   * is in the manifest, and APQ registration of a new one is refused.
   * @default true
   */
  readonly required?: boolean
  /**
   * With `required: false`, queries registered through APQ are kept in a
   * cache of this many entries (least recently used dropped first; at most
   * {@link APQ_CACHE_CHARS} characters in all). 0 keeps none.
   * @default 1024
   */
  readonly apqCacheSize?: number
}

/** Total characters of registered queries kept, whatever their number: client text is unbounded. */
export const APQ_CACHE_CHARS = 8 * 1024 * 1024

/** A least-recently-used map bounded in entries and in characters. */
class QueryCache {
  readonly #map = new Map<string, string>()
  #chars = 0

  constructor(readonly maxEntries: number) {}

  get(hash: string): string | undefined {
    const query = this.#map.get(hash)
    if (query !== undefined) {
      this.#map.delete(hash)
      this.#map.set(hash, query)
    }
    return query
  }

  set(hash: string, query: string): void {
    if (this.maxEntries === 0 || query.length > APQ_CACHE_CHARS || this.#map.has(hash)) return
    this.#map.set(hash, query)
    this.#chars += query.length
    while (this.#map.size > this.maxEntries || this.#chars > APQ_CACHE_CHARS) {
      const [oldest, text] = this.#map.entries().next().value as [string, string]
      this.#map.delete(oldest)
      this.#chars -= text.length
    }
  }
}

/** `extensions.persistedQuery` of a request: its hash, `false` for an unsupported version, `undefined` when absent. */
function apqHash(request: PersistedQueryRequest): string | false | undefined {
  const ext = request.extensions
  if (typeof ext !== 'object' || ext === null) return undefined
  const pq = (ext as { persistedQuery?: unknown }).persistedQuery
  if (typeof pq !== 'object' || pq === null) return undefined
  const { version, sha256Hash } = pq as { version?: unknown; sha256Hash?: unknown }
  return version === 1 && typeof sha256Hash === 'string' ? sha256Hash : false
}

const queryOf = (request: PersistedQueryRequest): string | undefined =>
  typeof request.query === 'string' && request.query !== '' ? request.query : undefined

/** {@link mercuriusPersistedQueryOptions} with graphql-js already loaded. */
export function persistedQueryProviderFor(
  runtime: GraphqlRuntime,
  ops: PersistedOperations,
  options: PersistedQueryOptions = {},
): PersistedQueryProvider {
  const refuse = (
    code:
      | 'ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND'
      | 'ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED'
      | 'ERR_GRAPHQL_PERSISTED_QUERY_REGISTRATION_REFUSED'
      | 'ERR_GRAPHQL_PERSISTED_QUERY_MISMATCH',
    message: string,
  ): never => {
    throw new GraphqlRejectedError([rejection(runtime, code, message)])
  }
  // APQ clients (Apollo's link) retry with the full query when the message
  // is exactly this: keep it, the code says the rest.
  const notFound = () => refuse('ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND', 'PersistedQueryNotFound')
  const unsupported = () =>
    refuse('ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND', 'PersistedQueryNotSupported')
  const mismatch = () =>
    refuse('ERR_GRAPHQL_PERSISTED_QUERY_MISMATCH', 'Persisted query hash does not match the query.')

  if (options.required ?? true) {
    // Every request goes through the hash path, so mercurius never runs a
    // query that did not come out of the manifest.
    return {
      isPersistedQuery: () => true,
      isPersistedQueryRetry: () => false,
      getHash(request) {
        // mercurius's own format: `{ persisted: true, query: <hash> }`.
        if (request.persisted === true) {
          const hash = queryOf(request)
          return hash !== undefined && ops.has(hash) ? hash : notFound()
        }
        const apq = apqHash(request)
        const query = queryOf(request)
        if (apq === false) return unsupported()
        if (apq !== undefined) {
          if (!ops.has(apq)) {
            // A hash with its query is an APQ registration: not in this mode.
            return query === undefined
              ? notFound()
              : refuse(
                  'ERR_GRAPHQL_PERSISTED_QUERY_REGISTRATION_REFUSED',
                  'Registering new persisted operations is not allowed.',
                )
          }
          if (query !== undefined && PersistedOperations.hash(query) !== apq) return mismatch()
          return apq
        }
        if (query !== undefined) {
          const hash = PersistedOperations.hash(query)
          if (ops.has(hash)) return hash
        }
        return refuse(
          'ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED',
          'Only persisted operations are allowed.',
        )
      },
      getQueryFromHash: async (hash) => ops.get(hash) ?? notFound(),
    }
  }

  const cache = new QueryCache(options.apqCacheSize ?? 1024)
  return {
    isPersistedQuery: (request) =>
      request.persisted === true ||
      (apqHash(request) !== undefined && queryOf(request) === undefined),
    isPersistedQueryRetry: (request) =>
      apqHash(request) !== undefined && queryOf(request) !== undefined,
    getHash(request) {
      if (request.persisted === true) return queryOf(request) ?? notFound()
      const apq = apqHash(request)
      if (apq === undefined || apq === false) return unsupported()
      const query = queryOf(request)
      // Checked here so the refusal carries our code (mercurius checks again).
      if (query !== undefined && PersistedOperations.hash(query) !== apq) return mismatch()
      return apq
    },
    getQueryFromHash: async (hash) => ops.get(hash) ?? cache.get(hash) ?? notFound(),
    getHashForQuery: (query) => PersistedOperations.hash(query),
    // mercurius saves only after the query ran, so only valid queries are kept.
    saveQuery: async (hash, query) => {
      if (!ops.has(hash)) cache.set(hash, query)
    },
  }
}

/**
 * The mercurius options that serve persisted operations from a manifest,
 * APQ-compatible: `extensions.persistedQuery.sha256Hash` (version 1) and
 * mercurius's `{ persisted: true, query: <hash> }` both look up the
 * manifest. With `required` (the default) only manifest operations run: a
 * full query is accepted only if its hash is in the manifest, and APQ
 * registration of a new one is refused with
 * `ERR_GRAPHQL_PERSISTED_QUERY_REGISTRATION_REFUSED`. Without it, any query
 * runs and APQ registrations are kept in a bounded cache.
 *
 * @example
 * ```ts
 * const ops = new PersistedOperations(manifest)
 * await app.register(mercurius, { schema, resolvers, ...mercuriusPersistedQueryOptions(ops, { required: true }) })
 * ```
 */
export function mercuriusPersistedQueryOptions(
  ops: PersistedOperations,
  options: PersistedQueryOptions = {},
): { persistedQueryProvider: PersistedQueryProvider } {
  const runtime = graphqlRuntime('mercuriusPersistedQueryOptions')
  return { persistedQueryProvider: persistedQueryProviderFor(runtime, ops, options) }
}
