import { describe, expect, it } from 'vitest'
import {
  ProfileEnforcer,
  RESTRICTED,
  SecurityProfileSchema,
  STANDARD,
} from '../../src/profiles/index.js'
import { STEP_NAMES } from '../../src/profiles/options.js'
import { STEPS } from '../../src/profiles/steps/registry.js'
import { harness } from './harness.js'

describe('the step registry', () => {
  it('lists every step name once, in the order of STEP_NAMES (the option schema reads that list)', () => {
    expect(STEPS.map((s) => s.name)).toEqual([...STEP_NAMES])
  })

  it('every profile setting is enforced by some step, and no step names a setting that does not exist', () => {
    const settings = Object.keys(SecurityProfileSchema.shape).filter((k) => k !== 'name')
    const enforced = STEPS.flatMap((s) => s.enforces)
    for (const setting of settings) expect(enforced).toContain(setting)
    for (const setting of enforced) expect(settings).toContain(setting)
  })

  it('getMiddlewareStack is the registry filtered by each step’s enabled(profile, options)', () => {
    for (const profile of [STANDARD, RESTRICTED]) {
      for (const tracer of [false, true]) {
        const enforcer = new ProfileEnforcer(profile, { tracer })
        const expected = STEPS.filter((s) => s.enabled(enforcer.profile, { tracer } as never)).map(
          (s) => s.name,
        )
        expect(enforcer.getMiddlewareStack().map((s) => s.name)).toEqual(expected)
      }
    }
  })
})

describe('steps: { <name>: { enabled: false } }', () => {
  it('a switched-off step stays listed with enabled: false and is not registered', async () => {
    const h = await harness(RESTRICTED, { enforcer: { steps: { tlsGate: { enabled: false } } } })
    const stack = h.enforcer.getMiddlewareStack()
    expect(stack.find((s) => s.name === 'tlsGate')).toEqual({
      name: 'tlsGate',
      phase: 'onRequest',
      enforces: ['tlsRequired', 'minTlsVersion'],
      enabled: false,
    })
    expect(stack.filter((s) => s.enabled === false).map((s) => s.name)).toEqual(['tlsGate'])
    expect(h.enforcer.registeredStack.map((s) => s.name)).not.toContain('tlsGate')
    expect(h.enforcer.registeredStack.map((s) => s.name)).toContain('mtlsGate')
    // Plain HTTP now passes the (absent) gate; the other steps still hold.
    expect((await h.send({ method: 'GET', url: '/health', tls: false })).statusCode).toBe(200)
    expect((await h.send({ method: 'GET', url: '/health', cert: false })).statusCode).toBe(403)
    expect((await h.send({ method: 'GET', url: '/health', auth: null })).statusCode).toBe(401)
  })

  it('applyTo names each switched-off step in a warning', async () => {
    const Fastify = (await import('fastify')).default
    const app = Fastify({ logger: false })
    const warned: { obj: unknown; msg: unknown }[] = []
    app.log.warn = ((obj: unknown, msg: unknown) => warned.push({ obj, msg })) as never
    const enforcer = new ProfileEnforcer(STANDARD, {
      authenticate: () => null,
      steps: { bodyLimit: { enabled: false }, auditLog: { enabled: false } },
    })
    await enforcer.applyTo(app)
    await app.ready()
    expect(warned.map((w) => (w.obj as { step: string }).step)).toEqual(['bodyLimit', 'auditLog'])
    expect(String(warned[0]?.msg)).toMatch(/switched off/)
    await app.close()
  })

  it('the default is every step on: nothing is listed as switched off', () => {
    const stack = new ProfileEnforcer(RESTRICTED).getMiddlewareStack()
    expect(stack.every((s) => !('enabled' in s))).toBe(true)
  })

  it('an unknown step name or a non-boolean enabled is ERR_CONFIG_INVALID', () => {
    expect(
      () => new ProfileEnforcer(STANDARD, { steps: { tlsgate: { enabled: false } } } as never),
    ).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
    expect(
      () => new ProfileEnforcer(STANDARD, { steps: { bodyLimit: { enabled: 'no' } } } as never),
    ).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
    expect(
      () =>
        new ProfileEnforcer(STANDARD, { steps: { bodyLimit: { enabled: false, x: 1 } } } as never),
    ).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
  })

  it('graphqlGuards off with a tracer on is refused: the tracer attaches with the guards', () => {
    expect(
      () =>
        new ProfileEnforcer(STANDARD, {
          tracer: true,
          steps: { graphqlGuards: { enabled: false } },
        }),
    ).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
    expect(
      () =>
        new ProfileEnforcer(STANDARD, {
          tracer: true,
          steps: { graphqlGuards: { enabled: false }, tracing: { enabled: false } },
        }),
    ).not.toThrow()
  })

  it('principalRateLimit off with costRateLimit: GraphQL runs, charged nowhere', async () => {
    const profile = {
      ...STANDARD,
      costRateLimit: true,
      principalRateLimit: { max: 1, windowMs: 60_000 },
    }
    const h = await harness(profile, {
      enforcer: { steps: { principalRateLimit: { enabled: false } } },
    })
    for (let i = 0; i < 3; i++) expect((await h.gql('{ hello }')).statusCode).toBe(200)
    expect(h.enforcer.registeredStack.map((s) => s.name)).toContain('graphqlGuards')
    expect(h.enforcer.registeredStack.map((s) => s.name)).not.toContain('principalRateLimit')
  })
})
