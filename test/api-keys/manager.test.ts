import { createHmac } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type ApiKeyLifecycleEvent,
  ApiKeyManager,
  ApiKeyRejectedError,
  formatApiKey,
  parseApiKey,
} from '../../src/api-keys/index.js'
import { codeOf, DAY, expectConfigErrors, type Fixture, fixture, T0, WAIT } from './helpers.js'

let f: Fixture
afterEach(async () => {
  await f?.close()
})

const create = (m: ApiKeyManager, extra: Record<string, unknown> = {}) =>
  m.create({
    name: 'billing',
    region: 'eu_west_1',
    tier: 'pro',
    permissions: ['orders:read'],
    ...extra,
  })

/** A key with a valid checksum and a random id: what an attacker can forge. */
const forged = () => formatApiKey({ prefix: 'fraiseql_live', region: 'eu_west_1' })

describe('ApiKeyManager: create and validate', () => {
  beforeEach(() => {
    f = fixture()
  })

  it('create returns the key once with its record; validate returns exactly what it grants', async () => {
    const created = await create(f.manager, { expiresInDays: 30 })
    expect(parseApiKey(created.key)).toMatchObject({
      prefix: 'fraiseql_live',
      region: 'eu_west_1',
      keyId: created.keyId,
    })
    expect(created.record).toMatchObject({
      keyId: created.keyId,
      name: 'billing',
      tier: 'pro',
      permissions: ['orders:read'],
      status: 'active',
      createdAt: new Date(T0),
      expiresAt: new Date(T0 + 30 * DAY),
      start: created.key.slice(0, created.key.length - 34),
      shouldRotate: false,
    })
    expect(created.record).not.toHaveProperty('hash')
    expect(await f.manager.validate(created.key)).toStrictEqual({
      keyId: created.keyId,
      tier: 'pro',
      permissions: ['orders:read'],
      expiresAt: new Date(T0 + 30 * DAY),
      shouldRotate: false,
    })
  })

  it('a warm key is recognized by its fingerprint; another secret under the same id never is', async () => {
    const { key, keyId } = await create(f.manager)
    for (let i = 0; i < 3; i++) expect((await f.manager.validate(key)).keyId).toBe(keyId)
    // Same prefix, region and id, valid checksum, another secret: what a
    // client who knows the id (it is in logs and the admin API) can forge.
    const { prefix, region } = parseApiKey(key)
    for (let i = 0; i < 20; i++) {
      const sibling = formatApiKey({ prefix, region, keyId })
      expect(await codeOf(f.manager.validate(sibling))).toBe('ERR_API_KEY_UNKNOWN')
    }
    // Another region or prefix around the same id and secret is another key too.
    const secret = key.slice(-38, -6)
    for (const other of [
      formatApiKey({ prefix, region: 'us_east_1', keyId, secret }),
      formatApiKey({ prefix: 'fraiseql_test', region, keyId, secret }),
    ]) {
      expect(await codeOf(f.manager.validate(other))).toBe('ERR_API_KEY_UNKNOWN')
    }
    expect((await f.manager.validate(key)).keyId).toBe(keyId)
  })

  it('the store keeps HMAC-SHA256(pepper, key), never the key; test keys use the test prefix', async () => {
    const { key, keyId } = await create(f.manager, { prefix: 'fraiseql_test' })
    expect(key.startsWith('fraiseql_test_eu_west_1_')).toBe(true)
    const row = f.db.prepare('select * from api_keys where key_id = ?').get(keyId) as Record<
      string,
      unknown
    >
    expect((row.hash as Buffer).length).toBe(32)
    expect(JSON.stringify(row)).not.toContain(parseApiKey(key).secret)
    expect(row.encrypted_key).toBeNull()
    // Not a bare (unpeppered) hash of the key.
    expect(row.hash).not.toEqual(createHmac('sha256', '').update(key).digest())
    expect(await codeOf(f.manager.create({ name: 'x', prefix: 'acme_live' }))).toBe(
      'ERR_API_KEY_CONFLICT',
    )
  })

  it('every rejection is typed by reason but says the same thing', async () => {
    const { key, keyId } = await create(f.manager)
    const wrongSecret = formatApiKey({ prefix: 'fraiseql_live', region: 'eu_west_1', keyId })
    const cases: Array<[string, string]> = [
      ['not a key', 'ERR_API_KEY_MALFORMED'],
      [`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`, 'ERR_API_KEY_MALFORMED'],
      [forged(), 'ERR_API_KEY_UNKNOWN'],
      [wrongSecret, 'ERR_API_KEY_UNKNOWN'],
      [key.replace('eu_west_1', 'eu_west_2'), 'ERR_API_KEY_MALFORMED'],
    ]
    for (const [candidate, code] of cases) {
      let err: unknown
      try {
        await f.manager.validate(candidate)
      } catch (e) {
        err = e
      }
      expect(err, code).toBeInstanceOf(ApiKeyRejectedError)
      expect(err).toMatchObject({ code, statusCode: 401, message: 'Invalid API key' })
    }
  })

  it('zero KMS calls and zero writes per validation; a cold cache costs one read, shared by concurrent callers', async () => {
    const { key } = await create(f.manager)
    const other = f.peer()
    await other.initialize()
    const kms = f.kmsCalls()
    const writes = f.counted.writes()
    const reads = f.counted.reads()
    // A fresh process: the first validations miss the cache together.
    const cold = f.peer({ store: f.counted.store })
    await cold.initialize()
    const kmsAfterStart = f.kmsCalls()
    expect(kmsAfterStart - kms).toBe(1) // one unwrap of the pepper, at start
    const readsAfterStart = f.counted.reads()
    await Promise.all(Array.from({ length: 20 }, () => cold.validate(key)))
    for (let i = 0; i < 500; i++) await cold.validate(key)
    expect(f.counted.calls.getKey).toBe(1)
    expect(f.counted.reads() - readsAfterStart).toBe(1)
    expect(f.kmsCalls()).toBe(kmsAfterStart)
    expect(f.counted.writes()).toBe(writes)
    // The manager that created the key has it cached already: no read at all.
    for (let i = 0; i < 100; i++) await f.manager.validate(key)
    expect(f.counted.reads() - readsAfterStart).toBe(1)
    expect(reads).toBeGreaterThan(0)
    // Writes happen in the flush, in one transaction.
    await cold.flush()
    expect(f.counted.writes()).toBe(writes + 1)
  })

  it('forged ids: a repeated one costs one read (negative cache); many from one IP hit the failed-attempt limit (429), not the database', async () => {
    f = fixture({ failedAttempts: { max: 5, windowMs: 60_000 } })
    const { key } = await create(f.manager)
    const one = forged()
    const reads0 = f.counted.calls.getKey ?? 0
    for (let i = 0; i < 3; i++) {
      expect(await codeOf(f.manager.validate(one, { ip: '198.51.100.9' }))).toBe(
        'ERR_API_KEY_UNKNOWN',
      )
    }
    expect((f.counted.calls.getKey ?? 0) - reads0).toBe(1)
    const codes: string[] = []
    for (let i = 0; i < 20; i++)
      codes.push(await codeOf(f.manager.validate(forged(), { ip: '198.51.100.9' })))
    // At most `max` lookups reach the database, the repeated id included.
    expect((f.counted.calls.getKey ?? 0) - reads0).toBeLessThanOrEqual(5)
    expect(codes.filter((c) => c === 'ERR_HTTP_RATE_LIMITED').length).toBeGreaterThanOrEqual(17)
    // IPv4-mapped IPv6 is the same client.
    expect(await codeOf(f.manager.validate(forged(), { ip: '::ffff:198.51.100.9' }))).toBe(
      'ERR_HTTP_RATE_LIMITED',
    )
    // A valid, cached key still works from there; other clients are unaffected.
    expect((await f.manager.validate(key, { ip: '198.51.100.9' })).tier).toBe('pro')
    expect(await codeOf(f.manager.validate(forged(), { ip: '203.0.113.1' }))).toBe(
      'ERR_API_KEY_UNKNOWN',
    )
    f.clock.now += 120_000
    expect(await codeOf(f.manager.validate(forged(), { ip: '198.51.100.9' }))).toBe(
      'ERR_API_KEY_UNKNOWN',
    )
  })

  it('a key created after its id was cached as unknown validates at once (the creation clears the entry)', async () => {
    const other = f.peer()
    await other.initialize()
    const { key } = await create(f.manager)
    // The peer has not seen it yet; poll until the change arrives, then it validates.
    await vi.waitFor(async () => expect(await codeOf(other.validate(key))).toBe('resolved'), WAIT)
  })
})

describe('ApiKeyManager: lifecycle', () => {
  beforeEach(() => {
    f = fixture()
  })

  it('shouldRotate turns true at 80 % of the lifetime (day 72 of 90); events fire once per key', async () => {
    const seen: Array<[string, ApiKeyLifecycleEvent]> = []
    for (const e of ['rotationRecommended', 'expiringSoon', 'expired'] as const) {
      f.manager.on(e, (event) => seen.push([e, event]))
    }
    const { key, keyId } = await create(f.manager)
    f.clock.now = T0 + 71 * DAY
    expect((await f.manager.validate(key)).shouldRotate).toBe(false)
    f.clock.now = T0 + 72 * DAY
    expect((await f.manager.validate(key)).shouldRotate).toBe(true)
    await f.manager.validate(key)
    expect(seen.map(([e]) => e)).toEqual(['rotationRecommended'])
    expect(seen[0]![1]).toEqual({
      keyId,
      name: 'billing',
      createdAt: new Date(T0),
      expiresAt: new Date(T0 + 90 * DAY),
    })
    f.clock.now = T0 + 84 * DAY
    await f.manager.validate(key)
    f.clock.now = T0 + 90 * DAY
    expect(await codeOf(f.manager.validate(key))).toBe('ERR_API_KEY_EXPIRED')
    expect(await codeOf(f.manager.validate(key))).toBe('ERR_API_KEY_EXPIRED')
    expect(seen.map(([e]) => e)).toEqual(['rotationRecommended', 'expiringSoon', 'expired'])
    expect((await f.manager.get(keyId))?.status).toBe('expired')
  })

  it('rotate: both keys work within the grace period; after it only the new one does', async () => {
    const { key, keyId } = await create(f.manager, { expiresInDays: 30 })
    f.clock.now = T0 + DAY
    const rotated = await f.manager.rotate(keyId, { graceMinutes: 10 }, { actor: 'admin' })
    expect(rotated.keyId).not.toBe(keyId)
    expect(rotated.record).toMatchObject({
      name: 'billing',
      tier: 'pro',
      permissions: ['orders:read'],
      region: 'eu_west_1',
      expiresAt: new Date(T0 + DAY + 30 * DAY),
      createdBy: 'admin',
    })
    expect(rotated.previous).toMatchObject({
      status: 'grace',
      replacedBy: rotated.keyId,
      graceUntil: new Date(T0 + DAY + 600_000),
    })
    expect((await f.manager.validate(key)).keyId).toBe(keyId)
    expect((await f.manager.validate(rotated.key)).keyId).toBe(rotated.keyId)
    f.clock.now = T0 + DAY + 600_000
    expect(await codeOf(f.manager.validate(key))).toBe('ERR_API_KEY_EXPIRED')
    expect((await f.manager.validate(rotated.key)).keyId).toBe(rotated.keyId)
    expect((await f.manager.get(keyId))?.status).toBe('rotated')
    expect(await codeOf(f.manager.rotate(keyId))).toBe('ERR_API_KEY_CONFLICT')
    expect(await codeOf(f.manager.rotate('AbCdEfGhIjKl'))).toBe('ERR_API_KEY_NOT_FOUND')
  })

  it('revoke stops a key at once; revoking twice keeps the first reason; unknown ids are NOT_FOUND', async () => {
    const revoked: string[] = []
    f.manager.on('revoked', (e) => revoked.push(`${e.keyId}:${e.reason}`))
    const { key, keyId } = await create(f.manager)
    await f.manager.validate(key)
    const record = await f.manager.revoke(keyId, 'compromised')
    expect(record).toMatchObject({
      status: 'revoked',
      revokedReason: 'compromised',
      revokedAt: new Date(T0),
    })
    expect(await codeOf(f.manager.validate(key))).toBe('ERR_API_KEY_REVOKED')
    f.clock.now += 5
    expect((await f.manager.revoke(keyId, 'again')).revokedReason).toBe('compromised')
    expect(revoked).toEqual([`${keyId}:compromised`])
    expect(await codeOf(f.manager.revoke('AbCdEfGhIjKl', 'x'))).toBe('ERR_API_KEY_NOT_FOUND')
    expect(await codeOf(f.manager.rotate(keyId))).toBe('ERR_API_KEY_CONFLICT')
  })

  it('list and get show records (newest first), with last use from the queue before any flush', async () => {
    const a = await create(f.manager, { name: 'a' })
    f.clock.now += 1000
    const b = await create(f.manager, { name: 'b' })
    f.clock.now += 1000
    await f.manager.validate(a.key)
    expect((await f.manager.list()).map((r) => r.name)).toEqual(['b', 'a'])
    expect((await f.manager.get(a.keyId))?.lastUsedAt).toEqual(new Date(T0 + 2000))
    await f.manager.flush()
    const row = f.db.prepare('select last_used_at from api_keys where key_id = ?').get(a.keyId)
    expect(row).toEqual({ last_used_at: T0 + 2000 })
    await f.manager.revoke(b.keyId)
    expect((await f.manager.list({ includeRevoked: false })).map((r) => r.name)).toEqual(['a'])
    expect(await f.manager.get('nope')).toBeUndefined()
  })

  it('checkLifecycle emits and reports keys to rotate, expiring soon and expired', async () => {
    const fresh = await create(f.manager, { expiresInDays: 90 })
    const old = await create(f.manager, { expiresInDays: 10 })
    const gone = await create(f.manager, { expiresInDays: 1 })
    f.clock.now = T0 + 8 * DAY + 1
    const expired: string[] = []
    f.manager.on('expired', (e) => expired.push(e.keyId))
    const report = await f.manager.checkLifecycle()
    expect(report).toEqual({
      rotationRecommended: [old.keyId],
      expiringSoon: [old.keyId],
      expired: [gone.keyId],
    })
    expect(expired).toEqual([gone.keyId])
    expect(report.rotationRecommended).not.toContain(fresh.keyId)
  })

  it('a listener that throws is logged and changes nothing', async () => {
    f.manager.on('created', () => {
      throw new Error('listener failed')
    })
    const { key } = await create(f.manager)
    expect((await f.manager.validate(key)).tier).toBe('pro')
    expect(f.lines.some((l) => l.msg === 'API-key event listener threw')).toBe(true)
  })
})

describe('ApiKeyManager: per-key IP allowlist', () => {
  beforeEach(() => {
    f = fixture()
  })

  it('checks IPv4 and IPv6 CIDRs, normalizes ::ffff: addresses, and refuses a call without an address', async () => {
    const { key } = await create(f.manager, {
      allowedIps: ['10.1.0.0/16', '2001:db8::/32', '192.0.2.7'],
    })
    for (const ip of ['10.1.2.3', '::ffff:10.1.200.1', '2001:db8:1::5', '192.0.2.7']) {
      expect((await f.manager.validate(key, { ip })).tier, ip).toBe('pro')
    }
    for (const ip of ['10.2.0.1', '2001:db9::1', '::ffff:192.0.2.8', '127.0.0.1']) {
      expect(await codeOf(f.manager.validate(key, { ip })), ip).toBe('ERR_API_KEY_IP_NOT_ALLOWED')
    }
    expect(await codeOf(f.manager.validate(key))).toBe('ERR_API_KEY_IP_NOT_ALLOWED')
    expect(await codeOf(create(f.manager, { allowedIps: ['10.0.0.0/33'] }))).toBe(
      'ERR_CONFIG_INVALID',
    )
  })
})

describe('ApiKeyManager: pepper', () => {
  beforeEach(() => {
    f = fixture()
  })

  it('is created once (one KMS call), stored only wrapped, and unwrapped once per process', async () => {
    await f.manager.initialize()
    expect(f.kmsCalls()).toBe(1)
    const rows = f.db.prepare('select version, wrapped from api_key_peppers').all() as Array<{
      version: number
      wrapped: string
    }>
    expect(rows).toHaveLength(1)
    expect(JSON.parse(rows[0]!.wrapped)).toMatchObject({
      keyReference: { provider: 'local', keyId: 'app' },
      context: { 'fraiseql.api-key-pepper': '1' },
    })
    const peer = f.peer()
    await peer.initialize()
    await peer.initialize()
    expect(f.kmsCalls()).toBe(2)
    expect(await f.keyManager.dataKeys()).toEqual([]) // not a keyring DEK
  })

  it('rotatePepper: new keys use the new version; old keys still validate and are rehashed by the flush', async () => {
    const old = await create(f.manager)
    expect(await f.manager.rotatePepper()).toEqual({ version: 2 })
    const fresh = await create(f.manager)
    const versionOf = (id: string) =>
      (
        f.db.prepare('select pepper_version from api_keys where key_id = ?').get(id) as {
          pepper_version: number
        }
      ).pepper_version
    expect(versionOf(fresh.keyId)).toBe(2)
    expect(versionOf(old.keyId)).toBe(1)
    await f.manager.validate(old.key)
    await f.manager.flush()
    expect(versionOf(old.keyId)).toBe(2)
    const peer = f.peer()
    expect((await peer.validate(old.key)).keyId).toBe(old.keyId)
    expect((await peer.validate(fresh.key)).keyId).toBe(fresh.keyId)
  })
})

describe('ApiKeyManager: retainEncryptedKey', () => {
  it('keeps the key sealed by KeyManager.localEncrypt, readable with reveal(); off by default', async () => {
    f = fixture({ retainEncryptedKey: true })
    const { key, keyId } = await create(f.manager)
    const sealed = (
      f.db.prepare('select encrypted_key from api_keys').get() as { encrypted_key: string }
    ).encrypted_key
    expect(sealed).not.toContain(parseApiKey(key).secret)
    expect(await f.keyManager.localDecrypt(sealed, `api-key:${keyId}`)).toBe(key)
    expect(await f.manager.reveal(keyId)).toBe(key)
    await f.close()
    f = fixture()
    const plain = await create(f.manager)
    expect(await f.manager.reveal(plain.keyId)).toBeUndefined()
  })
})

describe('ApiKeyManager: audit chain', () => {
  beforeEach(() => {
    f = fixture()
  })

  it('records created, rotated, revoked, validated and rejected, with actor, time and ip', async () => {
    const { key, keyId } = await create(f.manager)
    await f.manager.validate(key, { ip: '::ffff:203.0.113.5' })
    await f.manager.validate(key, { ip: '::ffff:203.0.113.5' })
    await codeOf(f.manager.validate(forged(), { ip: '203.0.113.6' }))
    const rotated = await f.manager.rotate(keyId, {}, { actor: 'admin-7', ip: '192.0.2.1' })
    await f.manager.revoke(rotated.keyId, 'done', { actor: 'admin-7' })
    await f.manager.flush()
    const rows = await f.manager.auditLog()
    expect(rows.map((r) => r.event)).toEqual([
      'pepper',
      'created',
      'rotated',
      'created',
      'revoked',
      'validated',
      'rejected',
    ])
    expect(rows[2]).toMatchObject({ keyId, actor: 'admin-7', ip: '192.0.2.1' })
    expect(rows[5]).toMatchObject({ keyId, ip: '203.0.113.5', detail: { count: 2, firstAt: T0 } })
    expect(rows[6]).toMatchObject({
      keyId: null,
      ip: '203.0.113.0/24',
      detail: { count: 1, reason: 'unknown' },
    })
    expect(await f.manager.verifyAuditChain()).toMatchObject({ ok: true, checked: 7 })
  })

  it('verifyAuditChain reports the first altered, relinked or missing row', async () => {
    for (let i = 0; i < 5; i++) await create(f.manager, { name: `k${i}` })
    expect(await f.manager.verifyAuditChain()).toMatchObject({ ok: true, checked: 6 })
    const original = f.db
      .prepare('select detail, hash from api_key_audit_log where seq = 4')
      .get() as { detail: string; hash: string }
    f.db.prepare(`update api_key_audit_log set detail = '{"name":"evil"}' where seq = 4`).run()
    expect(await f.manager.verifyAuditChain()).toEqual({
      ok: false,
      checked: 3,
      brokenAt: 4,
      reason: 'hash',
    })
    // Rehashing the altered row with SHA-256 does not help: after a keyed
    // row, a legacy SHA-256 row is a downgrade (the chain is keyed).
    const rows = await f.manager.auditLog()
    const { auditHash } = await import('../../src/api-keys/index.js')
    const forgedHash = auditHash(4, rows[3]!.prevHash, rows[3]!)
    f.db.prepare('update api_key_audit_log set hash = ? where seq = 4').run(forgedHash)
    expect(await f.manager.verifyAuditChain()).toMatchObject({
      ok: false,
      brokenAt: 4,
      reason: 'hash',
    })
    f.db
      .prepare('update api_key_audit_log set detail = ?, hash = ? where seq = 4')
      .run(original.detail, original.hash)
    f.db.prepare('delete from api_key_audit_log where seq = 5').run()
    expect(await f.manager.verifyAuditChain()).toMatchObject({
      ok: false,
      brokenAt: 6,
      reason: 'gap',
    })
  })

  it('a failed flush keeps its work queued and writes it on the next flush', async () => {
    const { key, keyId } = await create(f.manager)
    await f.manager.validate(key)
    f.db.exec('alter table api_key_audit_log rename to audit_away')
    await expect(f.manager.flush()).rejects.toMatchObject({ code: 'ERR_API_KEY_STORE' })
    f.db.exec('alter table audit_away rename to api_key_audit_log')
    await f.manager.validate(key)
    await f.manager.flush()
    const rows = await f.manager.auditLog()
    expect(rows.filter((r) => r.event === 'validated')).toMatchObject([
      { keyId, detail: { count: 2 } },
    ])
    expect(f.lines.some((l) => l.msg === 'API-key flush failed; the work stays queued')).toBe(true)
  })
})

describe('ApiKeyManager: secrets never leak', () => {
  it('no key, secret or hash in any log line, error, audit row or record', async () => {
    f = fixture({ failedAttempts: { max: 2, windowMs: 60_000 } })
    const { key, keyId } = await create(f.manager)
    const hash = (f.db.prepare('select hash from api_keys').get() as { hash: Buffer }).hash
    const secret = parseApiKey(key).secret
    const texts: string[] = []
    for (const candidate of [
      key,
      `${key}x`,
      key.replace(/.$/, '0'),
      forged(),
      forged(),
      forged(),
    ]) {
      try {
        await f.manager.validate(candidate, { ip: '198.51.100.1' })
      } catch (err) {
        texts.push(`${(err as Error).message} ${(err as Error).stack} ${JSON.stringify(err)}`)
      }
    }
    await f.manager.revoke(keyId, 'r')
    await codeOf(f.manager.validate(key))
    await f.manager.flush()
    texts.push(JSON.stringify(f.lines), JSON.stringify(await f.manager.auditLog()))
    texts.push(JSON.stringify(await f.manager.list()))
    const all = texts.join('\n')
    for (const needle of [secret, key, hash.toString('hex'), hash.toString('base64')]) {
      expect(all).not.toContain(needle)
    }
  })
})

describe('ApiKeyManager: reportLeak', () => {
  it('revokes a key only when the reported token is exactly that key', async () => {
    f = fixture()
    const { key, keyId } = await create(f.manager)
    const sameId = formatApiKey({ prefix: 'fraiseql_live', region: 'eu_west_1', keyId })
    expect(await f.manager.reportLeak(sameId, { source: 'github:commit' })).toBe(false)
    expect(await f.manager.reportLeak('nonsense')).toBe(false)
    expect((await f.manager.get(keyId))?.status).toBe('active')
    expect(await f.manager.reportLeak(key, { source: 'github:commit', url: 'https://x/y' })).toBe(
      true,
    )
    expect(await f.manager.get(keyId)).toMatchObject({
      status: 'revoked',
      revokedReason: 'leaked: github:commit https://x/y',
    })
    expect(await codeOf(f.manager.validate(key))).toBe('ERR_API_KEY_REVOKED')
  })
})

describe('ApiKeyManager: across processes (SQLite file)', () => {
  it('a revocation in one manager stops the key in another sharing the database', async () => {
    f = fixture()
    const { key, keyId } = await create(f.manager)
    const peer = f.peer()
    expect((await peer.validate(key)).keyId).toBe(keyId)
    await f.manager.revoke(keyId, 'stop')
    await vi.waitFor(
      async () => expect(await codeOf(peer.validate(key))).toBe('ERR_API_KEY_REVOKED'),
      WAIT,
    )
  })
})

describe('ApiKeyManager: options', () => {
  it('refuses bad options with ERR_CONFIG_INVALID naming the field', () => {
    expectConfigErrors(
      (o) => new ApiKeyManager(o),
      [
        [{ store: {} }, 'store'],
        [{ prefixes: [] }, 'prefixes'],
        [{ prefixes: ['Bad'] }, 'prefixes[0]'],
        [{ defaultRegion: 'eu-west' }, 'defaultRegion'],
        [{ rotationThreshold: 1 }, 'rotationThreshold'],
        [{ cache: { ttlMs: -1 } }, 'cache.ttlMs'],
        [{ failedAttempts: { max: 0 } }, 'failedAttempts'],
        [{ keyManager: {} }, 'keyManager'],
        [{ surprise: true }, 'surprise'],
      ],
    )
  })

  it('works with no options at all (SQLite in memory, development KMS, with a warning)', async () => {
    const m = new ApiKeyManager({ logger: { warn: () => {}, error: () => {} } })
    const { key } = await m.create({ name: 'x' })
    expect(key.startsWith('fraiseql_live_global_')).toBe(true)
    expect((await m.validate(key)).tier).toBe('default')
    await m.close()
    expect(await codeOf(m.validate(key))).toBe('ERR_API_KEY_STORE')
  })
})
