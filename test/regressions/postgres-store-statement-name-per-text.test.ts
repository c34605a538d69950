/**
 * The consume statement's reply gained a column (each policy's window, for
 * refunds) but kept its prepared-statement name. node-postgres refuses a name
 * a connection already prepared with another text ("Prepared statements must
 * be unique"), so a pool shared with the previous version of the package
 * (two copies installed, one pool) failed every charge on the connections
 * the other copy had used. A statement's name now follows from its text.
 */
import { createHash, randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../src/http/index.js'
import { DATABASE_URL, HAS_POSTGRES } from '../helpers/services.js'

describe.skipIf(!HAS_POSTGRES)('PostgresStore prepared-statement names', () => {
  const schema = `t_pg_stmt_${randomBytes(4).toString('hex')}`
  // One connection, so the statement the previous version prepared is on it.
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 })
  pool.on('error', () => {})
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await pool.end()
  })

  it('charges on a connection where the previous version prepared its consume statement', async () => {
    const store = new PostgresStore({ pool, schema, pruneIntervalMs: 0 })
    await store.migrate()
    // The previous version's statement: same name, the reply without `win`.
    const previousName = `fsrl_consume_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`
    await pool.query({
      name: previousName,
      text: `SELECT allowed, policy_ok, prev, curr, elapsed FROM "${schema}".fraiseql_rate_limit_consume($1::text[], $2::bigint[], $3::bigint[], $4::bigint, $5::bigint)`,
      values: [['p:old'], [5], [60_000], 1, 1_000],
    })
    const policies = Object.freeze([{ name: 'p', max: 5, windowMs: 60_000 }])
    const states = await store.consume('client', { policies, weight: 1, now: 1_000 })
    expect(states.map((s) => s.remaining)).toEqual([4])
    expect(typeof states[0]!.window).toBe('number')
    await store.close()
  })
})
