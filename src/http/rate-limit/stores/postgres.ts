import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { z } from 'zod'
import { describeError, type Logger, stderrLogger } from '../../../internal/logger.js'
import { LoggerOptionSchema, parseOptions } from '../../../internal/options.js'
import {
  migratePostgres,
  type PgPoolLike,
  PgPoolSchema,
  quoteIdent,
  SqlIdentifierSchema,
  watchBorrowedPool,
} from '../../../internal/sql/postgres.js'
import type { PolicyState } from '../../errors.js'
import { toPolicyState } from '../sliding-window.js'
import type { ConsumeRequest, RateLimitStore, RefundRequest } from '../store.js'

export const PostgresStoreOptionsSchema = z
  .object({
    /** A `pg.Pool`. Never ended by the store. */
    pool: PgPoolSchema,
    /**
     * Schema of the counters table and its consume function.
     * @default 'public'
     */
    schema: SqlIdentifierSchema.default('public'),
    /**
     * `server` uses PostgreSQL's clock so instances with skewed clocks agree;
     * `caller` uses the `now` passed in (tests with an injected clock).
     * @default 'server'
     */
    timeSource: z.enum(['server', 'caller']).default('server'),
    /**
     * How often expired counters are deleted, in ms; `0` disables (call `prune()`
     * yourself). The timer never keeps the process alive.
     * @default 60000
     */
    pruneIntervalMs: z.number().int().min(0).max(86_400_000).default(60_000),
    /**
     * Keep counters in a WAL-logged table. The default UNLOGGED table is
     * several times cheaper to write and loses its rows only on a PostgreSQL
     * crash (counters restart at zero, as after a Redis restart); it is not
     * replicated to standbys. Applies when `migrate()` creates the table.
     * @default false
     */
    durable: z.boolean().default(false),
    /** Where prune failures and the pool's idle-connection errors are logged. @default stderr */
    logger: LoggerOptionSchema.optional(),
  })
  .strict()

export type PostgresStoreOptions = z.input<typeof PostgresStoreOptionsSchema>

const TABLE = 'fraiseql_rate_limit'
const FUNCTION = 'fraiseql_rate_limit_consume'
const REFUND_FUNCTION = 'fraiseql_rate_limit_refund'

/** The counters table and its expiry index. */
function tableDdl(schema: string, durable: boolean): string[] {
  const s = quoteIdent(schema)
  // Counters are ephemeral: an UNLOGGED table skips the WAL (and with it the
  // commit flush), at the price of an empty table after a PostgreSQL crash.
  // Free room in each page (fillfactor) lets a count update stay on its page
  // (HOT) instead of writing both indexes again.
  const unlogged = durable ? '' : 'UNLOGGED '
  return [
    `CREATE ${unlogged}TABLE IF NOT EXISTS ${s}.${TABLE} (
      key          text PRIMARY KEY,
      window_index bigint NOT NULL,
      curr         bigint NOT NULL,
      prev         bigint NOT NULL,
      expires_at   timestamptz NOT NULL
    ) WITH (fillfactor = 70)`,
    `CREATE INDEX IF NOT EXISTS ${TABLE}_expires_at ON ${s}.${TABLE} (expires_at)`,
  ]
}

/**
 * The function that checks and charges every policy of a request in one
 * statement. Rows are created (`ON CONFLICT DO NOTHING`) and locked in key
 * order, so concurrent requests for the same client serialize without
 * deadlocks. The integer comparison mirrors `fits()`.
 */
function consumeFunctionDdl(schema: string): string {
  const s = quoteIdent(schema)
  return (
    // Steady state is two statements inside the function: one SELECT ... FOR
    // UPDATE of every policy row (in key order, so concurrent requests never
    // deadlock) and, when allowed, one UPDATE of all of them. Missing rows are
    // inserted first (ON CONFLICT DO NOTHING) and the lock taken again.
    `CREATE OR REPLACE FUNCTION ${s}.${FUNCTION}(
       p_keys text[], p_max bigint[], p_window bigint[], p_weight bigint, p_now bigint)
     RETURNS TABLE (allowed boolean, policy_ok boolean, prev bigint, curr bigint, elapsed bigint, win bigint)
     LANGUAGE plpgsql AS $fn$
     DECLARE
       v_now bigint;
       n int := coalesce(array_length(p_keys, 1), 0);
       v_idx bigint[] := array_fill(0::bigint, ARRAY[n]);
       v_el bigint[] := array_fill(0::bigint, ARRAY[n]);
       v_cur bigint[] := array_fill(0::bigint, ARRAY[n]);
       v_prev bigint[] := array_fill(0::bigint, ARRAY[n]);
       v_row_idx bigint[] := array_fill(NULL::bigint, ARRAY[n]);
       v_row_cur bigint[] := array_fill(0::bigint, ARRAY[n]);
       v_row_prev bigint[] := array_fill(0::bigint, ARRAY[n]);
       v_ok boolean[] := array_fill(true, ARRAY[n]);
       v_all boolean := true;
       found_rows int := 0;
       r record; i int; w bigint; x bigint; e bigint;
     BEGIN
       FOR attempt IN 1..2 LOOP
         found_rows := 0;
         FOR r IN SELECT t.key, t.window_index, t.curr, t.prev FROM ${s}.${TABLE} t
                   WHERE t.key = ANY (p_keys) ORDER BY t.key FOR UPDATE LOOP
           i := array_position(p_keys, r.key);
           v_row_idx[i] := r.window_index; v_row_cur[i] := r.curr; v_row_prev[i] := r.prev;
           found_rows := found_rows + 1;
         END LOOP;
         EXIT WHEN found_rows = n OR attempt = 2;
         INSERT INTO ${s}.${TABLE} (key, window_index, curr, prev, expires_at)
           SELECT k, -1, 0, 0, clock_timestamp() FROM unnest(p_keys) AS k ORDER BY k
           ON CONFLICT (key) DO NOTHING;
       END LOOP;
       -- The time is read once every row is locked: read before, a call that
       -- waited on the lock while the window turned would decide in the
       -- older window and write it back over the newer one.
       v_now := COALESCE(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint);
       FOR i IN 1..n LOOP
         w := p_window[i];
         x := v_now / w;
         e := v_now - x * w;
         -- A row never moves back to an older window (a caller's clock read
         -- before the call, another instance's clock behind ours): such a
         -- call counts at the start of the row's window.
         IF v_row_idx[i] > x THEN x := v_row_idx[i]; e := 0; END IF;
         v_idx[i] := x; v_el[i] := e;
         IF v_row_idx[i] = x THEN v_cur[i] := v_row_cur[i]; v_prev[i] := v_row_prev[i];
         ELSIF v_row_idx[i] = x - 1 THEN v_cur[i] := 0; v_prev[i] := v_row_cur[i];
         END IF;
         v_ok[i] := v_prev[i] * (w - e) + (v_cur[i] + p_weight) * w <= p_max[i] * w;
         IF NOT v_ok[i] THEN v_all := false; END IF;
       END LOOP;
       IF v_all THEN
         FOR i IN 1..n LOOP v_cur[i] := v_cur[i] + p_weight; END LOOP;
         -- The expiry (an indexed column) changes only with the window: the
         -- end of the next window whatever the elapsed time. Later charges
         -- in a window change curr alone, a HOT update with no index write.
         UPDATE ${s}.${TABLE} t
            SET window_index = u.idx, curr = u.cur, prev = u.prv,
                expires_at = CASE WHEN t.window_index = u.idx THEN t.expires_at
                  ELSE clock_timestamp() + make_interval(secs => (2 * u.w - u.el) / 1000.0) END
           FROM unnest(p_keys, v_idx, v_cur, v_prev, p_window, v_el) AS u(key, idx, cur, prv, w, el)
          WHERE t.key = u.key;
       END IF;
       RETURN QUERY SELECT v_all, u.ok, u.prv, u.cur, u.el, u.idx
         FROM unnest(v_ok, v_prev, v_cur, v_el, v_idx) WITH ORDINALITY AS u(ok, prv, cur, el, idx, ord) ORDER BY u.ord;
     END
     $fn$`
  )
}

/**
 * The function that takes back a charge (`skipSuccessfulRequests` /
 * `skipFailedRequests`): the rows are locked in key order first, as the
 * consume function locks them, so a refund and a charge of one client never
 * deadlock. A row still in the charge's window gives it back from `curr`, a
 * row one window on from `prev` (where that window's count now is), any
 * other row not at all; never below zero, and neither the window nor the
 * expiry moves.
 */
function refundFunctionDdl(schema: string): string {
  const s = quoteIdent(schema)
  return `CREATE OR REPLACE FUNCTION ${s}.${REFUND_FUNCTION}(
       p_keys text[], p_window bigint[], p_weight bigint)
     RETURNS void
     LANGUAGE plpgsql AS $fn$
     BEGIN
       PERFORM 1 FROM ${s}.${TABLE} t WHERE t.key = ANY (p_keys) ORDER BY t.key FOR UPDATE;
       UPDATE ${s}.${TABLE} t
          SET curr = CASE WHEN t.window_index = u.idx THEN greatest(0, t.curr - p_weight) ELSE t.curr END,
              prev = CASE WHEN t.window_index = u.idx + 1 THEN greatest(0, t.prev - p_weight) ELSE t.prev END
         FROM unnest(p_keys, p_window) AS u(key, idx)
        WHERE t.key = u.key AND t.window_index IN (u.idx, u.idx + 1);
     END
     $fn$`
}

interface ConsumeRow {
  allowed: boolean
  policy_ok: boolean
  prev: string | number
  curr: string | number
  elapsed: string | number
  win: string | number
}

/**
 * PostgreSQL store: exactly one statement per request (a call to a PL/pgSQL
 * function that upserts, locks, checks and charges atomically), its table
 * created by `migrate()`, expired rows pruned in the background.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { PostgresStore, rateLimit } from 'fraiseql-security/http'
 * const store = new PostgresStore({ pool: new pg.Pool({ connectionString: process.env.DATABASE_URL }) })
 * await store.migrate()
 * await app.register(rateLimit, { store })
 * ```
 */
export class PostgresStore implements RateLimitStore {
  readonly #pool: PgPoolLike
  readonly #schema: string
  readonly #callerTime: boolean
  readonly #statement: { name: string; text: string }
  readonly #refundStatement: { name: string; text: string }
  readonly #logger: Logger
  readonly #durable: boolean
  #pruneTimer: NodeJS.Timeout | undefined

  constructor(options: PostgresStoreOptions) {
    const o = parseOptions('PostgresStore', PostgresStoreOptionsSchema, options)
    this.#pool = o.pool
    this.#schema = o.schema
    this.#callerTime = o.timeSource === 'caller'
    this.#logger = o.logger ?? stderrLogger
    // Without it, a PostgreSQL restart killed the process with the pool's
    // unhandled 'error' before the insurance store could answer.
    watchBorrowedPool(o.pool, this.#logger)
    this.#durable = o.durable
    // A named statement is parsed and planned once per connection.
    const schemaId = createHash('sha256').update(o.schema).digest('hex').slice(0, 16)
    this.#statement = {
      name: `fsrl_consume_${schemaId}`,
      text: `SELECT allowed, policy_ok, prev, curr, elapsed, win FROM ${quoteIdent(o.schema)}.${FUNCTION}($1::text[], $2::bigint[], $3::bigint[], $4::bigint, $5::bigint)`,
    }
    this.#refundStatement = {
      name: `fsrl_refund_${schemaId}`,
      text: `SELECT ${quoteIdent(o.schema)}.${REFUND_FUNCTION}($1::text[], $2::bigint[], $3::bigint)`,
    }
    if (o.pruneIntervalMs > 0) {
      this.#pruneTimer = setInterval(() => {
        this.prune().catch((err: unknown) =>
          this.#logger.warn({ err: describeError(err) }, 'rate-limit prune failed'),
        )
      }, o.pruneIntervalMs)
      this.#pruneTimer.unref()
    }
  }

  /** Creates or upgrades the table and function (idempotent, advisory-locked). */
  async migrate(): Promise<void> {
    const table = tableDdl(this.#schema, this.#durable)
    const consume = consumeFunctionDdl(this.#schema)
    const refund = refundFunctionDdl(this.#schema)
    const s = quoteIdent(this.#schema)
    await migratePostgres(this.#pool, {
      schema: this.#schema,
      migrationTable: 'fraiseql_rate_limit_migrations',
      migrations: {
        // Databases migrated before 0002 got the first consume function here too.
        '0001_counters': {
          async up(db) {
            for (const text of table) await sql.raw(text).execute(db)
          },
        },
        // The consume function that reads the time after the row locks and
        // never moves a row back to an older window (CREATE OR REPLACE).
        '0002_consume_after_lock': {
          async up(db) {
            await sql.raw(consume).execute(db)
          },
        },
        // The consume function also returns each policy's window (its reply
        // type changes, which CREATE OR REPLACE cannot do), and the refund
        // function behind skipSuccessfulRequests / skipFailedRequests.
        '0003_refund': {
          async up(db) {
            await sql
              .raw(
                `DROP FUNCTION IF EXISTS ${s}.${FUNCTION}(text[], bigint[], bigint[], bigint, bigint)`,
              )
              .execute(db)
            await sql.raw(consume).execute(db)
            await sql.raw(refund).execute(db)
          },
        },
      },
    })
  }

  async consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]> {
    const { policies, weight } = request
    const keys = policies.map((p) => `${p.name}:${key}`)
    const { rows } = await this.#pool.query({
      ...this.#statement,
      values: [
        keys,
        policies.map((p) => p.max),
        policies.map((p) => p.windowMs),
        weight,
        this.#callerTime ? request.now : null,
      ],
    })
    if (rows.length !== policies.length)
      throw new TypeError('unexpected reply from the rate-limit function')
    return (rows as ConsumeRow[]).map((row, i) =>
      toPolicyState(
        policies[i]!,
        {
          previous: Number(row.prev),
          current: Number(row.curr),
          elapsedMs: Number(row.elapsed),
          window: Number(row.win),
        },
        row.policy_ok,
        weight,
      ),
    )
  }

  /** One statement: a call to the refund function, which locks and updates every policy row. */
  async refund(key: string, request: RefundRequest): Promise<void> {
    const { policies, weight, windows } = request
    if (!(weight > 0)) return
    if (windows.length !== policies.length)
      throw new TypeError('refund needs one window per policy')
    await this.#pool.query({
      ...this.#refundStatement,
      values: [policies.map((p) => `${p.name}:${key}`), windows, weight],
    })
  }

  /** Deletes counters whose windows have both passed. Returns how many. */
  async prune(): Promise<number> {
    const { rows } = await this.#pool.query({
      text: `WITH gone AS (DELETE FROM ${quoteIdent(this.#schema)}.${TABLE} WHERE expires_at < clock_timestamp() RETURNING 1) SELECT count(*)::int AS n FROM gone`,
    })
    return (rows[0] as { n: number } | undefined)?.n ?? 0
  }

  /** Stops the prune timer. The pool stays open: it belongs to the caller. */
  async close(): Promise<void> {
    if (this.#pruneTimer !== undefined) clearInterval(this.#pruneTimer)
    this.#pruneTimer = undefined
  }
}
