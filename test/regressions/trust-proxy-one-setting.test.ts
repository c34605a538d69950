/**
 * Regression: the enforcer kept a proxy setting of its own (`trustProxy`)
 * next to Fastify's, read the forwarded headers itself and had to be kept in
 * sync by hand. With Fastify trusting nobody and the enforcer trusting
 * `127.0.0.1`, the TLS gate believed an `X-Forwarded-Proto: https` the rest
 * of the app (request.ip, the rate limit) did not; the other way round, the
 * gate refused requests a correctly configured Fastify knew were HTTPS.
 *
 * The gates now read Fastify's `request.protocol` and Fastify's peer trust;
 * the enforcer's `trustProxy` is accepted only when it says what Fastify's
 * says, else `applyTo` refuses with ERR_CONFIG_INVALID.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { MemoryStore, rateLimit } from '../../src/http/index.js'
import { defineProfile, ProfileEnforcer, REGULATED, STANDARD } from '../../src/profiles/index.js'

const PROXY = '10.0.0.7'
const STRANGER = '203.0.113.9'

function newApp(options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, ...options })
  onTestFinished(async () => {
    await app.close()
  })
  return app
}

async function tlsOnly(options: FastifyServerOptions) {
  const app = newApp(options)
  const enforcer = new ProfileEnforcer(REGULATED, {
    authenticate: () => ({ principal: 'alice', kind: 'apiKey', permissions: [] }),
  })
  await enforcer.applyTo(app)
  app.get('/', async (request) => ({ ip: request.ip }))
  await app.ready()
  return app
}

describe("the TLS gate reads Fastify's trustProxy", () => {
  it('a trusted proxy forwarding https is served, with the client IP Fastify computed', async () => {
    const app = await tlsOnly({ trustProxy: '10.0.0.0/8' })
    const res = await app.inject({
      url: '/',
      remoteAddress: PROXY,
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.4' },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ ip: '198.51.100.4' })
  })

  it('the last X-Forwarded-Proto entry (the nearest proxy) decides', async () => {
    const app = await tlsOnly({ trustProxy: '10.0.0.0/8' })
    const res = await app.inject({
      url: '/',
      remoteAddress: PROXY,
      headers: { 'x-forwarded-proto': 'https, http' },
    })
    expect(res.statusCode).toBe(426)
  })

  it('a forwarded header from an untrusted peer is ignored', async () => {
    const app = await tlsOnly({ trustProxy: '10.0.0.0/8' })
    for (const headers of [
      { 'x-forwarded-proto': 'https' },
      { forwarded: 'for=198.51.100.4;proto=https' },
    ]) {
      const res = await app.inject({ url: '/', remoteAddress: STRANGER, headers })
      expect(res.statusCode).toBe(426)
      expect(res.json()).toMatchObject({ code: 'ERR_PROFILE_TLS_REQUIRED' })
    }
  })

  it('without Fastify trustProxy nobody is trusted, whatever they send', async () => {
    const app = await tlsOnly({})
    const res = await app.inject({
      url: '/',
      remoteAddress: PROXY,
      headers: { 'x-forwarded-proto': 'https' },
    })
    expect(res.statusCode).toBe(426)
  })

  it('RFC 7239 Forwarded: proto=https from a peer Fastify trusts counts', async () => {
    const app = await tlsOnly({ trustProxy: (ip: string) => ip === PROXY })
    const res = await app.inject({
      url: '/',
      remoteAddress: PROXY,
      headers: { forwarded: 'for=198.51.100.4;proto=https' },
    })
    expect(res.statusCode).toBe(200)
  })
})

describe("the mTLS gate's client-certificate header", () => {
  it('is believed from a peer Fastify trusts, not from another', async () => {
    const app = newApp({ trustProxy: [PROXY] })
    const profile = defineProfile(STANDARD, { name: 'MTLS-ONLY', mtlsRequired: true })
    const enforcer = new ProfileEnforcer(profile, {
      authenticate: () => ({ principal: 'alice', kind: 'apiKey', permissions: [] }),
      clientCertHeader: { name: 'x-ssl-client-verify', value: 'SUCCESS' },
    })
    await enforcer.applyTo(app)
    app.get('/', async () => 'ok')
    const headers = { 'x-ssl-client-verify': 'SUCCESS' }
    const trusted = await app.inject({ url: '/', remoteAddress: PROXY, headers })
    expect(trusted.statusCode).toBe(200)
    const stranger = await app.inject({ url: '/', remoteAddress: STRANGER, headers })
    expect(stranger.statusCode).toBe(403)
    expect(stranger.json()).toMatchObject({ code: 'ERR_PROFILE_CLIENT_CERT_REQUIRED' })
  })
})

describe("an IP allow-list reads Fastify's request.ip", () => {
  it('the forwarded client of a trusted proxy is allowed; a stranger forwarding it is not', async () => {
    const app = newApp({ trustProxy: '10.0.0.0/8' })
    await app.register(rateLimit, {
      max: 1,
      windowMs: 60_000,
      store: new MemoryStore(),
      allowList: ['198.51.100.4'],
    })
    app.get('/', async () => 'ok')
    const viaProxy = { remoteAddress: PROXY, headers: { 'x-forwarded-for': '198.51.100.4' } }
    for (let i = 0; i < 3; i++)
      expect((await app.inject({ url: '/', ...viaProxy })).statusCode).toBe(200)
    const spoofed = { remoteAddress: STRANGER, headers: { 'x-forwarded-for': '198.51.100.4' } }
    expect((await app.inject({ url: '/', ...spoofed })).statusCode).toBe(200)
    expect((await app.inject({ url: '/', ...spoofed })).statusCode).toBe(429)
  })
})

describe("the enforcer's trustProxy option", () => {
  const authenticate = () => null

  it("is refused at applyTo when it differs from Fastify's", async () => {
    for (const [ours, fastify] of [
      [['127.0.0.1'], undefined],
      [true, '10.0.0.0/8'],
      [['10.0.0.0/8'], ['10.0.0.0/8', '192.168.0.0/16']],
      [false, true],
    ] as const) {
      const app = newApp(fastify === undefined ? {} : { trustProxy: fastify as never })
      const enforcer = new ProfileEnforcer(STANDARD, { authenticate, trustProxy: ours as never })
      await expect(enforcer.applyTo(app)).rejects.toMatchObject({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining("Fastify's trustProxy is the one setting"),
      })
    }
  })

  it("is accepted when it says what Fastify's says", async () => {
    const trust = (ip: string) => ip === PROXY
    for (const [ours, fastify] of [
      [['10.0.0.0/8', '::1'], '10.0.0.0/8, ::1'],
      [true, true],
      [false, undefined],
      [trust, trust],
    ] as const) {
      const app = newApp(fastify === undefined ? {} : { trustProxy: fastify as never })
      const enforcer = new ProfileEnforcer(STANDARD, { authenticate, trustProxy: ours as never })
      await expect(enforcer.applyTo(app)).resolves.toBeUndefined()
    }
  })
})
