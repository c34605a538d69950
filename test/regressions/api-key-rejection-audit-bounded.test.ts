/**
 * Rejected API-key attempts grew the audit table without bound: every
 * (key id, address, reason) was its own aggregate, so random well-formed
 * keys from a distinct address each (an IPv6 /64 range makes that cheap)
 * wrote one row per request (60,000 requests → 60,002 rows). Rejections
 * are now counted per reason and /24 (IPv4) or /64 (IPv6) network, at most
 * `maxRejectedRowsPerFlush` networks per flush, the rest in one row per
 * reason; accepted management operations keep their own row each.
 */
import { randomBytes } from 'node:crypto'
import { BlockList, isIPv4 } from 'node:net'
import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ApiKeyManager,
  apiKeyAuth,
  formatApiKey,
  PostgresApiKeyStore,
} from '../../src/api-keys/index.js'
import { auditNetwork } from '../../src/api-keys/manager.js'
import { countingKms, fixture, memoryLogger, T0 } from '../api-keys/helpers.js'
import { createPgSchema, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'

const REQUESTS = 5_000
const FLUSH_EVERY = 1_000
const MAX_ROWS = 100
/** Network rows, one overflow row per reason (4 reasons in this flood), one global overflow row. */
const BOUND_PER_FLUSH = MAX_ROWS + 4 + 1

const forged = () => formatApiKey({ prefix: 'fraiseql_live', region: 'global' }, randomBytes)

/** A distinct source address per request: IPv6 in distinct /64s, IPv4 in distinct /24s and within one. */
function addressOf(i: number): string {
  switch (i % 3) {
    case 0:
      return `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::${(i % 97) + 1}`
    case 1:
      return `10.${(i >> 8) & 0xff}.${i & 0xff}.7`
    default:
      return `192.0.2.${i % 250}`
  }
}

interface Audited {
  event: string
  keyId: string | null
  ip: string | null
  detail: Record<string, unknown>
}

async function allRows(manager: ApiKeyManager): Promise<Audited[]> {
  const rows: Audited[] = []
  for (let after = 0; ; ) {
    const page = await manager.auditLog(after, 10_000)
    rows.push(...(page as unknown as Audited[]))
    if (page.length < 10_000) return rows
    after = page[page.length - 1]!.seq
  }
}

/**
 * Floods `manager` through the Fastify plugin with rejected keys (unknown,
 * malformed, revoked, expired), each request from its own address, flushing
 * every FLUSH_EVERY requests; checks the rows each flush wrote.
 */
async function flood(manager: ApiKeyManager, clock: { now: number }) {
  const revoked = await manager.create({ name: 'revoked' })
  await manager.revoke(revoked.keyId, 'test')
  const expired = await manager.create({ name: 'expired', expiresInDays: 1 })
  clock.now += 2 * 86_400_000
  const app: FastifyInstance = Fastify()
  try {
    await app.register(apiKeyAuth, { manager })
    app.get('/me', async () => ({ ok: true }))
    await app.ready()
    await manager.flush()
    const before = await allRows(manager)
    let seen = before.length
    const tokens = [
      () => forged(),
      () => 'fraiseql_live_not_a_key',
      () => revoked.key,
      () => expired.key,
    ]
    for (let start = 0; start < REQUESTS; start += FLUSH_EVERY) {
      for (let i = start; i < start + FLUSH_EVERY; i++) {
        const res = await app.inject({
          url: '/me',
          headers: { authorization: `Bearer ${tokens[i % tokens.length]!()}` },
          remoteAddress: addressOf(i),
        })
        expect(res.statusCode).toBe(401)
      }
      await manager.flush()
      const rows = await allRows(manager)
      const written = rows.slice(seen)
      seen = rows.length
      expect(written.every((r) => r.event === 'rejected')).toBe(true)
      expect(written.length).toBeLessThanOrEqual(BOUND_PER_FLUSH)
      expect(written.reduce((n, r) => n + Number(r.detail.count), 0)).toBe(FLUSH_EVERY)
    }
    const rows = await allRows(manager)
    const rejected = rows.filter((r) => r.event === 'rejected')
    expect(rejected.length).toBeLessThanOrEqual((REQUESTS / FLUSH_EVERY) * BOUND_PER_FLUSH)
    expect(rejected.reduce((n, r) => n + Number(r.detail.count), 0)).toBe(REQUESTS)
    // Never an individual address, never an id the caller made up.
    for (const r of rejected) {
      expect(r.ip === null || r.ip.endsWith('/24') || r.ip.endsWith('/64')).toBe(true)
      expect([null, revoked.keyId, expired.keyId]).toContain(r.keyId)
    }
    // Every management operation kept its own row: pepper, 2 created, 1 revoked.
    expect(rows.filter((r) => r.event !== 'rejected').map((r) => r.event)).toEqual([
      'pepper',
      'created',
      'revoked',
      'created',
    ])
    expect(await manager.verifyAuditChain()).toMatchObject({ ok: true })
  } finally {
    await app.close()
  }
}

describe('rejected attempts write a bounded number of audit rows per flush', () => {
  it(`SQLite: ${REQUESTS} rejected requests from distinct addresses`, async () => {
    const f = fixture({ maxRejectedRowsPerFlush: MAX_ROWS })
    try {
      await flood(f.manager, f.clock)
    } finally {
      await f.close()
    }
  }, 60_000)

  describe.skipIf(!HAS_POSTGRES)('PostgreSQL', () => {
    let db: PgSchema
    beforeAll(async () => {
      db = await createPgSchema(import.meta.url)
    })
    afterAll(async () => {
      await db.drop()
    })

    it(`${REQUESTS} rejected requests from distinct addresses`, async () => {
      const { keyManager } = countingKms()
      const { logger } = memoryLogger()
      const clock = { now: T0 }
      const store = new PostgresApiKeyStore({ pool: db.pool, schema: db.schema })
      const manager = new ApiKeyManager({
        store,
        keyManager,
        logger,
        clock: () => clock.now,
        flushIntervalMs: 3_600_000,
        maxRejectedRowsPerFlush: MAX_ROWS,
      })
      try {
        await flood(manager, clock)
      } finally {
        await manager.close()
        await store.close()
      }
    }, 120_000)
  })
})

describe('rejection aggregates', () => {
  it('one row per network and reason, with count and first/last seen; past the cap one row per reason', async () => {
    const f = fixture({ maxRejectedRowsPerFlush: 2 })
    try {
      await f.manager.initialize()
      const reject = async (token: string, ip: string) => {
        await f.manager.validate(token, { ip }).catch(() => {})
        f.clock.now += 10
      }
      await reject(forged(), '203.0.113.5')
      await reject(forged(), '203.0.113.200')
      await reject(forged(), '::ffff:203.0.113.9')
      await reject(forged(), '2001:db8:1:2::1')
      await reject(forged(), '2001:db8:1:2:ffff::9')
      await reject(forged(), '2001:db8:1:3::1') // a third network: past the cap
      await reject(forged(), '198.51.100.1')
      await reject('nope', '198.51.100.1')
      await f.manager.flush()
      const rows = (await allRows(f.manager)).filter((r) => r.event === 'rejected')
      expect(rows).toEqual([
        expect.objectContaining({
          ip: '203.0.113.0/24',
          keyId: null,
          at: T0 + 20,
          detail: { count: 3, firstAt: T0, reason: 'unknown' },
        }),
        expect.objectContaining({
          ip: '2001:db8:1:2::/64',
          detail: { count: 2, firstAt: T0 + 30, reason: 'unknown' },
        }),
        expect.objectContaining({
          ip: null,
          keyId: null,
          at: T0 + 60,
          detail: { count: 2, firstAt: T0 + 50, reason: 'unknown', overflow: true },
        }),
        expect.objectContaining({
          ip: null,
          detail: { count: 1, firstAt: T0 + 70, reason: 'malformed', overflow: true },
        }),
      ])
    } finally {
      await f.close()
    }
  })

  it('a failed flush requeues rejections under the same bound, losing no count', async () => {
    const f = fixture({ maxRejectedRowsPerFlush: 3 })
    try {
      await f.manager.initialize()
      for (let i = 0; i < 10; i++)
        await f.manager.validate(forged(), { ip: `10.0.${i}.1` }).catch(() => {})
      f.db.exec('alter table api_key_audit_log rename to audit_away')
      await expect(f.manager.flush()).rejects.toMatchObject({ code: 'ERR_API_KEY_STORE' })
      f.db.exec('alter table audit_away rename to api_key_audit_log')
      for (let i = 10; i < 20; i++)
        await f.manager.validate(forged(), { ip: `10.0.${i}.1` }).catch(() => {})
      await f.manager.flush()
      const rows = (await allRows(f.manager)).filter((r) => r.event === 'rejected')
      expect(rows.length).toBe(4)
      expect(rows.reduce((n, r) => n + Number(r.detail.count), 0)).toBe(20)
    } finally {
      await f.close()
    }
  })
})

describe('auditNetwork', () => {
  it('IPv4: the /24 holding the address (mapped IPv6 spellings too)', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const net = auditNetwork(ip)
        expect(net).toMatch(/^(\d+\.){3}0\/24$/)
        const list = new BlockList()
        list.addSubnet(net.slice(0, -3), 24, 'ipv4')
        expect(list.check(ip, 'ipv4')).toBe(true)
        expect(auditNetwork(`::ffff:${ip}`)).toBe(net)
      }),
    )
  })

  it('IPv6: the /64 holding the address', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const net = auditNetwork(ip)
        if (isIPv4(net.split('/')[0]!.replace(/\.0$/, '.1'))) return // an IPv4-mapped address
        expect(net).toMatch(/\/64$/)
        const list = new BlockList()
        list.addSubnet(net.slice(0, -3), 64, 'ipv6')
        expect(list.check(ip, 'ipv6')).toBe(true)
      }),
    )
  })

  it('anything that is not an address is one bucket', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!/^[\d.:a-fA-F]+$/.test(s))
        expect(auditNetwork(s)).toBe('invalid')
      }),
    )
  })
})
