/**
 * A graphql-yoga route mounted at a path other than the enforcer's
 * `graphqlPath` (/api/gql) passed `app.ready()` and answered a 17-deep
 * query with 200 under STANDARD (maxQueryDepth 15): the enforcer looked for
 * GraphQL only at `graphqlPath` and only through mercurius. A route that
 * serves graphql-yoga or Apollo Server, at any path, must carry the
 * enforcer's plugin: otherwise `ready()` rejects with
 * ERR_PROFILE_GRAPHQL_UNGUARDED naming the route, or (a route declared
 * before `applyTo`, which `onReady` cannot list) each request is refused
 * before the server sees it.
 */
import { ApolloServer } from '@apollo/server'
import fastifyApollo from '@as-integrations/fastify'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { createSchema, createYoga } from 'graphql-yoga'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { authenticate, graphqlCodes, queryOfDepth, resolvers, schema } from '../profiles/harness.js'

const PATH = '/api/gql'
const DEEP = queryOfDepth(STANDARD.maxQueryDepth + 2)

function setup(): { app: FastifyInstance; enforcer: ProfileEnforcer } {
  const app = Fastify({ logger: false })
  onTestFinished(async () => {
    await app.close()
  })
  const enforcer = new ProfileEnforcer(STANDARD, { authenticate })
  return { app, enforcer }
}

function yogaRoute(
  app: FastifyInstance,
  plugins: readonly object[],
  endpoint = PATH,
  config?: { graphql: true },
): void {
  const yoga = createYoga<{ req: FastifyRequest; reply: FastifyReply }>({
    schema: createSchema({ typeDefs: schema, resolvers }),
    plugins: plugins as never,
    graphqlEndpoint: endpoint,
    logging: false,
  })
  app.route({
    url: PATH,
    method: ['GET', 'POST', 'OPTIONS'],
    ...(config === undefined ? {} : { config }),
    handler: async (req, reply) => {
      const response = await yoga.handleNodeRequestAndResponse(req, reply, { req, reply })
      for (const [name, value] of response.headers) reply.header(name, value)
      reply.status(response.status)
      return reply.send(response.body)
    },
  })
}

async function apollo(plugins: unknown[]): Promise<ApolloServer> {
  const server = new ApolloServer({ typeDefs: schema, resolvers, plugins: plugins as never })
  await server.start()
  onTestFinished(async () => {
    await server.stop()
  })
  return server
}

const ask = (app: FastifyInstance, query: string) =>
  app.inject({
    method: 'POST',
    url: PATH,
    headers: { authorization: 'Bearer alice', accept: 'application/graphql-response+json' },
    payload: { query },
  })

describe('graphql-yoga at a path other than graphqlPath', () => {
  it('without the enforcer plugin: ready() rejects, naming the route', async () => {
    const { app, enforcer } = setup()
    await enforcer.applyTo(app)
    yogaRoute(app, [])
    const ready = app.ready()
    await expect(ready).rejects.toMatchObject({
      code: 'ERR_PROFILE_GRAPHQL_UNGUARDED',
      step: 'graphqlGuards',
    })
    await expect(ready).rejects.toThrow(/\/api\/gql.*graphql-yoga.*graphqlYogaPlugin/)
  })

  it("with it: the 17-deep query is refused 400 with the profile's code", async () => {
    const { app, enforcer } = setup()
    await enforcer.applyTo(app)
    yogaRoute(app, [enforcer.graphqlYogaPlugin()])
    await app.ready()
    const deep = await ask(app, DEEP)
    expect(deep.statusCode).toBe(400)
    expect(graphqlCodes(deep)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    expect((await ask(app, '{ hello }')).json()).toEqual({ data: { hello: 'world' } })
  })

  it('declared before applyTo (config.graphql) without the plugin: every request is refused before yoga runs', async () => {
    const { app, enforcer } = setup()
    let ran = 0
    yogaRoute(app, [{ onExecute: () => void ran++ }], PATH, { graphql: true })
    await enforcer.applyTo(app)
    await app.ready()
    const res = await ask(app, DEEP)
    // A server-side misconfiguration: answered as any failure, masked.
    expect(res.statusCode).toBe(500)
    expect(res.json()).toMatchObject({ code: 'ERR_INTERNAL' })
    expect(ran).toBe(0)
  })

  it('a yoga plugin claims only its own endpoint: one serving /graphql leaves /api/gql unguarded', async () => {
    const { app, enforcer } = setup()
    // A guarded yoga elsewhere does not vouch for this route.
    createYoga({
      schema: createSchema({ typeDefs: schema, resolvers }),
      plugins: [enforcer.graphqlYogaPlugin()],
    })
    await enforcer.applyTo(app)
    yogaRoute(app, [])
    await expect(app.ready()).rejects.toMatchObject({ code: 'ERR_PROFILE_GRAPHQL_UNGUARDED' })
  })
})

describe('Apollo Server at a path other than graphqlPath', () => {
  it('without the enforcer plugin: ready() rejects, naming the route', async () => {
    const { app, enforcer } = setup()
    const server = await apollo([])
    await enforcer.applyTo(app)
    await app.register(fastifyApollo(server), { path: PATH })
    const ready = app.ready()
    await expect(ready).rejects.toMatchObject({ code: 'ERR_PROFILE_GRAPHQL_UNGUARDED' })
    await expect(ready).rejects.toThrow(/\/api\/gql.*Apollo Server.*apolloPlugin/)
  })

  it('with a plugin claiming another path: ready() rejects', async () => {
    const { app, enforcer } = setup()
    const server = await apollo([enforcer.apolloPlugin()])
    await enforcer.applyTo(app)
    await app.register(fastifyApollo(server), { path: PATH })
    await expect(app.ready()).rejects.toMatchObject({ code: 'ERR_PROFILE_GRAPHQL_UNGUARDED' })
  })

  it("with the plugin claiming its path: the 17-deep query is refused 400 with the profile's code", async () => {
    const { app, enforcer } = setup()
    const server = await apollo([enforcer.apolloPlugin({ path: PATH })])
    await enforcer.applyTo(app)
    await app.register(fastifyApollo(server), { path: PATH })
    await app.ready()
    const deep = await ask(app, DEEP)
    expect(deep.statusCode).toBe(400)
    expect(graphqlCodes(deep)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    expect((await ask(app, '{ hello }')).json()).toEqual({ data: { hello: 'world' } })
  })
})
