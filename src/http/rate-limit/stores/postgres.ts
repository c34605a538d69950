import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { z } from 'zod'
import { describeError, type Logger, stderrLogger } from '../../../internal/logger.js'
import { parseOptions } from '../../../internal/options.js'
import {
  migratePostgres,
  type PgPoolLike,
  PgPoolSchema,
  quoteIdent,
  SqlIdentifierSchema,
} from '../../../internal/sql/postgres.js'
import type { PolicyState } from '../../errors.js'
import { toPolicyState } from '../sliding-window.js'
import type { ConsumeRequest, RateLimitStore } from '../store.js'

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
    /** Where prune failures are logged. @default stderr */
    logger: z
      .custom<Logger>((v) => typeof (v as Partial<Logger> | null)?.warn === 'function')
      .optional(),
  })
  .strict()

export type PostgresStoreOptions = z.input<typeof PostgresStoreOptionsSchema>

const TABLE = 'fraiseql_rate_limit'
const FUNCTION = 'fraiseql_rate_limit_consume'

/**
 * The counters table and the function that checks and charges every policy
 * of a request in one statement. Rows are created (`ON CONFLICT DO NOTHING`)
 * and locked in key order, so concurrent requests for the same client
 * serialize without deadlocks. The integer comparison mirrors `fits()`.
 */
function ddl(schema: string): string[] {
  const s = quoteIdent(schema)
  return [
    `CREATE TABLE IF NOT EXISTS ${s}.${TABLE} (
      key          text PRIMARY KEY,
      window_index bigint NOT NULL,
      curr         bigint NOT NULL,
      prev         bigint NOT NULL,
      expires_at   timestamptz NOT NULL
    )`,
    `CREATE INDEX IF NOT EXISTS ${TABLE}_expires_at ON ${s}.${TABLE} (expires_at)`,
    `CREATE OR REPLACE FUNCTION ${s}.${FUNCTION}(
       p_keys text[], p_max bigint[], p_window bigint[], p_weight bigint, p_now bigint)
     RETURNS TABLE (allowed boolean, policy_ok boolean, prev bigint, curr bigint, elapsed bigint)
     LANGUAGE plpgsql AS $fn$
     DECLARE
       v_now bigint := COALESCE(p_now, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint);
       n int := coalesce(array_length(p_keys, 1), 0);
       v_idx bigint[]; v_el bigint[]; v_cur bigint[]; v_prev bigint[]; v_ok boolean[];
       v_all boolean := true;
       r record; w bigint; x bigint; e bigint; c bigint; p bigint;
     BEGIN
       INSERT INTO ${s}.${TABLE} AS t (key, window_index, curr, prev, expires_at)
         SELECT k, -1, 0, 0, clock_timestamp() FROM unnest(p_keys) AS k ORDER BY k
         ON CONFLICT (key) DO NOTHING;
       PERFORM 1 FROM ${s}.${TABLE} t WHERE t.key = ANY (p_keys) ORDER BY t.key FOR UPDATE;
       FOR i IN 1..n LOOP
         w := p_window[i];
         x := v_now / w;
         e := v_now - x * w;
         SELECT t.window_index, t.curr, t.prev INTO r FROM ${s}.${TABLE} t WHERE t.key = p_keys[i];
         IF r.window_index = x THEN c := r.curr; p := r.prev;
         ELSIF r.window_index = x - 1 THEN c := 0; p := r.curr;
         ELSE c := 0; p := 0;
         END IF;
         v_idx[i] := x; v_el[i] := e; v_cur[i] := c; v_prev[i] := p;
         v_ok[i] := p * (w - e) + (c + p_weight) * w <= p_max[i] * w;
         IF NOT v_ok[i] THEN v_all := false; END IF;
       END LOOP;
       IF v_all THEN
         FOR i IN 1..n LOOP
           v_cur[i] := v_cur[i] + p_weight;
           UPDATE ${s}.${TABLE} t
              SET window_index = v_idx[i], curr = v_cur[i], prev = v_prev[i],
                  expires_at = clock_timestamp() + make_interval(secs => (2 * p_window[i] - v_el[i]) / 1000.0)
            WHERE t.key = p_keys[i];
         END LOOP;
       END IF;
       FOR i IN 1..n LOOP
         allowed := v_all; policy_ok := v_ok[i]; prev := v_prev[i]; curr := v_cur[i]; elapsed := v_el[i];
         RETURN NEXT;
       END LOOP;
     END
     $fn$`,
  ]
}

interface ConsumeRow {
  allowed: boolean
  policy_ok: boolean
  prev: string | number
  curr: string | number
  elapsed: string | number
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
  readonly #logger: Logger
  #pruneTimer: NodeJS.Timeout | undefined

  constructor(options: PostgresStoreOptions) {
    const o = parseOptions('PostgresStore', PostgresStoreOptionsSchema, options)
    this.#pool = o.pool
    this.#schema = o.schema
    this.#callerTime = o.timeSource === 'caller'
    this.#logger = o.logger ?? stderrLogger
    // A named statement is parsed and planned once per connection.
    this.#statement = {
      name: `fsrl_consume_${createHash('sha256').update(o.schema).digest('hex').slice(0, 16)}`,
      text: `SELECT allowed, policy_ok, prev, curr, elapsed FROM ${quoteIdent(o.schema)}.${FUNCTION}($1::text[], $2::bigint[], $3::bigint[], $4::bigint, $5::bigint)`,
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
    const statements = ddl(this.#schema)
    await migratePostgres(this.#pool, {
      schema: this.#schema,
      migrationTable: 'fraiseql_rate_limit_migrations',
      migrations: {
        '0001_counters': {
          async up(db) {
            for (const text of statements) await sql.raw(text).execute(db)
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
        { previous: Number(row.prev), current: Number(row.curr), elapsedMs: Number(row.elapsed) },
        row.policy_ok,
        weight,
      ),
    )
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
