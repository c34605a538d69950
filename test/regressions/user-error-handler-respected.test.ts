/**
 * Regression: the package was "the single owner of `setErrorHandler`". Its
 * `errorReply` plugin called `app.setErrorHandler`, so an application's own
 * handler set before `app.register(rateLimit)` (or `enforcer.applyTo`) was
 * replaced, one set after made Fastify print FSTWRN004 (and throw with
 * `allowErrorHandlerOverride: false`), and guard refusals (429, 413, 401)
 * bypassed the application's handler altogether.
 *
 * Now the application's handler, set in any order, at the root or in an
 * encapsulated context, receives our refusals as our public error objects
 * (`code`, `statusCode`), with `Retry-After` and the rest already on the
 * reply; without one, the answers keep our shape.
 */
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify'
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { SecurityError } from '../../src/errors.js'
import { bodyLimit, MemoryStore, rateLimit } from '../../src/http/index.js'
import { ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'

const warnings: Error[] = []
const onWarning = (w: Error) => warnings.push(w)
beforeEach(() => {
  warnings.length = 0
  process.on('warning', onWarning)
})
afterEach(() => {
  process.off('warning', onWarning)
})

interface Seen {
  error?: unknown
  statusAtEntry?: number
}

/** An application's handler: answers its own shape, from our error's public fields. */
function userHandler(seen: Seen, mode: 'sync' | 'async' = 'sync') {
  const answer = (error: FastifyError, reply: FastifyReply) => {
    seen.error = error
    seen.statusAtEntry = reply.statusCode
    return reply
      .code(error.statusCode ?? 500)
      .send({ mine: true, code: error.code, status: error.statusCode })
  }
  return mode === 'sync'
    ? (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
        answer(error, reply)
      }
    : async (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
        await new Promise((resolve) => setImmediate(resolve))
        return answer(error, reply)
      }
}

function newApp(options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, ...options })
  onTestFinished(async () => {
    await app.close()
  })
  return app
}

async function expectUserGot429(app: FastifyInstance, seen: Seen, url = '/') {
  expect((await app.inject({ url })).statusCode).toBe(200)
  const refused = await app.inject({ url })
  expect(refused.statusCode).toBe(429)
  expect(refused.json()).toEqual({ mine: true, code: 'ERR_HTTP_RATE_LIMITED', status: 429 })
  expect(refused.headers['retry-after']).toMatch(/^\d+$/)
  expect(seen.error).toBeInstanceOf(SecurityError)
  expect((seen.error as SecurityError).code).toBe('ERR_HTTP_RATE_LIMITED')
  // Our status is on the reply before the application's handler runs.
  expect(seen.statusAtEntry).toBe(429)
}

describe("an application's setErrorHandler", () => {
  it('set before register(rateLimit): kept, gets the 429 with its code, no Fastify warning', async () => {
    const app = newApp()
    const seen: Seen = {}
    app.setErrorHandler(userHandler(seen))
    await app.register(rateLimit, { max: 1, windowMs: 60_000, store: new MemoryStore() })
    app.get('/', async () => 'ok')
    await expectUserGot429(app, seen)
    expect(warnings).toEqual([])
  })

  it('set after register(rateLimit): gets the 429, no FSTWRN004 (nor a throw with allowErrorHandlerOverride: false)', async () => {
    const app = newApp({ allowErrorHandlerOverride: false })
    const seen: Seen = {}
    await app.register(rateLimit, { max: 1, windowMs: 60_000, store: new MemoryStore() })
    app.setErrorHandler(userHandler(seen))
    app.get('/', async () => 'ok')
    await expectUserGot429(app, seen)
    expect(warnings).toEqual([])
  })

  it('an async handler: the route handler never runs for a refused request', async () => {
    const app = newApp()
    const seen: Seen = {}
    let handled = 0
    await app.register(rateLimit, { max: 1, windowMs: 60_000, store: new MemoryStore() })
    app.setErrorHandler(userHandler(seen, 'async'))
    app.get('/', async () => {
      handled++
      return 'ok'
    })
    await expectUserGot429(app, seen)
    expect(handled).toBe(1)
  })

  it('set in an encapsulated context: its routes use it, the others keep our shape', async () => {
    const app = newApp()
    const seen: Seen = {}
    await app.register(rateLimit, { max: 1, windowMs: 60_000, store: new MemoryStore() })
    await app.register(async (scope) => {
      scope.setErrorHandler(userHandler(seen))
      scope.get('/mine', async () => 'ok')
    })
    app.get('/ours', async () => 'ok')
    await expectUserGot429(app, seen, '/mine')
    await app.inject({ url: '/ours' })
    const ours = await app.inject({ url: '/ours' })
    expect(ours.statusCode).toBe(429)
    expect(ours.headers['content-type']).toBe('application/problem+json')
    expect(ours.json()).toMatchObject({ type: expect.stringContaining('quota-exceeded') })
    expect(warnings).toEqual([])
  })

  it('gets the 413 of the body limit, with Connection: close', async () => {
    const app = newApp()
    const seen: Seen = {}
    await app.register(bodyLimit, { maxSize: 10 })
    app.setErrorHandler(userHandler(seen))
    app.post('/', async () => 'ok')
    const refused = await app.inject({ method: 'POST', url: '/', payload: { a: 'x'.repeat(50) } })
    expect(refused.statusCode).toBe(413)
    expect(refused.json()).toEqual({ mine: true, code: 'ERR_HTTP_BODY_TOO_LARGE', status: 413 })
    expect(refused.headers.connection).toBe('close')
    expect(warnings).toEqual([])
  })

  for (const order of ['before applyTo', 'after applyTo'] as const) {
    it(`set ${order}: gets the enforcer's 401 with WWW-Authenticate, no Fastify warning`, async () => {
      const app = newApp()
      const seen: Seen = {}
      const enforcer = new ProfileEnforcer(STANDARD, { authenticate: () => null })
      if (order === 'before applyTo') app.setErrorHandler(userHandler(seen, 'async'))
      await enforcer.applyTo(app)
      if (order === 'after applyTo') app.setErrorHandler(userHandler(seen, 'async'))
      let handled = 0
      app.get('/', async () => {
        handled++
        return 'ok'
      })
      const refused = await app.inject({ url: '/' })
      expect(refused.statusCode).toBe(401)
      expect(refused.json()).toEqual({ mine: true, code: 'ERR_AUTH_REQUIRED', status: 401 })
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="api"')
      expect((seen.error as SecurityError).code).toBe('ERR_AUTH_REQUIRED')
      expect(handled).toBe(0)
      expect(warnings).toEqual([])
    })
  }

  it("also gets the route handlers' own errors (Fastify's usual flow)", async () => {
    const app = newApp()
    const seen: Seen = {}
    await app.register(rateLimit, { max: 10, windowMs: 60_000, store: new MemoryStore() })
    app.setErrorHandler(userHandler(seen))
    app.get('/', async () => {
      throw Object.assign(new Error('teapot'), { statusCode: 418, code: 'E_TEAPOT' })
    })
    const res = await app.inject({ url: '/' })
    expect(res.json()).toEqual({ mine: true, code: 'E_TEAPOT', status: 418 })
  })

  it('a handler that throws: the refusal falls back to our answer, never left hanging', async () => {
    const app = newApp()
    await app.register(rateLimit, { max: 1, windowMs: 60_000, store: new MemoryStore() })
    app.setErrorHandler(async (error) => {
      throw error
    })
    app.get('/', async () => 'ok')
    await app.inject({ url: '/' })
    const refused = await app.inject({ url: '/' })
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['content-type']).toBe('application/problem+json')
  })
})

describe('without an application handler', () => {
  it('refusals and thrown errors keep our shape', async () => {
    const app = newApp()
    await app.register(rateLimit, { max: 2, windowMs: 60_000, store: new MemoryStore() })
    app.get('/', async () => {
      throw new Error('db password=hunter2')
    })
    const failed = await app.inject({ url: '/' })
    expect(failed.statusCode).toBe(500)
    expect(failed.json()).toEqual({
      detail: 'Internal Server Error',
      code: 'ERR_INTERNAL',
      requestId: expect.any(String),
    })
    await app.inject({ url: '/' })
    const refused = await app.inject({ url: '/' })
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['content-type']).toBe('application/problem+json')
    expect(warnings).toEqual([])
  })
})
