import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../../src/http/index.js'
import { describeRateLimitStoreContract } from '../../../src/http/testing/index.js'
import { createPgSchema, HAS_POSTGRES, type PgSchema } from '../../helpers/services.js'

const policy = { name: 'default', max: 10, windowMs: 60_000 }

describe.skipIf(!HAS_POSTGRES)('PostgresStore', () => {
  let db: PgSchema
  beforeAll(async () => {
    db = await createPgSchema(import.meta.url)
    await new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 }).migrate()
  })
  afterAll(async () => db.drop())

  /** A store reading the time the caller passes (tests drive the window). */
  const callerClockStore = () =>
    new PostgresStore({
      pool: db.pool,
      schema: db.schema,
      timeSource: 'caller',
      pruneIntervalMs: 0,
    })

  describeRateLimitStoreContract(
    'PostgresStore (caller clock)',
    async () => {
      const store = callerClockStore()
      return { store, key: () => randomUUID(), close: () => store.close() }
    },
    { describe, it, expect },
    { refund: true },
  )

  it('migrates idempotently, and two processes migrating at once do not race', async () => {
    const a = new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 })
    const b = new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 })
    await Promise.all([a.migrate(), b.migrate(), a.migrate()])
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM "${db.schema}".fraiseql_rate_limit_migrations`,
    )
    expect(rows[0].n).toBe(4)
  })

  it('migrates a fresh schema when several stores start together', async () => {
    const fresh = `${db.schema}_m`
    try {
      const stores = Array.from(
        { length: 3 },
        () => new PostgresStore({ pool: db.pool, schema: fresh, pruneIntervalMs: 0 }),
      )
      await Promise.all(stores.map((s) => s.migrate()))
      const states = await stores[0]!.consume('k', { policies: [policy], weight: 1, now: 0 })
      expect(states[0]!.allowed).toBe(true)
    } finally {
      await db.pool.query(`DROP SCHEMA IF EXISTS "${fresh}" CASCADE`)
    }
  })

  it('runs exactly one SQL statement per request', async () => {
    let queries = 0
    const counting = {
      query: (config: Parameters<typeof db.pool.query>[0]) => {
        queries++
        return db.pool.query(config as never)
      },
      connect: () => db.pool.connect(),
    }
    const store = new PostgresStore({
      pool: counting as never,
      schema: db.schema,
      pruneIntervalMs: 0,
    })
    for (let i = 0; i < 10; i++) {
      await store.consume(randomUUID(), {
        policies: [policy, { name: 'burst', max: 3, windowMs: 1000 }],
        weight: 1,
        now: 0,
      })
    }
    expect(queries).toBe(10)
  })

  it('uses the PostgreSQL clock by default, so callers with skewed clocks share one window', async () => {
    const store = new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 })
    const key = randomUUID()
    for (let i = 0; i < 10; i++) {
      const states = await store.consume(key, {
        policies: [policy],
        weight: 1,
        now: i % 2 === 0 ? 0 : 9e12,
      })
      expect(states[0]!.allowed).toBe(true)
    }
    expect((await store.consume(key, { policies: [policy], weight: 1, now: 0 }))[0]!.allowed).toBe(
      false,
    )
  })

  it('prunes counters whose windows have both passed, and only those', async () => {
    const store = new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 })
    const stale = randomUUID()
    const live = randomUUID()
    await store.consume(stale, {
      policies: [{ name: 'default', max: 5, windowMs: 1000 }],
      weight: 1,
      now: 0,
    })
    await store.consume(live, { policies: [policy], weight: 1, now: 0 })
    await db.pool.query(
      `UPDATE "${db.schema}".fraiseql_rate_limit SET expires_at = now() - interval '1 second' WHERE key = $1`,
      [`default:${stale}`],
    )
    expect(await store.prune()).toBeGreaterThanOrEqual(1)
    const { rows } = await db.pool.query(
      `SELECT key FROM "${db.schema}".fraiseql_rate_limit WHERE key = ANY($1)`,
      [[`default:${stale}`, `default:${live}`]],
    )
    expect(rows.map((r: { key: string }) => r.key)).toEqual([`default:${live}`])
  })

  it('sets the expiry on the first charge of a window only (the end of the next window)', async () => {
    const store = callerClockStore()
    const client = randomUUID()
    const w = 10_000
    const consume = (now: number) =>
      store.consume(client, {
        policies: [{ name: 'default', max: 100, windowMs: w }],
        weight: 1,
        now,
      })
    const row = async () => {
      const { rows } = await db.pool.query(
        `SELECT window_index::int AS w, curr::int AS c, prev::int AS p,
                (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS ttl
           FROM "${db.schema}".fraiseql_rate_limit WHERE key = $1`,
        [`default:${client}`],
      )
      return rows[0] as { w: number; c: number; p: number; ttl: number }
    }
    await consume(3 * w + 2_000)
    const first = await row()
    expect(first).toMatchObject({ w: 3, c: 1, p: 0 })
    expect(first.ttl).toBeLessThanOrEqual(2 * w - 2_000)
    expect(first.ttl).toBeGreaterThan(2 * w - 3_000)
    await consume(3 * w + 9_000) // same window: counted, the expiry kept
    const second = await row()
    expect(second).toMatchObject({ w: 3, c: 2, p: 0 })
    expect(second.ttl).toBeGreaterThan(2 * w - 3_000)
    await consume(4 * w + 5_000) // next window: the count moves to prev, a new expiry
    const third = await row()
    expect(third).toMatchObject({ w: 4, c: 1, p: 2 })
    expect(third.ttl).toBeLessThanOrEqual(2 * w - 5_000)
    expect(third.ttl).toBeGreaterThan(2 * w - 6_000)
    await store.close()
  })

  for (const [label, policies] of [
    ['one policy (the plain statement)', [{ name: 'default', max: 5, windowMs: 60_000 }]],
    [
      'two policies (the function)',
      [
        { name: 'default', max: 5, windowMs: 60_000 },
        { name: 'hour', max: 100, windowMs: 3_600_000 },
      ],
    ],
  ] as const) {
    it(`admits exactly max of 12 concurrent calls for one key, ${label}`, async () => {
      const store = new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 })
      const key = randomUUID()
      const states = await Promise.all(
        Array.from({ length: 12 }, () => store.consume(key, { policies, weight: 1, now: 0 })),
      )
      expect(states.filter((s) => s.every((p) => p.allowed))).toHaveLength(5)
      expect(states.filter((s) => !s[0]!.allowed)).toHaveLength(7)
    })
  }

  it('keeps counters written before migration 0004 (by the consume function) and goes on counting them', async () => {
    const schema = `${db.schema}_m4`
    const t = `"${schema}".fraiseql_rate_limit`
    try {
      const store = new PostgresStore({ pool: db.pool, schema, pruneIntervalMs: 0 })
      await store.migrate()
      // Back to what 0003 left: no decision columns, 0004 not applied.
      await db.pool.query(`ALTER TABLE ${t} DROP COLUMN last_elapsed, DROP COLUMN last_allowed`)
      await db.pool.query(
        `DELETE FROM "${schema}".fraiseql_rate_limit_migrations WHERE name = '0004_single_policy_statement'`,
      )
      const W = 60_000
      const T0 = 1_800_000_000_000 - (1_800_000_000_000 % W)
      // Counters as the 0003 function writes them: 3 in the current window, 4 then 2.
      await db.pool.query(
        `SELECT * FROM "${schema}".fraiseql_rate_limit_consume($1::text[], $2::bigint[], $3::bigint[], $4::bigint, $5::bigint)`,
        [['default:a'], [5], [W], 3, T0 + 100],
      )
      await db.pool.query(
        `SELECT * FROM "${schema}".fraiseql_rate_limit_consume($1::text[], $2::bigint[], $3::bigint[], $4::bigint, $5::bigint)`,
        [['default:b'], [10], [W], 4, T0 - W + 100],
      )
      await store.migrate()
      const caller = new PostgresStore({
        pool: db.pool,
        schema,
        timeSource: 'caller',
        pruneIntervalMs: 0,
      })
      const a = { name: 'default', max: 5, windowMs: W }
      // Two more fit beside the 3 already counted, the third does not.
      expect(
        (await caller.consume('a', { policies: [a], weight: 2, now: T0 + 200 }))[0],
      ).toMatchObject({
        allowed: true,
        remaining: 0,
        window: T0 / W,
      })
      expect(
        (await caller.consume('a', { policies: [a], weight: 1, now: T0 + 300 }))[0]!.allowed,
      ).toBe(false)
      // b's 4 from the previous window weigh in at half the window: 4 * 0.5 + 8 = 10.
      const b = { name: 'default', max: 10, windowMs: W }
      expect(
        (await caller.consume('b', { policies: [b], weight: 8, now: T0 + W / 2 }))[0]!.allowed,
      ).toBe(true)
      expect(
        (await caller.consume('b', { policies: [b], weight: 1, now: T0 + W / 2 }))[0]!.allowed,
      ).toBe(false)
      // The function (several policies) still works on the migrated table.
      const states = await caller.consume('c', {
        policies: [a, { name: 'hour', max: 100, windowMs: 3_600_000 }],
        weight: 1,
        now: T0,
      })
      expect(states.map((s) => s.allowed)).toEqual([true, true])
    } finally {
      await db.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    }
  })

  it('rejects an unsafe schema name with ERR_CONFIG_INVALID naming the field', () => {
    expect(() => new PostgresStore({ pool: db.pool, schema: 'x"; DROP TABLE y; --' })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('schema'),
      }),
    )
  })
})
