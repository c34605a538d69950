import Fastify from 'fastify'
import { describe, expectTypeOf, it } from 'vitest'
import {
  type BodySizeConfig,
  bodyLimit,
  type RateLimitConfig,
  type RateLimitInfo,
  type RateLimitStore,
  rateLimit,
  rateLimitMiddleware,
} from '../../src/http/index.js'

describe('http types', () => {
  it('decorates the request with the rate-limit decision', async () => {
    const app = Fastify()
    await app.register(rateLimit, { max: 10 })
    app.get('/', async (request) => {
      expectTypeOf(request.rateLimit).toEqualTypeOf<RateLimitInfo | null>()
      return 'ok'
    })
  })

  it('types route overrides in config', () => {
    const app = Fastify()
    app.post(
      '/a',
      { config: { rateLimit: { max: 5 }, bodyLimit: { maxSize: 10 } } },
      async () => 'ok',
    )
    app.post('/b', { config: { rateLimit: false, bodyLimit: false } }, async () => 'ok')
    // @ts-expect-error maxSize must be a number
    app.post('/c', { config: { bodyLimit: { maxSize: '10' } } }, async () => 'ok')
  })

  it('accepts plugin options typed from the zod schemas', async () => {
    const app = Fastify()
    const body: BodySizeConfig = { maxSize: 1024, inflate: true }
    await app.register(bodyLimit, body)
    const rl: RateLimitConfig = {
      onStoreError: 'insurance',
      policies: [{ name: 'burst', max: 1, windowMs: 1000 }],
    }
    await app.register(rateLimit, rl)
    // @ts-expect-error not a fallback mode
    const bad: RateLimitConfig = { onStoreError: 'ignore' }
    void bad
  })

  it('lets users implement their own store', () => {
    const store: RateLimitStore = { consume: async () => [] }
    expectTypeOf(rateLimitMiddleware({ store })).toBeFunction()
  })
})
