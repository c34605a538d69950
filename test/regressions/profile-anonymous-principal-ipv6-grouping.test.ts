/**
 * Issue 14, §3: the anonymous per-principal key was `ip:${request.ip}`, one
 * bucket per IPv6 address, while the IP limiter groups IPv6 clients by /64:
 * a client holding a /64 rotated through 2^64 anonymous budgets. It now
 * uses the IP limiter's key function.
 */
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { defineProfile, ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'

async function app() {
  const a = Fastify({ logger: false })
  onTestFinished(async () => {
    await a.close()
  })
  const profile = defineProfile(STANDARD, {
    authRequired: false,
    rateLimit: { max: 10_000 },
    principalRateLimit: { max: 2 },
  })
  a.get('/x', async () => 'x')
  await new ProfileEnforcer(profile).applyTo(a)
  await a.ready()
  return (remoteAddress: string) => a.inject({ method: 'GET', url: '/x', remoteAddress })
}

describe('the anonymous per-principal key groups IPv6 by /64', () => {
  it('two addresses of one /64 share one anonymous budget', async () => {
    const get = await app()
    expect((await get('2001:db8:1:2::a')).statusCode).toBe(200)
    expect((await get('2001:db8:1:2:ffff:ffff:ffff:ffff')).statusCode).toBe(200)
    const third = await get('2001:db8:1:2::b')
    expect(third.statusCode).toBe(429)
    expect(third.json()).toMatchObject({ code: 'ERR_HTTP_RATE_LIMITED' })
    // Another /64 has its own.
    expect((await get('2001:db8:1:3::a')).statusCode).toBe(200)
  })

  it('an IPv4-mapped address keys as its IPv4 address', async () => {
    const get = await app()
    expect((await get('192.0.2.7')).statusCode).toBe(200)
    expect((await get('::ffff:192.0.2.7')).statusCode).toBe(200)
    expect((await get('192.0.2.7')).statusCode).toBe(429)
  })
})
