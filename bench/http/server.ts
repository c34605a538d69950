/**
 * One server variant per process (see bench/lib/http.ts for why), started as
 * `node --import tsx bench/http/server.ts <variant>`. Every variant serves the
 * same route, so the only difference between two variants is the plugins.
 *
 * Our plugins come from the built package entry (`fraiseql-security/http`
 * resolves through package.json `exports` to dist/), so the bench measures
 * what users install, not the TypeScript sources through tsx.
 */
import fastifyRateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyInstance } from 'fastify'
import {
  bodyLimit,
  PostgresStore,
  type PostgresStoreOptions,
  type RedisClientLike,
  RedisStore,
  rateLimit,
} from 'fraiseql-security/http'
import { Redis } from 'ioredis'
import pg from 'pg'
import { type Answers, serve } from '../lib/http-server.js'
import { HUGE_MAX, isVariant, STAND_IN_HEADERS, type Variant, WINDOW_MS } from './variants.js'

function hello(app: FastifyInstance): FastifyInstance {
  app.get('/', async () => ({ hello: 'world' }))
  return app
}

async function build(variant: Variant): Promise<{
  app: FastifyInstance
  answers?: Answers
  onClose?: () => Promise<void>
}> {
  // No logger in any variant: logging would dominate a hello-world route.
  const app = Fastify({ logger: false })
  switch (variant) {
    case 'bare':
      return { app: hello(app) }
    case 'ours':
      await app.register(bodyLimit)
      await app.register(rateLimit, { max: HUGE_MAX, windowMs: WINDOW_MS })
      return { app: hello(app) }
    case 'ours-rate-limit':
      await app.register(rateLimit, { max: HUGE_MAX, windowMs: WINDOW_MS })
      return { app: hello(app) }
    case 'fastify-rate-limit':
      await app.register(fastifyRateLimit, { max: HUGE_MAX, timeWindow: WINDOW_MS })
      return { app: hello(app) }
    // Stand-ins: Fastify's share of our plugins' cost, without our code.
    case 'onrequest-headers':
      app.addHook('onRequest', (_request, reply, done) => {
        reply.headers(STAND_IN_HEADERS)
        done()
      })
      return { app: hello(app) }
    case 'like-ours':
      app.addHook('onRequest', (_request, _reply, done) => done())
      app.addHook('preParsing', (_request, _reply, payload, done) => done(null, payload))
      app.addHook('onRequest', (_request, reply, done) => {
        reply.headers(STAND_IN_HEADERS)
        done()
      })
      return { app: hello(app) }
    case 'ours-redis': {
      const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
      })
      await client.connect()
      // Named so the driver can find this connection in CLIENT LIST and MONITOR.
      await client.client('SETNAME', process.env.BENCH_REDIS_NAME ?? 'fsrl-bench')
      const calls = { evalsha: 0, eval: 0 }
      // The store can only reach Redis through these two methods (RedisClientLike),
      // so counting here counts every command it sends.
      const counting: RedisClientLike = {
        evalsha: (...args) => {
          calls.evalsha++
          return client.evalsha(...args)
        },
        eval: (...args) => {
          calls.eval++
          return client.eval(...args)
        },
      }
      const store = new RedisStore({ client: counting, prefix: process.env.BENCH_REDIS_PREFIX })
      await app.register(rateLimit, { max: HUGE_MAX, windowMs: WINDOW_MS, store })
      return {
        app: hello(app),
        answers: { calls: () => ({ ...calls }) },
        onClose: async () => {
          client.disconnect()
        },
      }
    }
    case 'ours-postgres': {
      const pool = new pg.Pool({
        connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
        max: 8,
      })
      const calls = { query: 0 }
      const counting: PostgresStoreOptions['pool'] = {
        query: (config) => {
          calls.query++
          return pool.query(config)
        },
        connect: () => pool.connect(),
      }
      const store = new PostgresStore({
        pool: counting,
        schema: process.env.BENCH_PG_SCHEMA ?? 'public',
        // No background prune during the count: it would be a query no request asked for.
        pruneIntervalMs: 0,
      })
      await store.migrate()
      calls.query = 0
      await app.register(rateLimit, { max: HUGE_MAX, windowMs: WINDOW_MS, store })
      return {
        app: hello(app),
        answers: { calls: () => ({ ...calls }) },
        // Ending the pool ends its backends, which flushes their statistics
        // (PostgreSQL 15 otherwise reports them up to 10 s late).
        onClose: async () => {
          await store.close()
          await pool.end()
        },
      }
    }
  }
}

const variant = process.argv[2]
if (!isVariant(variant)) throw new Error(`unknown variant ${variant}`)
const built = await build(variant)
await serve(built.app, built.answers, built.onClose)
