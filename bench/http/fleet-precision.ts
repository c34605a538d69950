/**
 * How exact `max` is across a fleet: N real server processes share one Redis
 * or PostgreSQL store at default settings (storeTimeoutMs 100, the default
 * circuit breaker, `instances: N`), while a burner process keeps a core busy;
 * each run sends 200 concurrent requests of one client, split round robin,
 * and counts the 200s. Not a timed test: it prints counts per run.
 *
 *   tsx bench/http/fleet-precision.ts [runs=20] [processes=2,4] [stores=redis,postgres]
 *
 * Loopback only (127.0.0.1): Redis on 6379, PostgreSQL on 5432 (db test).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Agent, request } from 'node:http'
import { fileURLToPath } from 'node:url'

const MAX = 50
const REQUESTS = 200
const self = fileURLToPath(import.meta.url)
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

type StoreKind = 'redis' | 'postgres'

async function worker(kind: StoreKind, instances: number, schema: string): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { rateLimit, RedisStore, PostgresStore } = await import('../../src/http/index.js')
  let store: import('../../src/http/index.js').RateLimitStore
  if (kind === 'redis') {
    const { Redis } = await import('ioredis')
    const client = new Redis({
      host: '127.0.0.1',
      port: 6379,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    })
    client.on('error', () => {})
    await new Promise((r) => client.once('ready', r))
    store = new RedisStore({ client, prefix: `bench:fleet:${schema}:` })
  } else {
    const { default: pg } = await import('pg')
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 })
    pool.on('error', () => {})
    store = new PostgresStore({ pool, schema, pruneIntervalMs: 0 })
  }
  const stats = { failed: 0, opened: 0 }
  const logger = {
    warn: (_o: object, msg?: string) => {
      if (msg === 'rate-limit store failed') stats.failed++
      if (msg === 'rate-limit store circuit opened') stats.opened++
    },
    error: () => {},
  }
  const app = Fastify()
  await app.register(rateLimit, {
    max: MAX,
    windowMs: 60_000,
    store,
    instances,
    logger,
    keyGenerator: (r) => String((r as { headers: Record<string, unknown> }).headers['x-client']),
  })
  app.get('/', async () => 'ok')
  app.get('/stats', { config: { rateLimit: false } }, async () => stats)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
}

function burner(): void {
  // Keeps one core busy: the load that made store calls pass 100 ms.
  for (;;) Math.sqrt(Math.random())
}

function get(agent: Agent, port: number, path: string, client: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, agent, headers: { 'x-client': client } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

async function fleet(kind: StoreKind, n: number, schema: string) {
  const children: ChildProcess[] = []
  const ports: number[] = []
  for (let i = 0; i < n; i++) {
    const child = fork(self, ['worker', kind, String(n), schema], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    children.push(child)
    ports.push(
      await new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { port: number }).port))
        child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)))
      }),
    )
  }
  return { children, ports }
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20)
  const sizes = (process.argv[3] ?? '2,4').split(',').map(Number)
  const kinds = (process.argv[4] ?? 'redis,postgres').split(',') as StoreKind[]
  const schema = `bench_fleet_${randomBytes(4).toString('hex')}`
  const { default: pg } = await import('pg')
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 })
  if (kinds.includes('postgres')) {
    const { PostgresStore } = await import('../../src/http/index.js')
    await admin.query(`CREATE SCHEMA "${schema}"`)
    await new PostgresStore({ pool: admin, schema, pruneIntervalMs: 0 }).migrate()
  }
  const burn = fork(self, ['burner'], { execArgv: process.execArgv, stdio: 'ignore' })
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  console.log(
    `node ${process.version}, max ${MAX}, ${REQUESTS} concurrent requests per run, one burner`,
  )
  try {
    for (const kind of kinds) {
      for (const n of sizes) {
        const { children, ports } = await fleet(kind, n, schema)
        // Warm up connections and the script cache.
        await Promise.all(ports.map((p) => get(agent, p, '/', `warm-${p}`)))
        const counts: number[] = []
        for (let r = 0; r < runs; r++) {
          const client = `run-${randomBytes(6).toString('hex')}`
          const statuses = await Promise.all(
            Array.from({ length: REQUESTS }, (_, i) => get(agent, ports[i % n]!, '/', client)),
          )
          counts.push(statuses.filter((s) => s === 200).length)
        }
        const stats = await Promise.all(
          ports.map(
            (p) =>
              new Promise<{ failed: number; opened: number }>((resolve, reject) => {
                request({ host: '127.0.0.1', port: p, path: '/stats', agent }, (res) => {
                  let body = ''
                  res.on('data', (c) => {
                    body += c
                  })
                  res.on('end', () => resolve(JSON.parse(body)))
                })
                  .on('error', reject)
                  .end()
              }),
          ),
        )
        const over = counts.filter((c) => c > MAX).length
        console.log(
          `${kind.padEnd(8)} ${n} processes: admitted per run min ${Math.min(...counts)} max ${Math.max(...counts)}; runs over ${MAX}: ${over}/${runs}; failure runs logged ${stats.reduce((a, s) => a + s.failed, 0)}, circuit opened ${stats.reduce((a, s) => a + s.opened, 0)}`,
        )
        console.log(`         counts: ${counts.join(' ')}`)
        for (const c of children) c.kill()
      }
    }
  } finally {
    burn.kill()
    agent.destroy()
    if (kinds.includes('postgres')) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin.end()
  }
}

const [role, kind, instances, schema] = process.argv.slice(2)
if (role === 'worker') await worker(kind as StoreKind, Number(instances), schema!)
else if (role === 'burner') burner()
else await main()
