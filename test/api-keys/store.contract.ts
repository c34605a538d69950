/**
 * The contract every API-key store passes: SQLite and PostgreSQL run this
 * same suite, and so can a store of your own. Two instances share one
 * keyspace (two connections, two pools): every guarantee must hold across
 * them, as across processes.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type ApiKeyChange,
  type ApiKeyRow,
  type ApiKeyStore,
  type AuditEventInput,
  verifyAuditRecords,
} from '../../src/api-keys/index.js'
import { WAIT } from './helpers.js'

export interface ApiKeyStoreHarness {
  /** A store over a keyspace no other test uses, not yet migrated. */
  store: ApiKeyStore
  /** Another instance over the same keyspace, with its own connection. */
  other(): Promise<ApiKeyStore>
  close?(): Promise<void>
}

const T0 = 1_795_000_000_000
const b62 = () => randomBytes(12).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12)

/** A realistic row; the hash is random bytes standing for an HMAC. */
export function apiKeyRow(overrides: Partial<ApiKeyRow> = {}): ApiKeyRow {
  const keyId = overrides.keyId ?? b62()
  return {
    keyId,
    hash: new Uint8Array(randomBytes(32)),
    pepperVersion: 1,
    name: 'billing ✓ "quoted"',
    prefix: 'fraiseql_live',
    region: 'eu_west_1',
    start: `fraiseql_live_eu_west_1_${keyId}_abcd`,
    tier: 'pro',
    permissions: ['orders:read', 'orders:write'],
    allowedIps: ['10.0.0.0/8', '2001:db8::/32'],
    createdAt: T0,
    expiresAt: T0 + 90 * 86_400_000,
    rotatedAt: null,
    graceUntil: null,
    replacedBy: null,
    revokedAt: null,
    revokedReason: null,
    lastUsedAt: null,
    createdBy: 'admin-1',
    encryptedKey: null,
    ...overrides,
  }
}

const audit = (
  event: AuditEventInput['event'],
  keyId: string | null,
  at = T0,
): AuditEventInput => ({
  event,
  keyId,
  actor: 'admin-1',
  ip: '203.0.113.7',
  at,
  detail: { note: 'x' },
})

export function describeApiKeyStoreContract(
  name: string,
  factory: () => Promise<ApiKeyStoreHarness>,
): void {
  describe(`ApiKeyStore contract: ${name}`, () => {
    let h: ApiKeyStoreHarness
    let store: ApiKeyStore
    let other: ApiKeyStore
    beforeEach(async () => {
      h = await factory()
      store = h.store
      other = await h.other()
      await Promise.all([store.migrate(), other.migrate(), store.migrate()])
      await other.migrate()
    })
    afterEach(async () => {
      await h.close?.()
    })

    it('a row round-trips exactly, through either instance', async () => {
      const row = apiKeyRow({ encryptedKey: 'sealed-bytes', lastUsedAt: T0 + 5 })
      expect(await store.insertKey(row, audit('created', row.keyId))).toBe(true)
      expect(await store.getKey(row.keyId)).toStrictEqual(row)
      expect(await other.getKey(row.keyId)).toStrictEqual(row)
      const bare = apiKeyRow({ allowedIps: null, permissions: [], createdBy: null })
      await store.insertKey(bare, audit('created', bare.keyId))
      expect(await other.getKey(bare.keyId)).toStrictEqual(bare)
      expect(await store.getKey(b62())).toBeUndefined()
    })

    it('insertKey with an existing id adds nothing, changes nothing and appends no audit row', async () => {
      const row = apiKeyRow()
      await store.insertKey(row, audit('created', row.keyId))
      const clash = apiKeyRow({ keyId: row.keyId, name: 'other' })
      expect(await other.insertKey(clash, audit('created', row.keyId))).toBe(false)
      expect(await store.getKey(row.keyId)).toStrictEqual(row)
      expect(await store.readAudit(0, 100)).toHaveLength(1)
    })

    it('listKeys is newest first, can leave revoked keys out, and pages', async () => {
      const rows = [0, 1, 2, 3].map((i) => apiKeyRow({ createdAt: T0 + i * 1000 }))
      for (const r of rows) await store.insertKey(r, audit('created', r.keyId))
      await store.revokeKey(
        rows[1]!.keyId,
        { revokedAt: T0 + 9, reason: 'r' },
        audit('revoked', rows[1]!.keyId),
      )
      const ids = (await other.listKeys()).map((r) => r.keyId)
      expect(ids).toEqual([3, 2, 1, 0].map((i) => rows[i]!.keyId))
      expect((await store.listKeys({ includeRevoked: false })).map((r) => r.keyId)).toEqual(
        [3, 2, 0].map((i) => rows[i]!.keyId),
      )
      expect((await store.listKeys({ limit: 2, offset: 1 })).map((r) => r.keyId)).toEqual(
        [2, 1].map((i) => rows[i]!.keyId),
      )
    })

    it('rotateKey marks the old row, inserts the replacement and appends both events, once', async () => {
      const old = apiKeyRow()
      await store.insertKey(old, audit('created', old.keyId))
      const next = apiKeyRow({ createdAt: T0 + 10 })
      const change = { rotatedAt: T0 + 10, graceUntil: T0 + 3_600_010, replacement: next }
      const events = [audit('rotated', old.keyId), audit('created', next.keyId)]
      expect(await store.rotateKey(old.keyId, change, events)).toBe('rotated')
      expect(await other.getKey(old.keyId)).toStrictEqual({
        ...old,
        rotatedAt: T0 + 10,
        graceUntil: T0 + 3_600_010,
        replacedBy: next.keyId,
      })
      expect(await other.getKey(next.keyId)).toStrictEqual(next)
      const again = { ...change, replacement: apiKeyRow() }
      expect(await other.rotateKey(old.keyId, again, events)).toBe('conflict')
      expect(await store.getKey(again.replacement.keyId)).toBeUndefined()
      expect(await store.rotateKey(b62(), again, events)).toBe('missing')
      expect((await store.readAudit(0, 100)).map((a) => a.event)).toEqual([
        'created',
        'rotated',
        'created',
      ])
    })

    it('a revoked key cannot be rotated; concurrent rotations of one key: exactly one wins', async () => {
      const a = apiKeyRow()
      const b = apiKeyRow()
      await store.insertKey(a, audit('created', a.keyId))
      await store.insertKey(b, audit('created', b.keyId))
      await store.revokeKey(a.keyId, { revokedAt: T0, reason: 'x' }, audit('revoked', a.keyId))
      const rotate = (s: ApiKeyStore, id: string) =>
        s.rotateKey(id, { rotatedAt: T0, graceUntil: T0, replacement: apiKeyRow() }, [
          audit('rotated', id),
        ])
      expect(await rotate(other, a.keyId)).toBe('conflict')
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) => rotate(i % 2 === 0 ? store : other, b.keyId)),
      )
      expect(outcomes.filter((o) => o === 'rotated')).toHaveLength(1)
      expect(outcomes.filter((o) => o === 'conflict')).toHaveLength(7)
      expect(await store.listKeys()).toHaveLength(3)
    })

    it('revokeKey: the first revocation wins; later ones change nothing and append nothing', async () => {
      const row = apiKeyRow()
      await store.insertKey(row, audit('created', row.keyId))
      const first = await store.revokeKey(
        row.keyId,
        { revokedAt: T0 + 1, reason: 'leaked' },
        audit('revoked', row.keyId),
      )
      expect(first).toStrictEqual({ ...row, revokedAt: T0 + 1, revokedReason: 'leaked' })
      const second = await other.revokeKey(
        row.keyId,
        { revokedAt: T0 + 2, reason: 'again' },
        audit('revoked', row.keyId),
      )
      expect(second).toStrictEqual(first)
      expect(
        await store.revokeKey(b62(), { revokedAt: T0, reason: 'x' }, audit('revoked', null)),
      ).toBeUndefined()
      expect((await store.readAudit(0, 100)).map((a) => a.event)).toEqual(['created', 'revoked'])
    })

    it('flush moves last use forward only, rehashes only from the expected pepper version, and appends audit', async () => {
      const a = apiKeyRow({ lastUsedAt: T0 + 100 })
      const b = apiKeyRow()
      await store.insertKey(a, audit('created', a.keyId))
      await store.insertKey(b, audit('created', b.keyId))
      const newHash = new Uint8Array(randomBytes(32))
      await other.flush({
        lastUsed: new Map([
          [a.keyId, T0 + 50],
          [b.keyId, T0 + 70],
        ]),
        rehash: [
          { keyId: a.keyId, hash: newHash, pepperVersion: 2, fromVersion: 1 },
          { keyId: b.keyId, hash: newHash, pepperVersion: 3, fromVersion: 2 },
        ],
        audit: [audit('validated', a.keyId), audit('rejected', null)],
      })
      expect(await store.getKey(a.keyId)).toStrictEqual({
        ...a,
        hash: newHash,
        pepperVersion: 2,
      })
      expect(await store.getKey(b.keyId)).toStrictEqual({ ...b, lastUsedAt: T0 + 70 })
      expect((await store.readAudit(2, 100)).map((r) => r.event)).toEqual(['validated', 'rejected'])
      await store.flush({ lastUsed: new Map(), rehash: [], audit: [] })
      expect(await store.readAudit(0, 100)).toHaveLength(4)
    })

    it('peppers: one row per version, the first writer wins, listed oldest first', async () => {
      expect(await store.listPeppers()).toEqual([])
      const p1 = { version: 1, wrapped: '{"w":1}', createdAt: T0 }
      const results = await Promise.all([
        store.addPepper(p1, audit('pepper', null)),
        other.addPepper({ ...p1, wrapped: '{"w":"other"}' }, audit('pepper', null)),
      ])
      expect(results.filter(Boolean)).toHaveLength(1)
      await other.addPepper(
        { version: 2, wrapped: '{"w":2}', createdAt: T0 + 1 },
        audit('pepper', null),
      )
      const peppers = await store.listPeppers()
      expect(peppers.map((p) => p.version)).toEqual([1, 2])
      expect(peppers[1]).toEqual({ version: 2, wrapped: '{"w":2}', createdAt: T0 + 1 })
      expect((await store.readAudit(0, 10)).map((r) => r.event)).toEqual(['pepper', 'pepper'])
    })

    it('the audit chain stays one verifiable chain under concurrent writers from both instances', async () => {
      const rows = Array.from({ length: 12 }, () => apiKeyRow())
      await Promise.all(
        rows.map((r, i) => (i % 2 === 0 ? store : other).insertKey(r, audit('created', r.keyId))),
      )
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? other : store).appendAudit([
            audit('validated', rows[i]!.keyId, T0 + i),
            audit('rejected', null, T0 + i),
          ]),
        ),
      )
      const all = await store.readAudit(0, 1000)
      expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1))
      expect(verifyAuditRecords(all)).toMatchObject({ ok: true, checked: 32 })
      expect((await other.readAudit(30, 10)).map((r) => r.seq)).toEqual([31, 32])
      expect(all[0]).toMatchObject({ actor: 'admin-1', ip: '203.0.113.7', detail: { note: 'x' } })
    })

    it("subscribe delivers the other instance's creations, rotations and revocations", async () => {
      const seen: ApiKeyChange[] = []
      const stop = await store.subscribe(
        (c) => seen.push(c),
        () => {},
      )
      const a = apiKeyRow()
      const next = apiKeyRow()
      await other.insertKey(a, audit('created', a.keyId))
      await other.rotateKey(a.keyId, { rotatedAt: T0, graceUntil: T0, replacement: next }, [
        audit('rotated', a.keyId),
        audit('created', next.keyId),
      ])
      await other.revokeKey(
        next.keyId,
        { revokedAt: T0, reason: 'x' },
        audit('revoked', next.keyId),
      )
      await vi.waitFor(() => expect(seen.map((c) => c.event)).toContain('revoked'), WAIT)
      expect(seen.filter((c) => c.event !== 'pepper')).toEqual([
        { event: 'created', keyId: a.keyId },
        { event: 'rotated', keyId: a.keyId },
        { event: 'created', keyId: next.keyId },
        { event: 'revoked', keyId: next.keyId },
      ])
      await stop()
      await stop()
    })
  })
}
