import { createHash } from 'node:crypto'
import { type Kysely, sql } from 'kysely'
import { z } from 'zod'
import { describeError, type Logger, stderrLogger } from '../internal/logger.js'
import { LoggerOptionSchema, parseOptions } from '../internal/options.js'
import { openSqlDatabase } from '../internal/sql/database.js'
import { quoteIdent, SqlIdentifierSchema } from '../internal/sql/identifiers.js'
import { refinePgStoreOptions } from '../internal/sql/options.js'
import { type PgPoolLike, PgPoolSchema, watchBorrowedPool } from '../internal/sql/postgres.js'
import { databaseUrlSchema } from '../internal/sql/url.js'
import { type ApiKeysDb, KEY_COLUMNS, type KeyRowDb, SqlApiKeyStore, toRow } from './sql.js'
import type { ApiKeyChange, ApiKeyRow } from './store.js'

/** The channel every API-key store notifies on; payloads name their schema. */
export const API_KEY_CHANNEL = 'fraiseql_api_keys'

/**
 * Options of {@link PostgresApiKeyStore}: a borrowed `pool` or a
 * `connectionString`, and the schema of the tables.
 *
 * @example
 * ```ts
 * PostgresApiKeyStoreOptionsSchema.parse({ connectionString: process.env.DATABASE_URL, schema: 'security' })
 * ```
 */
export const PostgresApiKeyStoreOptionsSchema = z
  .object({
    /** A `pg.Pool` to borrow; the store never ends it. Give this or `connectionString`. */
    pool: PgPoolSchema.optional(),
    /** `postgres://` URL: the store opens its own pool (needs `pg`) and ends it in `close()`. */
    connectionString: databaseUrlSchema('postgres').optional(),
    /**
     * Schema of the tables (`migrate()` creates it if missing).
     * @default 'public'
     */
    schema: SqlIdentifierSchema.default('public'),
    /**
     * First delay before re-opening a lost `LISTEN` connection (doubles, up to 30 s).
     * @default 1000
     */
    reconnectDelayMs: z.number().int().min(1).max(60_000).default(1000),
    /** Where connection failures (the pool's idle connections, owned or borrowed, and LISTEN) are logged. @default stderr */
    logger: LoggerOptionSchema.optional(),
  })
  .strict()
  .superRefine(refinePgStoreOptions)

export type PostgresApiKeyStoreOptions = z.input<typeof PostgresApiKeyStoreOptionsSchema>

/** What LISTEN needs of a checked-out pg client. */
interface ListenClient {
  query(text: string): Promise<unknown>
  on(event: 'notification', listener: (msg: { channel: string; payload?: string }) => void): unknown
  on(event: 'error' | 'end', listener: (err?: Error) => void): unknown
  removeListener(event: string, listener: (...args: never[]) => void): unknown
  release(err?: boolean | Error): void
}

/**
 * API keys in PostgreSQL: what several processes sharing one database use.
 * Creation, rotation and revocation send `NOTIFY` in their transaction, and
 * every store that {@link subscribe}s holds one `LISTEN` connection, so a
 * revoked key leaves every process's cache as soon as the commit is
 * delivered, not after a TTL. Nothing is imported or connected until the
 * first call.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { ApiKeyManager, PostgresApiKeyStore } from 'fraiseql-security/api-keys'
 * const store = new PostgresApiKeyStore({ pool: new pg.Pool(), schema: 'security' })
 * const keys = new ApiKeyManager({ store, keyManager })
 * ```
 */
export class PostgresApiKeyStore extends SqlApiKeyStore {
  readonly #schema: string
  readonly #logger: Logger
  readonly #reconnectDelayMs: number
  /** The cache-miss read as a named prepared statement: parsed and planned once per connection. */
  readonly #getKey: { name: string; text: string }

  constructor(options: PostgresApiKeyStoreOptions) {
    const o = parseOptions('PostgresApiKeyStore', PostgresApiKeyStoreOptionsSchema, options)
    // At once, not at the first call: the caller's pool may already hold idle clients.
    if (o.pool !== undefined) watchBorrowedPool(o.pool, o.logger ?? stderrLogger)
    super({
      dialect: 'postgres',
      chainLock: `fraiseql_api_key_audit:${o.schema}`,
      pollIntervalMs: 1000,
      open: () =>
        openSqlDatabase('PostgresApiKeyStore', {
          ...(o.pool === undefined ? { location: o.connectionString! } : { pool: o.pool }),
          schema: o.schema,
          ...(o.logger === undefined ? {} : { logger: o.logger }),
        }),
    })
    this.#schema = o.schema
    this.#logger = o.logger ?? stderrLogger
    this.#reconnectDelayMs = o.reconnectDelayMs
    const columns = KEY_COLUMNS.map(quoteIdent).join(', ')
    this.#getKey = {
      // Statement names are per connection; the schema is part of the text,
      // so of the name (hashed: a schema name may take all 63 characters).
      name: `fraiseql_api_key_get_${createHash('sha256').update(o.schema).digest('hex').slice(0, 16)}`,
      text: `select ${columns} from ${quoteIdent(o.schema)}."api_keys" where "key_id" = $1`,
    }
  }

  /**
   * The one read of a cache miss, bypassing the query builder: a named
   * statement, so PostgreSQL parses and plans it once per connection.
   */
  override async getKey(keyId: string): Promise<ApiKeyRow | undefined> {
    const { rows } = await this.op('read a key', (h) =>
      (h.pgPool as PgPoolLike).query({ ...this.#getKey, values: [keyId] }),
    )
    const row = rows[0] as KeyRowDb | undefined
    return row === undefined ? undefined : toRow(row)
  }

  protected override async notify(
    trx: Kysely<ApiKeysDb>,
    changes: readonly ApiKeyChange[],
  ): Promise<void> {
    for (const c of changes) {
      const payload = JSON.stringify({ s: this.#schema, e: c.event, k: c.keyId })
      await sql`select pg_notify(${API_KEY_CHANNEL}, ${payload})`.execute(trx)
    }
  }

  /**
   * Holds one connection in `LISTEN`. When it is lost, `onReset` fires (a
   * notification may have been missed) and the connection is reopened with
   * a doubling delay.
   */
  override async subscribe(
    onChange: (change: ApiKeyChange) => void,
    onReset: () => void,
  ): Promise<() => Promise<void>> {
    const pool = await this.op('listen for changes', async (h) => h.pgPool as PgPoolLike)
    let client: ListenClient | undefined
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    let delay = this.#reconnectDelayMs

    const onNotification = (msg: { channel: string; payload?: string }) => {
      if (msg.channel !== API_KEY_CHANNEL || msg.payload === undefined) return
      let data: { s?: unknown; e?: unknown; k?: unknown }
      try {
        data = JSON.parse(msg.payload) as typeof data
      } catch {
        return
      }
      if (data.s !== this.#schema) return
      if (
        data.e !== 'created' &&
        data.e !== 'rotated' &&
        data.e !== 'revoked' &&
        data.e !== 'pepper'
      )
        return
      onChange({ event: data.e, keyId: typeof data.k === 'string' ? data.k : null })
    }

    /** The live connection and how to let go of it exactly once. */
    let release: ((err?: Error | boolean) => void) | undefined

    const connect = async (): Promise<void> => {
      const c = (await pool.connect()) as unknown as ListenClient
      let released = false
      const letGo = (err?: Error | boolean) => {
        if (released) return false
        released = true
        c.removeListener('notification', onNotification)
        c.removeListener('error', onLost)
        c.removeListener('end', onLost)
        if (release === letGo) {
          release = undefined
          client = undefined
        }
        c.release(err)
        return true
      }
      const onLost = (err?: Error) => {
        if (!letGo(err ?? true) || stopped) return
        this.#logger.warn(
          { err: err === undefined ? undefined : describeError(err) },
          'API-key LISTEN connection lost; caches are cleared and it reconnects',
        )
        onReset()
        schedule()
      }
      c.on('notification', onNotification)
      c.on('error', onLost)
      c.on('end', onLost)
      try {
        await c.query(`LISTEN ${API_KEY_CHANNEL}`)
      } catch (err) {
        letGo(err as Error)
        throw err
      }
      client = c
      release = letGo
      delay = this.#reconnectDelayMs
    }

    const schedule = () => {
      if (stopped || timer !== undefined) return
      timer = setTimeout(() => {
        timer = undefined
        connect().then(
          // Whatever happened while disconnected is unknown: start clean.
          () => onReset(),
          () => {
            delay = Math.min(30_000, delay * 2)
            schedule()
          },
        )
      }, delay)
      timer.unref?.()
    }

    await this.op('listen for changes', () => connect())
    const stop = async () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      const c = client
      const letGo = release
      if (c === undefined || letGo === undefined) return
      try {
        await c.query(`UNLISTEN ${API_KEY_CHANNEL}`)
        letGo()
      } catch {
        letGo(true)
      }
    }
    this.registerUnsubscriber(stop)
    return stop
  }
}
