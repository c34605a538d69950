/**
 * Issue 14, §1: `enforcer.applyTo(app)` called before `app.register(mercurius)`
 * installed none of the GraphQL limits (a depth-17 query got 200 under
 * STANDARD) and only logged a warning. Every GraphQL setting must hold
 * whatever the order, with or without the `mercuriusOptions()` spread, with
 * mercurius in an encapsulated plugin or on a custom path; where a step
 * cannot be installed, `app.ready()` rejects with a typed error.
 */
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import { GraphQLTracer, PersistedOperations } from '../../src/graphql/index.js'
import {
  defineProfile,
  ProfileEnforcer,
  type ProfileEnforcerOptions,
  type ProfileOverrides,
  type SecurityProfile,
  STANDARD,
} from '../../src/profiles/index.js'
import { authenticate, queryOfDepth, resolvers, schema } from '../profiles/harness.js'

interface Wiring {
  readonly name: string
  /** Register mercurius before `applyTo` (else after). */
  readonly mercuriusFirst: boolean
  /** Spread `enforcer.mercuriusOptions()`. */
  readonly spread: boolean
  /** Register mercurius inside an encapsulated plugin. */
  readonly encapsulated?: boolean
  /** mercurius's `path` (and the enforcer's `graphqlPath`, unless `untold`). */
  readonly path?: string
  /** Leave the enforcer's `graphqlPath` at its default. */
  readonly untold?: boolean
}

const WIRINGS: readonly Wiring[] = [
  { name: 'mercurius, then applyTo', mercuriusFirst: true, spread: true },
  { name: 'mercurius without the spread, then applyTo', mercuriusFirst: true, spread: false },
  { name: 'applyTo, then mercurius', mercuriusFirst: false, spread: true },
  { name: 'applyTo, then mercurius without the spread', mercuriusFirst: false, spread: false },
  {
    name: 'applyTo, then mercurius in an encapsulated plugin',
    mercuriusFirst: false,
    spread: true,
    encapsulated: true,
  },
  {
    name: 'applyTo, then mercurius without the spread on a custom path',
    mercuriusFirst: false,
    spread: false,
    encapsulated: true,
    path: '/api/gql',
  },
  {
    name: 'mercurius in a plugin that loaded before applyTo',
    mercuriusFirst: true,
    spread: false,
    encapsulated: true,
  },
  {
    name: 'mercurius on a path the enforcer was not told, then applyTo',
    mercuriusFirst: true,
    spread: true,
    path: '/gql',
    untold: true,
  },
]

const known = '{ hello }'
const manifest = new PersistedOperations({ [PersistedOperations.hash(known)]: known })

interface App {
  readonly app: FastifyInstance
  readonly enforcer: ProfileEnforcer
  /** POST a query (or a batch) with credentials. */
  gql(query: string | object[], auth?: string | null): Promise<LightMyRequestResponse>
}

async function build(
  wiring: Wiring,
  profile: SecurityProfile,
  options: ProfileEnforcerOptions = {},
): Promise<App> {
  const app = Fastify({ logger: false })
  onTestFinished(async () => {
    await app.close()
  })
  const path = wiring.path ?? '/graphql'
  const enforcer = new ProfileEnforcer(profile, {
    authenticate,
    ...(wiring.path === undefined || wiring.untold === true ? {} : { graphqlPath: wiring.path }),
    ...options,
  })
  const register = async (): Promise<void> => {
    const opts = {
      schema,
      resolvers,
      allowBatchedQueries: true,
      ...(wiring.path === undefined ? {} : { path: wiring.path }),
      ...(wiring.spread ? enforcer.mercuriusOptions() : {}),
    }
    if (wiring.encapsulated === true) {
      await app.register(async (child) => {
        await child.register(mercurius, opts)
      })
    } else {
      await app.register(mercurius, opts)
    }
  }
  if (wiring.mercuriusFirst) await register()
  await enforcer.applyTo(app)
  if (!wiring.mercuriusFirst) await register()
  await app.ready()
  return {
    app,
    enforcer,
    gql: (query, auth = 'alice') =>
      app.inject({
        method: 'POST',
        url: path,
        headers: auth === null ? {} : { authorization: `Bearer ${auth}` },
        payload: Array.isArray(query) ? query : { query },
      }),
  }
}

/** Every code in an answer: a top-level `code`, `errors[].extensions.code`, batch items' too. */
function codesOf(res: LightMyRequestResponse): string[] {
  const body = res.json() as unknown
  const out: string[] = []
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item)
      return
    }
    if (typeof value !== 'object' || value === null) return
    const v = value as { code?: unknown; errors?: unknown }
    if (typeof v.code === 'string') out.push(v.code)
    if (Array.isArray(v.errors)) {
      for (const e of v.errors as { extensions?: { code?: unknown } }[]) {
        if (typeof e.extensions?.code === 'string') out.push(e.extensions.code)
      }
    }
  }
  visit(body)
  return out
}

const aliases = (n: number) =>
  `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`
const batch = (n: number) => Array.from({ length: n }, () => ({ query: '{ hello }' }))

interface SettingCase {
  readonly setting: string
  readonly overrides?: ProfileOverrides
  readonly options?: ProfileEnforcerOptions
  /** Sends the request the setting allows and the one it refuses; asserts both. */
  check(app: App, profile: SecurityProfile): Promise<void>
}

async function refused(res: Promise<LightMyRequestResponse>, code: string, status = 400) {
  const r = await res
  expect(r.statusCode, r.body).toBe(status)
  expect(codesOf(r)).toContain(code)
  expect(r.body).not.toContain('"hello":"world"')
}

async function allowed(res: Promise<LightMyRequestResponse>) {
  const r = await res
  expect(r.statusCode, r.body).toBe(200)
  expect(r.json().errors).toBeUndefined()
}

const SETTINGS: readonly SettingCase[] = [
  {
    setting: 'maxQueryDepth',
    async check(a, p) {
      await allowed(a.gql(queryOfDepth(p.maxQueryDepth)))
      await refused(a.gql(queryOfDepth(p.maxQueryDepth + 2)), 'ERR_GRAPHQL_DEPTH_LIMIT')
      // Twice: mercurius's validation cache must not skip it.
      await refused(a.gql(queryOfDepth(p.maxQueryDepth + 2)), 'ERR_GRAPHQL_DEPTH_LIMIT')
    },
  },
  {
    setting: 'maxQueryComplexity',
    overrides: { maxQueryComplexity: 50 },
    async check(a) {
      await allowed(a.gql('{ users(first: 10) { id } }'))
      await refused(a.gql('{ users(first: 100) { id name } }'), 'ERR_GRAPHQL_COMPLEXITY_LIMIT')
    },
  },
  {
    setting: 'maxAliases',
    async check(a, p) {
      await allowed(a.gql(aliases(p.maxAliases)))
      await refused(a.gql(aliases(p.maxAliases + 1)), 'ERR_GRAPHQL_ALIAS_LIMIT')
    },
  },
  {
    setting: 'maxDirectives',
    async check(a, p) {
      const directives = (n: number) => `{ ${'hello @include(if: true) '.repeat(n)}}`
      await allowed(a.gql(directives(p.maxDirectives)))
      await refused(a.gql(directives(p.maxDirectives + 1)), 'ERR_GRAPHQL_DIRECTIVE_LIMIT')
    },
  },
  {
    setting: 'maxTokens',
    overrides: { maxTokens: 100 },
    async check(a) {
      await allowed(a.gql(`{ ${'hello '.repeat(90)}}`))
      await refused(a.gql(`{ ${'hello '.repeat(200)}}`), 'ERR_GRAPHQL_TOKEN_LIMIT')
    },
  },
  {
    setting: 'maxBatchSize',
    async check(a, p) {
      await allowed(a.gql(batch(1)))
      const r = await a.gql(batch(p.maxBatchSize + 1))
      expect(r.statusCode).toBe(400)
      expect(codesOf(r)).toContain('ERR_GRAPHQL_BATCH_TOO_LARGE')
      expect(r.body).not.toContain('world')
    },
  },
  {
    setting: 'introspection',
    overrides: { introspection: 'disabled' },
    async check(a) {
      await allowed(a.gql('{ __typename }'))
      await refused(
        a.gql('{ __schema { queryType { name } } }'),
        'ERR_GRAPHQL_INTROSPECTION_DISABLED',
      )
      await refused(
        a.gql('{ t: __type(name: "User") { name } }'),
        'ERR_GRAPHQL_INTROSPECTION_DISABLED',
      )
    },
  },
  {
    setting: 'introspection (authenticated)',
    overrides: { introspection: 'authenticated' },
    options: { publicPaths: ['/graphql', '/api/gql', '/gql'] },
    async check(a) {
      await allowed(a.gql('{ __schema { queryType { name } } }'))
      await refused(
        a.gql('{ __schema { queryType { name } } }', null),
        'ERR_GRAPHQL_INTROSPECTION_DISABLED',
      )
    },
  },
  {
    setting: 'persistedOperationsOnly',
    overrides: { persistedOperationsOnly: true },
    options: { persistedOperations: manifest },
    async check(a) {
      await allowed(a.gql(known))
      await refused(a.gql('{ user { id } }'), 'ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED')
    },
  },
  {
    setting: 'costRateLimit',
    overrides: { costRateLimit: true, principalRateLimit: { max: 100 } },
    async check(a) {
      // users(first: 30) { id name } costs 30 × 3 = 90: the first fits, the second does not.
      await allowed(a.gql('{ users(first: 30) { id name } }'))
      await refused(a.gql('{ users(first: 30) { id name } }'), 'ERR_HTTP_RATE_LIMITED', 429)
    },
  },
  {
    setting: 'errorDetail (safe) and blockFieldSuggestions',
    async check(a) {
      const crash = await a.gql('{ secret }')
      expect(crash.statusCode).toBe(200)
      expect(crash.body).not.toContain('hunter2')
      expect(codesOf(crash)).toEqual(['ERR_INTERNAL'])
      const typo = await a.gql('{ helo }')
      expect(typo.statusCode).toBe(400)
      expect(typo.body).toMatch(/Cannot query field/)
      expect(typo.body).not.toMatch(/Did you mean/)
      const batched = await a.gql([{ query: '{ secret }' }, { query: '{ helo }' }])
      expect(batched.body).not.toMatch(/hunter2|Did you mean/)
    },
  },
  {
    setting: 'errorDetail (minimal)',
    overrides: { errorDetail: 'minimal' },
    async check(a) {
      const crash = await a.gql('{ secret }')
      expect(crash.body).not.toContain('hunter2')
      expect(crash.json().errors[0]).toMatchObject({
        message: 'Internal error',
        extensions: { requestId: expect.any(String) },
      })
      const typo = await a.gql('{ helo }')
      expect(typo.json().errors[0].message).toBe('Request rejected')
      const deep = await a.gql(queryOfDepth(40))
      expect(deep.json().errors[0]).toMatchObject({
        message: 'Request rejected',
        extensions: { code: 'ERR_GRAPHQL_DEPTH_LIMIT' },
      })
    },
  },
]

describe('every GraphQL setting holds whatever the order of registration', () => {
  for (const c of SETTINGS) {
    describe(c.setting, () => {
      for (const wiring of WIRINGS) {
        it(wiring.name, async () => {
          const profile = defineProfile(STANDARD, { ...c.overrides })
          const a = await build(wiring, profile, c.options)
          await c.check(a, profile)
        })
      }
    })
  }
})

describe('the enforcer reports what it installed, whatever the order', () => {
  for (const wiring of WIRINGS) {
    it(`registeredStack lists graphqlGuards (${wiring.name})`, async () => {
      const { enforcer } = await build(wiring, STANDARD)
      expect(enforcer.registeredStack.map((s) => s.name)).toContain('graphqlGuards')
      expect(enforcer.registeredStack.map((s) => s.name)).toEqual(
        enforcer.getMiddlewareStack().map((s) => s.name),
      )
    })
  }
})

describe('mercurius without routes, in a plugin that loaded before applyTo', () => {
  it('gets the guards: app.graphql() refuses what the profile refuses', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    let child: FastifyInstance | undefined
    await app.register(async (c) => {
      await c.register(mercurius, { schema, resolvers, routes: false })
      child = c
    })
    const enforcer = new ProfileEnforcer(STANDARD, { authenticate })
    await enforcer.applyTo(app)
    await app.ready()
    expect(enforcer.registeredStack.map((s) => s.name)).toContain('graphqlGuards')
    const err = await child!.graphql(queryOfDepth(STANDARD.maxQueryDepth + 1)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'ERR_GRAPHQL_DEPTH_LIMIT' })
    expect(await child!.graphql('{ hello }')).toEqual({ data: { hello: 'world' } })
  })
})

describe('where a GraphQL step cannot be installed, app.ready() rejects', () => {
  it('a GraphQL route no mercurius serves (a hand-written handler): ERR_PROFILE_GRAPHQL_UNGUARDED', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    app.post('/graphql', async () => ({ data: { hello: 'world' } }))
    await new ProfileEnforcer(STANDARD, { authenticate }).applyTo(app)
    const err = await app.ready().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'ERR_PROFILE_GRAPHQL_UNGUARDED', step: 'graphqlGuards' })
    expect(String((err as Error).message)).toMatch(/applyTo/)
    expect(String((err as Error).message)).toMatch(/\/graphql/)
  })

  it('a tracer with no mercurius to trace: ERR_PROFILE_GRAPHQL_UNGUARDED', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    app.get('/x', async () => 'x')
    await new ProfileEnforcer(STANDARD, { authenticate, tracer: new GraphQLTracer() }).applyTo(app)
    await expect(app.ready()).rejects.toMatchObject({ code: 'ERR_PROFILE_GRAPHQL_UNGUARDED' })
  })

  it('a REST-only app under a profile with GraphQL settings starts and serves', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    app.get('/x', async () => 'x')
    const enforcer = new ProfileEnforcer(STANDARD, { authenticate })
    await enforcer.applyTo(app)
    await app.ready()
    const res = await app.inject({
      method: 'GET',
      url: '/x',
      headers: { authorization: 'Bearer alice' },
    })
    expect(res.statusCode).toBe(200)
    expect(enforcer.registeredStack.map((s) => s.name)).not.toContain('graphqlGuards')
  })
})

describe('tracing attaches whatever the order', () => {
  for (const wiring of WIRINGS) {
    it(wiring.name, async () => {
      const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import(
        '@opentelemetry/sdk-trace-base'
      )
      const exporter = new InMemorySpanExporter()
      const tracer = new GraphQLTracer({
        tracerProvider: new BasicTracerProvider({
          spanProcessors: [new SimpleSpanProcessor(exporter)],
        }),
      })
      const a = await build(wiring, STANDARD, { tracer })
      await allowed(a.gql('query Hello { hello }'))
      expect(exporter.getFinishedSpans().map((s) => s.name)).toContain('query Hello')
    })
  }
})
