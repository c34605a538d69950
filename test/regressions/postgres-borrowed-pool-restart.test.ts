/**
 * Regression (issue 17, item 7): a PostgreSQL restart killed a server built
 * as the docs show. `new PostgresStore({ pool: new pg.Pool(...) })`, exactly
 * as its JSDoc example, died with an unhandled `error` event ("terminating
 * connection due to administrator command") when PostgreSQL restarted,
 * before the insurance store could help: pg's pool emits `error` for idle
 * clients and nobody listened. The keyring and API-key stores given a pool
 * had the same hole. Each now attaches a logging listener to a pool it is
 * lent (once per pool), as it always did to the pools it opens itself.
 *
 * A private PostgreSQL (never the shared one) is restarted under traffic;
 * an unhandled `error` would fail this file as an uncaught exception.
 */
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { PostgresApiKeyStore } from '../../src/api-keys/index.js'
import { PostgresStore, rateLimit } from '../../src/http/index.js'
import { PostgresKeyringStore } from '../../src/kms/index.js'
import {
  HAS_PRIVATE_POSTGRES,
  type PrivatePostgres,
  startPrivatePostgres,
} from '../helpers/private-postgres.js'

describe.skipIf(!HAS_PRIVATE_POSTGRES)('stores lent a pg.Pool survive a PostgreSQL restart', () => {
  let server: PrivatePostgres
  const pools: pg.Pool[] = []
  beforeAll(async () => {
    server = await startPrivatePostgres()
  }, 120_000)
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})))
    await server?.destroy()
  })

  const newPool = () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 4 })
    pools.push(pool)
    return pool
  }
  /** Checks out `n` clients at once and gives them back: the pool then holds `n` idle ones. */
  const warm = async (pool: pg.Pool, n: number) => {
    const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()))
    for (const c of clients) c.release()
  }

  it('PostgresStore as its JSDoc shows: traffic through a restart is served or refused with a code, then shared again', async () => {
    const warnings: Array<{ obj: object; msg: string | undefined }> = []
    const logger = { warn: (obj: object, msg?: string) => warnings.push({ obj, msg }), error() {} }
    const pool = newPool()
    const store = new PostgresStore({ pool, schema: `rl_${randomUUID().slice(0, 8)}`, logger })
    await store.migrate()
    const app = Fastify()
    await app.register(rateLimit, {
      max: 1000,
      windowMs: 60_000,
      store,
      storeTimeoutMs: 2000,
      storeRetryIntervalMs: 1,
      logger,
    })
    app.get('/', async () => 'ok')
    await app.ready()
    try {
      const hit = () => app.inject({ url: '/', headers: { 'x-forwarded-for': '203.0.113.7' } })
      expect((await hit()).statusCode).toBe(200)
      await warm(pool, 4)

      // Traffic while the server restarts: every answer is a 200 (shared or
      // insurance store) or a typed refusal, never a crash.
      let stop = false
      const answers: Array<{ status: number; code: string | undefined }> = []
      const traffic = (async () => {
        for (let i = 0; i < 400 && !stop; i++) {
          const r = await hit()
          const code = r.statusCode === 200 ? undefined : (r.json() as { code?: string }).code
          answers.push({ status: r.statusCode, code })
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      })()
      await server.restart()
      stop = true
      await traffic
      for (const a of answers) {
        if (a.status !== 200) expect(a.code).toMatch(/^ERR_[A-Z_]+$/)
      }
      expect(warnings.some((w) => w.msg === 'PostgreSQL idle connection failed')).toBe(true)
      // No message text in the log entry, only name and code.
      const logged = warnings.find((w) => w.msg === 'PostgreSQL idle connection failed')!
      expect(Object.keys((logged.obj as { err: object }).err).sort()).toEqual(['code', 'name'])

      // Recovery: the shared store answers again and the limiter leaves the insurance path.
      await vi.waitFor(
        async () => {
          const r = await hit()
          expect(r.statusCode).toBe(200)
          expect(app.rateLimiter.degraded).toBe(false)
        },
        { timeout: 20_000, interval: 50 },
      )
    } finally {
      await app.close()
    }
  }, 60_000)

  it('the keyring and API-key stores lent a pool: idle clients lost to a restart are logged, and the stores work after it', async () => {
    const warn = vi.fn()
    const logger = { warn, error() {} }
    const schema = `ks_${randomUUID().slice(0, 8)}`
    const keyringPool = newPool()
    const apiKeyPool = newPool()
    const keyring = new PostgresKeyringStore({ pool: keyringPool, schema, logger })
    const apiKeys = new PostgresApiKeyStore({ pool: apiKeyPool, schema, logger })
    await keyring.migrate()
    await apiKeys.migrate()
    await Promise.all([warm(keyringPool, 3), warm(apiKeyPool, 3)])

    await server.restart()
    // Both pools lost their idle clients; each store's listener logged it.
    await vi.waitFor(() => expect(warn.mock.calls.length).toBeGreaterThanOrEqual(2), {
      timeout: 10_000,
    })
    for (const [, msg] of warn.mock.calls) expect(msg).toBe('PostgreSQL idle connection failed')

    await vi.waitFor(
      async () => {
        expect(await keyring.list()).toEqual([])
        expect(await apiKeys.getKey('k0000000000000000')).toBeUndefined()
      },
      { timeout: 20_000, interval: 100 },
    )
    await keyring.close()
    await apiKeys.close()
  }, 60_000)
})
