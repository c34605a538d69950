import Fastify from 'fastify'
import { expect, it } from 'vitest'
import { rateLimit } from '../../src/http/index.js'

// Issue 20: a user coming from @fastify/rate-limit wrote `timeWindow` and got
// "`timeWindow`: unknown option", with no hint that ours is `windowMs`.
it('registering with timeWindow names windowMs as the intended option', async () => {
  const app = Fastify()
  await expect(
    app.register(rateLimit, { max: 10, timeWindow: '1 minute' } as never).ready(),
  ).rejects.toMatchObject({
    code: 'ERR_CONFIG_INVALID',
    message: expect.stringContaining('`timeWindow`: did you mean `windowMs`?'),
  })
  await app.close()
})
