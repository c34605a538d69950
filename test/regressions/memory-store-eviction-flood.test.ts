/**
 * Issue 17, item 4: the memory store held at most `maxKeys` (100,000) counters
 * and evicted the least recently used one, so a client that minted more keys
 * than that in a window (a spoofed header, an IPv6 range) evicted, and so
 * reset, a victim's counter. A live counter is never evicted now: past the
 * bound, new keys share an overflow counter.
 */
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { MemoryStore, rateLimit } from '../../src/http/index.js'

describe('memory store: a flood of new keys cannot reset a client’s count', () => {
  const policy = { name: 'default', max: 5, windowMs: 60_000 }

  it('a victim over its limit stays refused after 100,001 fresh keys (default maxKeys)', () => {
    const store = new MemoryStore()
    const at = (now: number) => ({ policies: [policy], weight: 1, now })
    for (let i = 0; i < 5; i++) expect(store.consumeSync('victim', at(1000))[0]!.allowed).toBe(true)
    expect(store.consumeSync('victim', at(1001))[0]!.allowed).toBe(false)
    for (let i = 0; i <= 100_000; i++) store.consumeSync(`flood-${i}`, at(2000))
    expect(store.size).toBe(100_000)
    expect(store.consumeSync('victim', at(3000))[0]).toMatchObject({ allowed: false, remaining: 0 })
  })

  it('through the plugin: a flood of spoofed client keys leaves the victim at 429', async () => {
    const app = Fastify()
    let now = 1_800_000_000_000
    await app.register(rateLimit, {
      max: 3,
      store: new MemoryStore({ maxKeys: 50 }),
      clock: () => now,
      keyGenerator: (r) => String((r as { headers: Record<string, unknown> }).headers['x-client']),
    })
    app.get('/', async () => 'ok')
    const hit = (client: string) => app.inject({ url: '/', headers: { 'x-client': client } })
    for (let i = 0; i < 3; i++) expect((await hit('victim')).statusCode).toBe(200)
    expect((await hit('victim')).statusCode).toBe(429)
    const flood: number[] = []
    for (let i = 0; i < 200; i++) flood.push((await hit(`attacker-${i}`)).statusCode)
    // The newcomers share one overflow quota of 3 while the store is full.
    expect(flood.filter((s) => s === 200).length).toBeLessThanOrEqual(50 + 3)
    expect((await hit('victim')).statusCode).toBe(429)
    // Two windows later the victim's counter counts nothing and it is served again.
    now += 120_000
    expect((await hit('victim')).statusCode).toBe(200)
    await app.close()
  })
})
