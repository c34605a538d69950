/**
 * Revoke-to-refusal latency of API keys in another process: the time from
 * `revoke()` in this process to the first refused `validate()` of that key
 * in a child process that had it cached. PostgreSQL (LISTEN/NOTIFY, on a
 * private server, 20 samples, then a restart of the server, then 20 more)
 * and SQLite (a shared file, polling every `pollIntervalMs`, 20 samples).
 *
 * Run on an idle machine: `npx tsx scripts/api-key-revocation-latency.ts`.
 * Prints p50 and max per series; the figures go to docs/api-keys.md.
 */
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import {
  ApiKeyManager,
  type ApiKeyStore,
  PostgresApiKeyStore,
  SqliteApiKeyStore,
} from '../src/api-keys/index.js'
import { KeyManager, LocalKmsProvider } from '../src/kms/index.js'
import { startPrivatePostgres } from '../test/helpers/private-postgres.js'

const SAMPLES = 20
const quiet = { warn: () => {}, error: () => {} }
const now = () => performance.timeOrigin + performance.now()

interface Backend {
  readonly kind: 'postgres' | 'sqlite'
  readonly where: string
}

function manager(backend: Backend, kmsKey: string): ApiKeyManager {
  const store: ApiKeyStore =
    backend.kind === 'postgres'
      ? new PostgresApiKeyStore({
          connectionString: backend.where,
          reconnectDelayMs: 100,
          logger: quiet,
        })
      : new SqliteApiKeyStore({ filename: backend.where })
  const keyManager = new KeyManager({
    providers: {
      local: new LocalKmsProvider({ keys: { app: Buffer.from(kmsKey, 'hex') }, logger: quiet }),
    },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    logger: quiet,
  })
  return new ApiKeyManager({ store, keyManager, logger: quiet, cache: { ttlMs: 86_400_000 } })
}

/** The child: caches the key it is told to watch, then validates it every millisecond until refused. */
async function serve(): Promise<void> {
  const backend = JSON.parse(process.env.LATENCY_BACKEND!) as Backend
  const keys = manager(backend, process.env.LATENCY_KMS_KEY!)
  await keys.initialize()
  process.on('message', async (msg: { key?: string; stop?: true }) => {
    if (msg.stop) {
      await keys.close()
      await keys.store.close()
      process.exit(0)
    }
    const key = msg.key!
    // Warm: cached until a notification (or a poll) says otherwise.
    for (;;) {
      try {
        await keys.validate(key)
        break
      } catch {
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    process.send!({ watching: true })
    for (;;) {
      try {
        await keys.validate(key)
      } catch (err) {
        process.send!({ refusedAt: now(), code: (err as { code?: string }).code })
        return
      }
      await new Promise((r) => setTimeout(r, 1))
    }
  })
  process.send!({ ready: true })
}

function next<T>(child: ReturnType<typeof fork>, field: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (msg: Record<string, unknown>) => {
      if (!(field in msg)) return
      child.off('message', on)
      resolve(msg as T)
    }
    child.on('message', on)
  })
}

async function series(
  admin: ApiKeyManager,
  child: ReturnType<typeof fork>,
  label: string,
  jitterMs: number,
) {
  const samples: number[] = []
  for (let i = 0; i < SAMPLES; i++) {
    const { key, keyId } = await admin.create({ name: `latency-${i}` })
    const watching = next(child, 'watching')
    child.send({ key })
    await watching
    // A random phase against SQLite's poll timer: revoking right after the
    // child's last refusal would always land just after a poll.
    await new Promise((r) => setTimeout(r, Math.random() * jitterMs))
    const refused = next<{ refusedAt: number; code: string }>(child, 'refusedAt')
    const t0 = now()
    await admin.revoke(keyId, 'latency')
    const r = await refused
    if (r.code !== 'ERR_API_KEY_REVOKED') throw new Error(`child saw ${r.code}`)
    samples.push(r.refusedAt - t0)
  }
  samples.sort((a, b) => a - b)
  const p50 = samples[Math.floor((samples.length - 1) / 2)]!
  const max = samples[samples.length - 1]!
  console.log(
    `${label}: p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms (${samples.length} samples)`,
  )
}

async function measure(backend: Backend, restart?: () => Promise<void>): Promise<void> {
  const kmsKey = randomBytes(32).toString('hex')
  /** SQLite's default poll interval; PostgreSQL needs no phase, a little keeps samples apart. */
  const jitter = backend.kind === 'sqlite' ? 1000 : 50
  const admin = manager(backend, kmsKey)
  await admin.initialize()
  const child = fork(fileURLToPath(import.meta.url), ['serve'], {
    env: { ...process.env, LATENCY_BACKEND: JSON.stringify(backend), LATENCY_KMS_KEY: kmsKey },
    execArgv: ['--import', 'tsx'],
  })
  try {
    await next(child, 'ready')
    await series(admin, child, `${backend.kind}${restart ? ' before restart' : ''}`, jitter)
    if (restart !== undefined) {
      await restart()
      // Both sides reconnect (pool, LISTEN); the first create may meet a dead connection.
      for (let i = 0; ; i++) {
        try {
          await admin.list({ limit: 1 })
          break
        } catch (err) {
          if (i > 100) throw err
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      await series(admin, child, `${backend.kind} after restart`, jitter)
    }
  } finally {
    child.send({ stop: true })
    await new Promise((r) => child.once('exit', r))
    await admin.close()
    await admin.store.close()
  }
}

async function main(): Promise<void> {
  console.log(`Node ${process.version}`)
  const server = await startPrivatePostgres()
  try {
    await measure({ kind: 'postgres', where: server.url }, () => server.restart('fast'))
  } finally {
    await server.destroy()
  }
  const dir = mkdtempSync(join(tmpdir(), 'fraiseql-latency-'))
  try {
    await measure({ kind: 'sqlite', where: join(dir, 'keys.db') })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === 'serve') await serve()
else await main()
