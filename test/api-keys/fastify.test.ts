import { generateKeyPairSync, sign } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  apiKeyAdminRoutes,
  apiKeyAuth,
  apiKeyAuthenticator,
  formatApiKey,
  githubSecretScanning,
  requirePermission,
} from '../../src/api-keys/index.js'
import { setErrorDetail } from '../../src/internal/reply/fastify.js'
import { ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { type Fixture, fixture } from './helpers.js'

let f: Fixture
let app: FastifyInstance
beforeEach(() => {
  f = fixture()
})
afterEach(async () => {
  await app?.close()
  await f.close()
})

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

async function server(
  register: (app: FastifyInstance) => PromiseLike<unknown>,
): Promise<FastifyInstance> {
  app = Fastify()
  await register(app)
  app.get('/me', async (request) => ({ apiKey: request.apiKey, auth: request.auth }))
  app.get('/orders', { preHandler: requirePermission('orders:read') }, async () => ({ ok: true }))
  app.get('/health', { config: { apiKey: false } }, async () => ({ ok: true }))
  await app.ready()
  return app
}

describe('apiKeyAuth', () => {
  it('authenticates Bearer and X-API-Key, setting request.apiKey and request.auth', async () => {
    const { key, keyId } = await f.manager.create({
      name: 'x',
      tier: 'pro',
      permissions: ['orders:read'],
    })
    await server((a) => a.register(apiKeyAuth, { manager: f.manager }))
    for (const headers of [
      bearer(key),
      { authorization: `bearer   ${key}` },
      { 'x-api-key': key },
    ]) {
      const res = await app.inject({ url: '/me', headers })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({
        apiKey: {
          keyId,
          tier: 'pro',
          permissions: ['orders:read'],
          expiresAt: new Date(f.clock.now + 90 * 86_400_000).toISOString(),
          shouldRotate: false,
        },
        auth: { principal: keyId, kind: 'apiKey', permissions: ['orders:read'], tier: 'pro' },
      })
    }
  })

  it('no key: 401 ERR_AUTH_REQUIRED with a Bearer challenge; skipped routes and required: false let it through', async () => {
    await server((a) => a.register(apiKeyAuth, { manager: f.manager, realm: 'orders' }))
    const res = await app.inject({ url: '/me' })
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer realm="orders"')
    expect(res.json()).toMatchObject({ code: 'ERR_AUTH_REQUIRED' })
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200)
    await app.close()
    await server((a) => a.register(apiKeyAuth, { manager: f.manager, required: false }))
    expect((await app.inject({ url: '/me' })).json()).toEqual({ apiKey: null, auth: null })
    expect((await app.inject({ url: '/me', headers: bearer('wrong') })).statusCode).toBe(401)
  })

  it('every refused key gets the same 401: same body, ERR_API_KEY_INVALID, invalid_token challenge', async () => {
    const { key: revoked, keyId } = await f.manager.create({ name: 'r' })
    await f.manager.revoke(keyId, 'x')
    const { key: expired } = await f.manager.create({ name: 'e', expiresInDays: 1 })
    const { key: fenced } = await f.manager.create({ name: 'f', allowedIps: ['10.0.0.0/8'] })
    await server((a) => a.register(apiKeyAuth, { manager: f.manager }))
    f.clock.now += 2 * 86_400_000
    const answers = new Set<string>()
    for (const key of [
      'garbage',
      formatApiKey({ prefix: 'fraiseql_live', region: 'eu' }),
      revoked,
      expired,
      fenced,
    ]) {
      const res = await app.inject({ url: '/me', headers: bearer(key) })
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toBe('Bearer realm="api", error="invalid_token"')
      answers.add(res.body)
    }
    expect([...answers]).toEqual(['{"detail":"Invalid API key","code":"ERR_API_KEY_INVALID"}'])
    // errorDetail 'minimal' does not reveal the reason either.
    await app.close()
    await server(async (a) => {
      await a.register(apiKeyAuth, { manager: f.manager })
      await setErrorDetail(a, 'minimal')
    })
    const res = await app.inject({ url: '/me', headers: bearer(revoked) })
    expect(res.json()).toMatchObject({ code: 'ERR_API_KEY_INVALID' })
  })

  it('requirePermission: 403 ERR_AUTH_FORBIDDEN without it, wildcards grant it', async () => {
    const { key: reader } = await f.manager.create({ name: 'r', permissions: ['orders:read'] })
    const { key: none } = await f.manager.create({ name: 'n', permissions: ['users:read'] })
    const { key: wild } = await f.manager.create({ name: 'w', permissions: ['orders:*'] })
    await server((a) => a.register(apiKeyAuth, { manager: f.manager }))
    expect((await app.inject({ url: '/orders', headers: bearer(reader) })).statusCode).toBe(200)
    expect((await app.inject({ url: '/orders', headers: bearer(wild) })).statusCode).toBe(200)
    const res = await app.inject({ url: '/orders', headers: bearer(none) })
    expect(res.statusCode).toBe(403)
    expect(res.json()).toMatchObject({ code: 'ERR_AUTH_FORBIDDEN' })
    expect(typeof app.requirePermission).toBe('function')
    expect(() => requirePermission(...([] as unknown as [string]))).toThrow(TypeError)
  })

  it('limits each key by its tier (the key id is the limiter key), with RateLimit headers and a 429', async () => {
    const { key: free } = await f.manager.create({ name: 'free', tier: 'free' })
    const { key: free2 } = await f.manager.create({ name: 'free2', tier: 'free' })
    const { key: pro } = await f.manager.create({ name: 'pro', tier: 'pro' })
    const { key: other } = await f.manager.create({ name: 'other', tier: 'unlisted' })
    await server((a) =>
      a.register(apiKeyAuth, {
        manager: f.manager,
        rateLimit: {
          tiers: { free: { max: 2, windowMs: 60_000 }, pro: { max: 5, windowMs: 60_000 } },
          clock: () => f.clock.now,
        },
      }),
    )
    const statuses = async (key: string, n: number) => {
      const out: number[] = []
      for (let i = 0; i < n; i++)
        out.push((await app.inject({ url: '/me', headers: bearer(key) })).statusCode)
      return out
    }
    expect(await statuses(free, 3)).toEqual([200, 200, 429])
    expect(await statuses(free2, 2)).toEqual([200, 200])
    expect(await statuses(pro, 6)).toEqual([200, 200, 200, 200, 200, 429])
    expect(await statuses(other, 10)).toEqual(Array(10).fill(200))
    const res = await app.inject({ url: '/me', headers: bearer(free) })
    expect(res.headers['retry-after']).toBeDefined()
    expect(res.json()).toMatchObject({ code: 'ERR_HTTP_RATE_LIMITED' })
    const ok = await app.inject({ url: '/me', headers: bearer(pro) })
    expect(ok.statusCode).toBe(429)
    f.clock.now += 120_000
    const later = await app.inject({ url: '/me', headers: bearer(free) })
    expect(later.statusCode).toBe(200)
    expect(later.headers['ratelimit-policy']).toBe('"default";q=2;w=60')
  })

  it('a client over its failed-attempt limit gets 429 instead of more lookups', async () => {
    await f.close()
    f = fixture({ failedAttempts: { max: 3, windowMs: 60_000 } })
    await server((a) => a.register(apiKeyAuth, { manager: f.manager }))
    const codes: number[] = []
    for (let i = 0; i < 6; i++) {
      const key = formatApiKey({ prefix: 'fraiseql_live', region: 'eu' })
      codes.push((await app.inject({ url: '/me', headers: bearer(key) })).statusCode)
    }
    expect(codes.slice(0, 3)).toEqual([401, 401, 401])
    expect(codes.at(-1)).toBe(429)
  })
})

describe('apiKeyAuthenticator with ProfileEnforcer', () => {
  it('plugs into the authentication hook and the per-principal tiers', async () => {
    const { key, keyId } = await f.manager.create({ name: 'x', tier: 'free', permissions: ['a'] })
    app = Fastify()
    const enforcer = new ProfileEnforcer(STANDARD, {
      authenticate: apiKeyAuthenticator(f.manager),
      tiers: { free: { max: 2, windowMs: 60_000 } },
    })
    await enforcer.applyTo(app)
    app.get('/me', async (request) => ({ auth: request.auth, apiKey: request.apiKey }))
    await app.ready()
    const first = await app.inject({ url: '/me', headers: { 'x-api-key': key } })
    expect(first.statusCode).toBe(200)
    expect(first.json()).toMatchObject({
      auth: { principal: keyId, kind: 'apiKey', permissions: ['a'], tier: 'free' },
      apiKey: { keyId, tier: 'free' },
    })
    expect((await app.inject({ url: '/me', headers: bearer(key) })).statusCode).toBe(200)
    expect((await app.inject({ url: '/me', headers: bearer(key) })).statusCode).toBe(429)
    const refused = await app.inject({ url: '/me', headers: bearer('nope') })
    expect(refused.statusCode).toBe(401)
    expect(refused.json()).toMatchObject({ code: 'ERR_AUTH_REQUIRED' })
  })
})

describe('apiKeyAdminRoutes', () => {
  async function admin(): Promise<{ adminKey: string; adminId: string }> {
    const created = await f.manager.create({ name: 'admin', permissions: ['api-keys:admin'] })
    await server(async (a) => {
      await a.register(apiKeyAuth, { manager: f.manager })
      await a.register(apiKeyAdminRoutes, { manager: f.manager })
    })
    return { adminKey: created.key, adminId: created.keyId }
  }

  it('creates (key once, no-store), lists, reads, rotates and revokes, with the admin as actor', async () => {
    const { adminKey, adminId } = await admin()
    const headers = bearer(adminKey)
    const created = await app.inject({
      method: 'POST',
      url: '/admin/api-keys',
      headers,
      payload: {
        name: 'svc',
        region: 'eu_west_1',
        tier: 'pro',
        permissions: ['orders:read'],
        expiresInDays: 30,
      },
    })
    expect(created.statusCode).toBe(201)
    expect(created.headers['cache-control']).toBe('no-store')
    const body = created.json()
    expect(body).toMatchObject({ name: 'svc', tier: 'pro', status: 'active', createdBy: adminId })
    expect((await f.manager.validate(body.key)).keyId).toBe(body.keyId)

    const list = await app.inject({ url: '/admin/api-keys', headers })
    expect(list.statusCode).toBe(200)
    expect(
      list
        .json()
        .keys.map((k: { keyId: string }) => k.keyId)
        .sort(),
    ).toEqual([body.keyId, adminId].sort())
    expect(list.body).not.toContain(body.key)
    expect(
      (await app.inject({ url: `/admin/api-keys/${body.keyId}`, headers })).json(),
    ).toMatchObject({
      keyId: body.keyId,
      start: body.start,
    })

    const rotated = await app.inject({
      method: 'POST',
      url: `/admin/api-keys/${body.keyId}/rotate`,
      headers,
      payload: { graceMinutes: 5 },
    })
    expect(rotated.statusCode).toBe(201)
    expect(rotated.json()).toMatchObject({ previous: { keyId: body.keyId, status: 'grace' } })
    const revoked = await app.inject({
      method: 'DELETE',
      url: `/admin/api-keys/${rotated.json().keyId}`,
      headers,
      payload: { reason: 'no longer needed' },
    })
    expect(revoked.statusCode).toBe(200)
    expect(revoked.json()).toMatchObject({ status: 'revoked', revokedReason: 'no longer needed' })
    await f.manager.flush()
    const audit = await f.manager.auditLog()
    expect(audit.filter((r) => r.event === 'revoked')).toMatchObject([{ actor: adminId }])
  })

  it('validates bodies with zod (400 naming the field), 404 for unknown ids, 409 for a revoked key', async () => {
    const { adminKey } = await admin()
    const headers = bearer(adminKey)
    const bad = await app.inject({
      method: 'POST',
      url: '/admin/api-keys',
      headers,
      payload: { name: 'x', region: 'EU', expiresInDays: 0 },
    })
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toMatchObject({ code: 'ERR_API_KEY_REQUEST_INVALID' })
    expect(bad.json().detail).toContain('`region`')
    const unknown = await app.inject({
      method: 'DELETE',
      url: '/admin/api-keys/AbCdEfGhIjKl',
      headers,
    })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json()).toMatchObject({ code: 'ERR_API_KEY_NOT_FOUND' })
    expect((await app.inject({ url: '/admin/api-keys/not-an-id', headers })).statusCode).toBe(404)
    const { keyId } = await f.manager.create({ name: 'gone' })
    await f.manager.revoke(keyId)
    const conflict = await app.inject({
      method: 'POST',
      url: `/admin/api-keys/${keyId}/rotate`,
      headers,
    })
    expect(conflict.statusCode).toBe(409)
    expect(conflict.json()).toMatchObject({ code: 'ERR_API_KEY_CONFLICT' })
  })

  it('refuses callers without the admin permission (403) or without a key (401)', async () => {
    await admin()
    const { key } = await f.manager.create({ name: 'user', permissions: ['orders:read'] })
    const res = await app.inject({ url: '/admin/api-keys', headers: bearer(key) })
    expect(res.statusCode).toBe(403)
    expect((await app.inject({ url: '/admin/api-keys' })).statusCode).toBe(401)
  })
})

describe('githubSecretScanning', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const signed = (body: string, key = privateKey) =>
    sign('sha256', Buffer.from(body), { key, dsaEncoding: 'der' }).toString('base64')

  async function leakServer(publicKeys: unknown = [{ key_identifier: 'k1', key: pem }]) {
    await server(async (a) => {
      await a.register(apiKeyAuth, { manager: f.manager })
      await a.register(githubSecretScanning, {
        manager: f.manager,
        publicKeys: publicKeys as never,
        refreshIntervalMs: 0,
      })
    })
  }

  const post = (body: string, headers: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/api-keys/secret-scanning',
      headers: { 'content-type': 'application/json', ...headers },
      payload: body,
    })

  it('verifies the signature over the raw body, revokes exact matches, labels every token', async () => {
    const { key, keyId } = await f.manager.create({ name: 'leaky' })
    const forged = formatApiKey({ prefix: 'fraiseql_live', region: 'eu', keyId })
    await leakServer()
    // Whitespace GitHub might send is part of what was signed.
    const body = `[ {"token":"${key}","type":"fraiseql_api_key","url":"https://github.com/o/r/blob/x","source":"commit"},\n {"token":"${forged}","type":"fraiseql_api_key","url":"u","source":"commit"} ]`
    const res = await post(body, {
      'github-public-key-identifier': 'k1',
      'github-public-key-signature': signed(body),
    })
    expect(res.statusCode).toBe(200)
    const labels = res.json() as Array<{ token_hash: string; label: string }>
    expect(labels.map((l) => l.label)).toEqual(['true_positive', 'false_positive'])
    expect(res.body).not.toContain(key)
    expect(await f.manager.get(keyId)).toMatchObject({
      status: 'revoked',
      revokedReason: 'leaked: github:commit https://github.com/o/r/blob/x',
    })
    await f.manager.flush()
    expect((await f.manager.auditLog()).find((r) => r.event === 'revoked')).toMatchObject({
      actor: 'github-secret-scanning',
    })
  })

  it('refuses a bad, missing or unknown-key signature with 401 and revokes nothing', async () => {
    const { key, keyId } = await f.manager.create({ name: 'safe' })
    await leakServer()
    const body = `[{"token":"${key}","type":"t","url":"u","source":"s"}]`
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
    for (const headers of [
      {},
      { 'github-public-key-identifier': 'k1' },
      { 'github-public-key-identifier': 'k1', 'github-public-key-signature': signed(body, other) },
      { 'github-public-key-identifier': 'k2', 'github-public-key-signature': signed(body) },
      { 'github-public-key-identifier': 'k1', 'github-public-key-signature': signed(`${body} `) },
      { 'github-public-key-identifier': 'k1', 'github-public-key-signature': '!!' },
    ]) {
      const res = await post(body, headers)
      expect(res.statusCode).toBe(401)
      expect(res.json()).toMatchObject({ code: 'ERR_API_KEY_LEAK_SIGNATURE_INVALID' })
    }
    expect((await f.manager.get(keyId))?.status).toBe('active')
    const notJson = '{"token":'
    const res = await post(notJson, {
      'github-public-key-identifier': 'k1',
      'github-public-key-signature': signed(notJson),
    })
    expect(res.statusCode).toBe(400)
  })

  it('fetches keys through the given function, again when a report names a new identifier', async () => {
    let fetches = 0
    let current = [{ key_identifier: 'old', key: pem, is_current: true }]
    await leakServer(async () => {
      fetches++
      return { public_keys: current }
    })
    expect(fetches).toBe(1)
    current = [{ key_identifier: 'rotated', key: pem, is_current: true }]
    const body = '[{"token":"x","type":"t","url":"u","source":"s"}]'
    const res = await post(body, {
      'github-public-key-identifier': 'rotated',
      'github-public-key-signature': signed(body),
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject([{ label: 'false_positive' }])
    expect(fetches).toBe(2)
  })
})
