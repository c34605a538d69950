/**
 * Revocation keeps reaching other processes across a PostgreSQL restart: two
 * managers with their own pools on a private server; a key revoked in one is
 * refused (401) by the other through LISTEN/NOTIFY, not after the cache TTL;
 * the server restarts (every connection terminated, SQLSTATE 57P01); a key
 * revoked afterwards still reaches the other. Latency is measured in
 * scripts/api-key-revocation-latency.ts, not asserted here.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ApiKeyManager, apiKeyAuth, PostgresApiKeyStore } from '../../src/api-keys/index.js'
import {
  HAS_PRIVATE_POSTGRES,
  type PrivatePostgres,
  startPrivatePostgres,
} from '../helpers/private-postgres.js'
import { countingKms, memoryLogger } from './helpers.js'

const DAY = 86_400_000

describe.skipIf(!HAS_PRIVATE_POSTGRES)('revocation across a PostgreSQL restart', () => {
  let server: PrivatePostgres
  beforeAll(async () => {
    server = await startPrivatePostgres()
  }, 120_000)
  afterAll(async () => {
    await server?.destroy()
  })

  it('a key revoked in one process is refused by the other, before and after the server restarts', async () => {
    const { keyManager } = countingKms()
    const logs = memoryLogger()
    // A day-long cache: only a notification (or a reset after a lost
    // connection) can make the other process see a revocation in time.
    const make = () =>
      new ApiKeyManager({
        store: new PostgresApiKeyStore({
          connectionString: server.url,
          reconnectDelayMs: 100,
          logger: logs.logger,
        }),
        keyManager,
        logger: logs.logger,
        cache: { ttlMs: DAY, negativeTtlMs: DAY },
      })
    const admin = make()
    const serving = make()
    let app: FastifyInstance | undefined
    try {
      await admin.initialize()
      await serving.initialize()
      app = Fastify()
      await app.register(apiKeyAuth, { manager: serving })
      app.get('/me', async (request) => ({ keyId: request.apiKey?.keyId }))
      await app.ready()
      const status = async (key: string) =>
        (await app!.inject({ url: '/me', headers: { authorization: `Bearer ${key}` } })).statusCode

      const keys = await Promise.all(
        ['before', 'after', 'later'].map((name) => admin.create({ name })),
      )
      for (const { key } of keys) expect(await status(key)).toBe(200)

      await admin.revoke(keys[0]!.keyId, 'test: before the restart')
      await vi.waitFor(async () => expect(await status(keys[0]!.key)).toBe(401), {
        timeout: 15_000,
        interval: 10,
      })
      expect(await status(keys[1]!.key)).toBe(200)

      await server.restart('fast')
      // The serving process answers again once its pool reconnects, and has
      // re-read the key (its cache was cleared when LISTEN was lost).
      await vi.waitFor(async () => expect(await status(keys[1]!.key)).toBe(200), {
        timeout: 30_000,
        interval: 50,
      })
      expect(
        logs.lines.some(
          (l) => l.msg === 'API-key LISTEN connection lost; caches are cleared and it reconnects',
        ),
      ).toBe(true)
      // The admin process's pool lost its connections too; its next revoke
      // runs on a new one.
      await vi.waitFor(() => admin.revoke(keys[1]!.keyId, 'test: after the restart'), {
        timeout: 30_000,
        interval: 100,
      })
      await vi.waitFor(async () => expect(await status(keys[1]!.key)).toBe(401), {
        timeout: 15_000,
        interval: 10,
      })
      // Once re-subscribed, the cached third key is revoked by notification alone.
      expect(await status(keys[2]!.key)).toBe(200)
      await admin.revoke(keys[2]!.keyId, 'test: later')
      await vi.waitFor(async () => expect(await status(keys[2]!.key)).toBe(401), {
        timeout: 15_000,
        interval: 10,
      })
      expect(await status(keys[0]!.key)).toBe(401)
    } finally {
      await app?.close()
      await serving.close()
      await admin.close()
      await serving.store.close()
      await admin.store.close()
    }
  }, 180_000)
})
