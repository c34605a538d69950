/**
 * Regression: only the dotted, compressed spelling of an IPv4-mapped IPv6
 * address (`::ffff:1.2.3.4`) keyed as its IPv4 address. The hexadecimal
 * (`::ffff:0102:0304`) and expanded (`0:0:0:0:0:ffff:1.2.3.4`) spellings were
 * read as ordinary IPv6 and fell into the `::/64` bucket, the one `::1`
 * (localhost) keys into: one client's requests could be spent against
 * another's budget, and a client able to choose the spelling (an
 * `X-Forwarded-For` a trusted proxy passes on) could leave its own IPv4
 * bucket for a shared one. The allow list compares through the same
 * normalization.
 */
import fc from 'fast-check'
import Fastify from 'fastify'
import { describe, expect, onTestFinished, test } from 'vitest'
import { ipKey, normalizeIp, rateLimit } from '../../src/http/index.js'

const SPELLINGS = [
  '::ffff:1.2.3.4',
  '::FFFF:1.2.3.4',
  '::ffff:0102:0304',
  '::ffff:102:304',
  '::FFFF:0102:0304',
  '0:0:0:0:0:ffff:1.2.3.4',
  '0:0:0:0:0:FFFF:102:304',
  '0000:0000:0000:0000:0000:ffff:0102:0304',
  '0000:0000:0000:0000:0000:FFFF:1.2.3.4',
  '0:0::ffff:1.2.3.4',
  '::0:ffff:102:304',
  '0:0:0:0:0:ffff:0102:0304',
]

describe('every spelling of an IPv4-mapped address keys as the IPv4 address', () => {
  test.each(SPELLINGS)('%s → 1.2.3.4', (spelling) => {
    expect(normalizeIp(spelling)).toBe('1.2.3.4')
    expect(ipKey(spelling)).toBe('1.2.3.4')
  })

  test('none of them shares the bucket of ::1', () => {
    for (const spelling of SPELLINGS) expect(ipKey(spelling)).not.toBe(ipKey('::1'))
  })

  /** One random spelling of the eight groups of an IPv4-mapped address of `v4`. */
  const mappedSpelling = (v4: string) => {
    const o = v4.split('.').map(Number) as [number, number, number, number]
    const groups = [0, 0, 0, 0, 0, 0xffff, (o[0] << 8) | o[1], (o[2] << 8) | o[3]]
    return fc
      .record({
        dotted: fc.boolean(),
        pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
        upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
        // A run of zero groups to write as `::`: start and length, clipped below.
        run: fc.option(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 8 }))),
      })
      .map(({ dotted, pad, upper, run }) => {
        const count = dotted ? 6 : 8
        const text = groups.slice(0, count).map((g, i) => {
          const hex = g.toString(16).padStart(Math.min(4, g.toString(16).length + pad[i]!), '0')
          return upper[i] ? hex.toUpperCase() : hex
        })
        if (dotted) text.push(v4)
        let start = -1
        let end = -1
        if (run !== null) {
          // Grow the run from its start over zero groups only.
          const [s, len] = run
          if (s < count && groups[s] === 0) {
            start = s
            end = s
            while (end + 1 < count && end + 1 - s < len && groups[end + 1] === 0) end++
          }
        }
        if (start === -1) return text.join(':')
        const head = text.slice(0, start).join(':')
        const tail = text.slice(end + 1).join(':')
        return `${head}::${tail}`
      })
  }

  test('property: any spelling (dotted or hex tail, compressed or not, leading zeros, any case) keys as the IPv4 address', () => {
    fc.assert(
      fc.property(
        fc.ipV4().chain((v4) => mappedSpelling(v4).map((spelling) => ({ v4, spelling }))),
        ({ v4, spelling }) => {
          expect(normalizeIp(spelling)).toBe(v4)
          expect(ipKey(spelling)).toBe(v4)
          expect(ipKey(spelling, 48)).toBe(v4)
        },
      ),
      { numRuns: 2000 },
    )
  })

  /** A Fastify app behind a trusted proxy: the client address is the `X-Forwarded-For` one. */
  async function behindProxy(options: { allowList?: string[] } = {}) {
    const app = Fastify({ trustProxy: true })
    onTestFinished(() => app.close())
    await app.register(rateLimit, { max: 1, windowMs: 60_000, ...options })
    app.get('/', async (request) => request.ip)
    return (client: string) =>
      app.inject({ method: 'GET', url: '/', headers: { 'x-forwarded-for': client } })
  }

  test('through rateLimit, the hexadecimal spelling spends the IPv4 client’s budget, not localhost’s', async () => {
    const from = await behindProxy()
    expect((await from('1.2.3.4')).statusCode).toBe(200)
    const second = await from('::ffff:0102:0304')
    expect(second.statusCode).toBe(429)
    expect(second.json()).toMatchObject({ code: 'ERR_HTTP_RATE_LIMITED' })
    expect((await from('0000:0000:0000:0000:0000:FFFF:0102:0304')).statusCode).toBe(429)
    // Localhost keeps its own budget.
    expect((await from('::1')).statusCode).toBe(200)
  })

  test('an allow list of 1.2.3.4 admits every spelling of it', async () => {
    const from = await behindProxy({ allowList: ['1.2.3.4'] })
    for (const spelling of SPELLINGS) expect((await from(spelling)).statusCode, spelling).toBe(200)
  })
})
