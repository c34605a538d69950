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
import { type RateLimitPolicy, toPolicyState } from '../sliding-window.js'
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

/**
 * The columns 0004 adds: what the last call decided, kept in the row so the
 * one-policy statement can hand it back through `RETURNING` (which sees only
 * the row it wrote). Constant defaults: PostgreSQL adds them without
 * rewriting the table, and a consume function of an older version, which
 * names its columns, keeps inserting.
 */
function decisionColumnsDdl(schema: string): string {
  return `ALTER TABLE ${quoteIdent(schema)}.${TABLE}
      ADD COLUMN IF NOT EXISTS last_elapsed bigint NOT NULL DEFAULT 0,
      ADD COLUMN IF NOT EXISTS last_allowed boolean NOT NULL DEFAULT true`
}

/** PostgreSQL's clock in ms, as the consume function reads it, unless the caller's time (`$5`) is given. */
const NOW_MS = 'COALESCE($5::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)'

/**
 * The one-policy consume: the same decision as the consume function, as one
 * `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` (no PL/pgSQL call, no
 * second statement). Parameters: key, max, windowMs, weight, caller's time.
 *
 * The update's values come from one sub-select, evaluated once the conflict
 * has locked the row and on its latest version: the clock is read there (a
 * call that waited on the lock across a window edge decides in the newer
 * window), and read once, so every column agrees on it. As in the function,
 * a row never moves back to an older window. Concurrent calls for
 * one key serialize on that lock. A refused call still moves the row to the
 * current window (an uncharged move: the next call would make the same one)
 * and records the refusal in `last_allowed`.
 */
function consumeStatementText(schema: string): string {
  const t = `${quoteIdent(schema)}.${TABLE}`
  const expiry = (elapsed: string) =>
    `clock_timestamp() + make_interval(secs => (2 * $3::bigint - ${elapsed}) / 1000.0)`
  return `INSERT INTO ${t} AS t (key, window_index, curr, prev, expires_at, last_elapsed, last_allowed)
SELECT $1::text, n.x, CASE WHEN n.ok THEN $4::bigint ELSE 0 END, 0, ${expiry('n.e')}, n.e, n.ok
  FROM (SELECT a.v / $3::bigint AS x, a.v % $3::bigint AS e, $4::bigint <= $2::bigint AS ok
          FROM (SELECT ${NOW_MS} AS v) a) n
ON CONFLICT (key) DO UPDATE SET (window_index, curr, prev, expires_at, last_elapsed, last_allowed) = (
  SELECT d.x, CASE WHEN d.ok THEN d.cur + $4::bigint ELSE d.cur END, d.prv,
         CASE WHEN t.window_index = d.x THEN t.expires_at ELSE ${expiry('d.e')} END,
         d.e, d.ok
    FROM (SELECT c.x, c.e, c.cur, c.prv,
                 c.prv * ($3::bigint - c.e) + (c.cur + $4::bigint) * $3::bigint <= $2::bigint * $3::bigint AS ok
            FROM (SELECT b.x, b.e,
                         CASE WHEN t.window_index = b.x THEN t.curr ELSE 0 END AS cur,
                         CASE WHEN t.window_index = b.x THEN t.prev
                              WHEN t.window_index = b.x - 1 THEN t.curr ELSE 0 END AS prv
                    FROM (SELECT greatest(t.window_index, a.v / $3::bigint) AS x,
                                 CASE WHEN t.window_index > a.v / $3::bigint THEN 0 ELSE a.v % $3::bigint END AS e
                            FROM (SELECT ${NOW_MS} AS v) a) b) c) d)
RETURNING t.last_allowed, t.prev, t.curr, t.last_elapsed, t.window_index`
}

/** A prepared statement named after a digest of its text (which names the schema). */
function namedStatement(prefix: string, text: string): { name: string; text: string } {
  return { name: `${prefix}_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text }
}

interface SingleConsumeRow {
  last_allowed: boolean
  prev: string | number
  curr: string | number
  last_elapsed: string | number
  window_index: string | number
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
 * PostgreSQL store: exactly one statement per request, which upserts, locks,
 * checks and charges atomically (with one policy a plain `INSERT ... ON
 * CONFLICT DO UPDATE`; with several a call to a PL/pgSQL function), its table
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
  readonly #singleStatement: { name: string; text: string }
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
    // A named statement is parsed and planned once per connection. Its name
    // follows from its text: node-postgres refuses a name a connection has
    // prepared with another text, and a pool can be shared with another
    // version of this package whose statement differs (0003 added `win`).
    const q = quoteIdent(o.schema)
    this.#statement = namedStatement(
      'fsrl_consume',
      `SELECT allowed, policy_ok, prev, curr, elapsed, win FROM ${q}.${FUNCTION}($1::text[], $2::bigint[], $3::bigint[], $4::bigint, $5::bigint)`,
    )
    this.#singleStatement = namedStatement('fsrl_consume1', consumeStatementText(o.schema))
    this.#refundStatement = namedStatement(
      'fsrl_refund',
      `SELECT ${q}.${REFUND_FUNCTION}($1::text[], $2::bigint[], $3::bigint)`,
    )
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
    const columns = decisionColumnsDdl(this.#schema)
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
        // The columns the one-policy statement returns its decision in. The
        // consume function stays, for requests with several policies.
        '0004_single_policy_statement': {
          async up(db) {
            await sql.raw(columns).execute(db)
          },
        },
      },
    })
  }

  async consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]> {
    const { policies, weight } = request
    if (policies.length === 1) return this.#consumeOne(key, policies[0]!, request)
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

  /** The common case, one policy: one plain statement, scalar parameters, no function call. */
  async #consumeOne(
    key: string,
    policy: RateLimitPolicy,
    request: ConsumeRequest,
  ): Promise<readonly PolicyState[]> {
    const { weight } = request
    const { rows } = await this.#pool.query({
      name: this.#singleStatement.name,
      text: this.#singleStatement.text,
      values: [
        `${policy.name}:${key}`,
        policy.max,
        policy.windowMs,
        weight,
        this.#callerTime ? request.now : null,
      ],
    })
    const row = rows[0] as SingleConsumeRow | undefined
    if (row === undefined || rows.length !== 1)
      throw new TypeError('unexpected reply from the rate-limit statement')
    return [
      toPolicyState(
        policy,
        {
          previous: Number(row.prev),
          current: Number(row.curr),
          elapsedMs: Number(row.last_elapsed),
          window: Number(row.window_index),
        },
        row.last_allowed,
        weight,
      ),
    ]
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
