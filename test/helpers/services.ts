/**
 * Real PostgreSQL and Redis for the tests that need them, isolated per test
 * file: each file gets its own Redis key prefix and its own PostgreSQL schema,
 * so files run in parallel without touching each other.
 *
 * With `CI=true` a missing service fails the run (global-setup.ts checks
 * first); locally, the suites that need it skip with one line saying why.
 */
import { randomBytes } from 'node:crypto'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import pg from 'pg'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const IN_CI = process.env.CI === 'true'
/** The three primaries of the Redis Cluster `.ci/run` starts on loopback. */
export const REDIS_CLUSTER_PORTS = (process.env.REDIS_CLUSTER_PORTS ?? '7001,7002,7003')
  .split(',')
  .map(Number)

/**
 * How long a reachability check waits. A stopped service refuses the
 * connection at once, so this only bounds a service that accepts and stays
 * silent; at 1 s a loaded machine (load average 19 on 2 cores) failed a
 * running PostgreSQL's check, and with CI=true the whole file with it.
 */
const PROBE_TIMEOUT_MS = 15_000

/** Tries a Redis PING, bounded by PROBE_TIMEOUT_MS. */
export async function redisReachable(): Promise<boolean> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

/** Tries `SELECT 1`, bounded by PROBE_TIMEOUT_MS. */
export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({
    connectionString: DATABASE_URL,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/** Whether the Redis Cluster answers and reports `cluster_state:ok`. */
export async function redisClusterReachable(): Promise<boolean> {
  const client = new Redis({
    host: '127.0.0.1',
    port: REDIS_CLUSTER_PORTS[0] ?? 7001,
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    return String(await client.cluster('INFO')).includes('cluster_state:ok')
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

const [redisUp, postgresUp, clusterUp] = await Promise.all([
  redisReachable(),
  postgresReachable(),
  redisClusterReachable(),
])

function note(service: string, up: boolean): boolean {
  if (!up && !IN_CI) {
    console.warn(
      `[tests] ${service} is not reachable at its default address: its suites are skipped (CI=true makes this a failure).`,
    )
  }
  if (!up && IN_CI) throw new Error(`${service} must be running when CI=true`)
  return up
}

/** True when Redis tests can run (never false in CI: that throws). */
export const HAS_REDIS = note('Redis', redisUp)
/** True when PostgreSQL tests can run (never false in CI: that throws). */
export const HAS_POSTGRES = note('PostgreSQL', postgresUp)
/** True when Redis Cluster tests can run (never false in CI: that throws). */
export const HAS_REDIS_CLUSTER = note(
  `Redis Cluster (127.0.0.1:${REDIS_CLUSTER_PORTS.join(',')})`,
  clusterUp,
)

/**
 * A fail-fast ioredis `Cluster` client on the test cluster, ready (slots
 * loaded). `natMap` lets a test reach a node through a proxy: the nodes
 * announce their real ports, which the map rewrites.
 */
export async function readyRedisCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const cluster = new Cluster(
    REDIS_CLUSTER_PORTS.map((port) => ({ host: '127.0.0.1', port })),
    {
      enableOfflineQueue: false,
      lazyConnect: true,
      ...options,
      redisOptions: { maxRetriesPerRequest: 0, ...options.redisOptions },
    },
  )
  cluster.on('error', () => {})
  await cluster.connect()
  return cluster
}

/** Deletes every key under a prefix on every primary of the cluster. */
export async function dropRedisClusterPrefix(prefix: string): Promise<void> {
  for (const port of REDIS_CLUSTER_PORTS) {
    const client = redisClient({ enableOfflineQueue: true, port, host: '127.0.0.1' })
    try {
      let cursor = '0'
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
        cursor = next
        // One DEL per key: keys of different slots cannot share a command.
        for (const key of keys) await client.del(key)
      } while (cursor !== '0')
    } finally {
      client.disconnect()
    }
  }
}

/** A key prefix unique to this test file and run. */
export function redisPrefix(fileUrl: string): string {
  return `test:${basename(fileURLToPath(fileUrl)).replace(/\W+/g, '_')}:${randomBytes(4).toString('hex')}:`
}

/** An ioredis client that fails fast instead of queueing during an outage. */
export function redisClient(options: RedisOptions = {}): Redis {
  const url = new URL(REDIS_URL)
  // Explicit options win over the URL (ioredis would let the URL win).
  const client = new Redis({
    host: url.hostname,
    port: Number(url.port || 6379),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    ...options,
  })
  client.on('error', () => {})
  return client
}

/** A fail-fast client that is connected and ready (without an offline queue, early commands would fail). */
export async function readyRedisClient(options: RedisOptions = {}): Promise<Redis> {
  const client = redisClient({ lazyConnect: true, ...options })
  await client.connect()
  return client
}

/** Deletes every key under a prefix. */
export async function dropRedisPrefix(prefix: string): Promise<void> {
  const client = redisClient({ enableOfflineQueue: true })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}

/** A fresh schema for this test file, with a pool whose search_path points at it. */
export interface PgSchema {
  readonly schema: string
  readonly pool: pg.Pool
  drop(): Promise<void>
}

export async function createPgSchema(fileUrl: string): Promise<PgSchema> {
  const file = basename(fileURLToPath(fileUrl)).replace(/\W+/g, '_').toLowerCase().slice(0, 30)
  const schema = `t_${file}_${randomBytes(4).toString('hex')}`
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max: 8,
    options: `-c search_path=${schema}`,
  })
  pool.on('error', () => {})
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
  return {
    schema,
    pool,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
      await pool.end()
    },
  }
}
