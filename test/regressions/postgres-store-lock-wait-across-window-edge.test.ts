/**
 * Regression: `PostgresStore`'s function read the clock when it started,
 * before it took the row lock. A call that waited on the lock while the
 * window turned, behind a call that had already charged the new window,
 * then saw a row "from the future", treated it as empty and wrote its older
 * window back: the new window's count was lost and the client got a fresh
 * budget. The same happened with the caller's clock (`timeSource: 'caller'`),
 * whose time is read before the statement is even sent. Now the function
 * reads PostgreSQL's clock after the lock, and a row never moves back to an
 * older window whichever clock is used.
 *
 * Both tests force the interleaving with two real connections: one holds the
 * row lock in an open transaction while the store's call waits behind it.
 */
import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { PostgresStore } from '../../src/http/index.js'
import { createPgSchema, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'

describe.skipIf(!HAS_POSTGRES)('PostgresStore: a call that waited on the row lock', () => {
  let db: PgSchema
  beforeAll(async () => {
    db = await createPgSchema(import.meta.url)
    await new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 }).migrate()
  })
  afterAll(async () => db.drop())

  const table = () => `"${db.schema}".fraiseql_rate_limit`
  const fn = () => `"${db.schema}".fraiseql_rate_limit_consume`

  /** Opens a transaction on its own connection; returns it and its backend pid. */
  async function holder(): Promise<{ client: pg.PoolClient; pid: number }> {
    const client = await db.pool.connect()
    const { rows } = await client.query('SELECT pg_backend_pid() AS pid')
    await client.query('BEGIN')
    return { client, pid: (rows[0] as { pid: number }).pid }
  }

  /** Resolves once some backend waits on a lock `pid` holds; returns its query start (ms). */
  async function blockedBehind(pid: number): Promise<number> {
    return vi.waitFor(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT (extract(epoch FROM query_start) * 1000)::float8 AS started
             FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`,
          [pid],
        )
        if (rows.length === 0) throw new Error('no call waits on the lock yet')
        return (rows[0] as { started: number }).started
      },
      { timeout: 10_000, interval: 20 },
    )
  }

  async function row(key: string) {
    const { rows } = await db.pool.query(
      `SELECT window_index::float8 AS w, curr::int AS c, prev::int AS p FROM ${table()} WHERE key = $1`,
      [`default:${key}`],
    )
    return rows[0] as { w: number; c: number; p: number }
  }

  test('caller clock: a call stamped before the edge, run after a call that charged the next window, is counted in that window', async () => {
    const store = new PostgresStore({
      pool: db.pool,
      schema: db.schema,
      timeSource: 'caller',
      pruneIntervalMs: 0,
    })
    const W = 60_000
    const T0 = 1_800_000_000_000 - (1_800_000_000_000 % W)
    const policy = { name: 'default', max: 10, windowMs: W }
    const key = randomUUID()
    expect(
      (await store.consume(key, { policies: [policy], weight: 1, now: T0 + 1000 }))[0]!.allowed,
    ).toBe(true)

    // Another instance charges 9 in the next window and, inside its
    // transaction, still holds the row lock.
    const a = await holder()
    try {
      const charged = await a.client.query(
        `SELECT allowed FROM ${fn()}($1::text[], $2::bigint[], $3::bigint[], $4::bigint, $5::bigint)`,
        [[`default:${key}`], [10], [W], 9, T0 + W + 10],
      )
      expect(charged.rows[0]).toEqual({ allowed: true })
      // This call read its clock in window 0, before the edge; it waits on the lock.
      const late = store.consume(key, { policies: [policy], weight: 1, now: T0 + 2000 })
      await blockedBehind(a.pid)
      await a.client.query('COMMIT')
      // Window 1 holds 9 and window 0's 1 still weighs in full at its start: no room.
      expect((await late)[0]).toMatchObject({ allowed: false })
    } finally {
      a.client.release()
    }
    expect(await row(key)).toEqual({ w: T0 / W + 1, c: 9, p: 1 })
    const next = await store.consume(key, { policies: [policy], weight: 1, now: T0 + W + 20 })
    expect(next[0]).toMatchObject({ allowed: false })
  })

  test('server clock: a call that waited across a window edge reads the time after the lock', async () => {
    const store = new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 })
    const W = 2000
    const policy = { name: 'default', max: 10, windowMs: W }
    const key = randomUUID()
    // A counter from long ago: whoever charges it next starts from zero.
    await db.pool.query(
      `INSERT INTO ${table()} (key, window_index, curr, prev, expires_at)
       VALUES ($1, 0, 0, 0, clock_timestamp() + interval '1 hour')`,
      [`default:${key}`],
    )
    const a = await holder()
    try {
      await a.client.query(`SELECT 1 FROM ${table()} WHERE key = $1 FOR UPDATE`, [`default:${key}`])
      const late = store.consume(key, { policies: [policy], weight: 1, now: 0 })
      const started = await blockedBehind(a.pid)
      const startWindow = Math.floor(started / W)
      // Let PostgreSQL's clock pass into a later window while the call waits.
      await vi.waitFor(
        async () => {
          const { rows } = await db.pool.query(
            'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
          )
          if (Math.floor((rows[0] as { now: number }).now / W) <= startWindow)
            throw new Error('the window has not turned yet')
        },
        { timeout: 3 * W, interval: 50 },
      )
      // The holder, now in the later window, spends the whole budget there.
      const charged = await a.client.query(
        `SELECT allowed FROM ${fn()}($1::text[], $2::bigint[], $3::bigint[], $4::bigint, NULL)`,
        [[`default:${key}`], [10], [W], 10],
      )
      expect(charged.rows[0]).toEqual({ allowed: true })
      await a.client.query('COMMIT')
      // Read before the lock, the call's time would be the older window: an empty one.
      expect((await late)[0]).toMatchObject({ allowed: false })
    } finally {
      a.client.release()
    }
    const after = await row(key)
    expect(after.w).toBeGreaterThan(0)
    expect(after.c).toBe(10)
  })
})
