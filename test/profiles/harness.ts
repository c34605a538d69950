/**
 * A real Fastify app serving GraphQL through mercurius, graphql-yoga or
 * Apollo Server (each mounted the way its users do) under a profile, for
 * `app.inject()` tests.
 * Requests go through a "trusted proxy" (inject's 127.0.0.1) that vouches
 * for TLS and the client certificate unless a test says otherwise, so each
 * test exercises one setting at a time.
 */

import { ApolloServer } from '@apollo/server'
import fastifyApollo from '@as-integrations/fastify'
import Fastify, {
  type FastifyInstance,
  type InjectOptions,
  type LightMyRequestResponse,
} from 'fastify'
import { createSchema, createYoga } from 'graphql-yoga'
import mercurius from 'mercurius'
import { onTestFinished } from 'vitest'
import { SecurityError } from '../../src/errors.js'
import {
  type AuditEvent,
  type Authenticate,
  ProfileEnforcer,
  type ProfileEnforcerOptions,
  type SecurityProfile,
} from '../../src/profiles/index.js'

export const schema = /* GraphQL */ `
  type User {
    id: ID!
    name: String
    friends(first: Int): [User!]!
  }
  type Query {
    hello: String
    user(id: ID): User
    users(first: Int, limit: Int): [User!]!
    secret: String
  }
  type Mutation {
    setName(name: String!): String
  }
`

const user = (id: number): Record<string, unknown> => ({
  id: String(id),
  name: `user-${id}`,
  friends: ({ first = 2 }: { first?: number }) =>
    Array.from({ length: Math.min(first, 3) }, (_, i) => user(id * 10 + i)),
})

export const resolvers = {
  Query: {
    hello: () => 'world',
    user: () => user(1),
    users: (_: unknown, { first = 2, limit }: { first?: number; limit?: number }) =>
      Array.from({ length: Math.min(limit ?? first, 3) }, (_, i) => user(i)),
    secret: () => {
      throw new Error('db password=hunter2 at 10.0.0.7')
    },
  },
  Mutation: { setName: (_: unknown, { name }: { name: string }) => name },
}

/** `Authorization: Bearer <principal>[:<kind>[:<issuedAt ms>[:<tier>]]]`. */
export const authenticate: Authenticate = (request) => {
  const h = request.headers.authorization
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) return null
  const [principal, kind = 'apiKey', issued, tier] = h.slice(7).split(':')
  if (principal === undefined || principal === '' || principal === 'invalid') return null
  return {
    principal,
    kind: kind as 'apiKey' | 'token' | 'mtls',
    permissions: [],
    ...(issued === undefined || issued === '' ? {} : { issuedAt: Number(issued) }),
    ...(tier === undefined ? {} : { tier }),
  }
}

export interface Harness {
  app: FastifyInstance
  enforcer: ProfileEnforcer
  audit: AuditEvent[]
  /** A request through the trusted proxy with TLS, a client cert and credentials, unless overridden. */
  send(
    options: InjectOptions & { auth?: string | null; tls?: boolean; cert?: boolean },
  ): Promise<LightMyRequestResponse>
  /** POST /graphql `{ query }` (or a batch). */
  gql(
    query: string | object[],
    options?: { auth?: string | null; variables?: object; extensions?: object },
  ): Promise<LightMyRequestResponse>
}

/** The GraphQL servers the enforcer protects; the table-driven tests run over each. */
export const SERVERS = ['mercurius', 'graphql-yoga', 'apollo'] as const
export type GraphqlServerName = (typeof SERVERS)[number]

export interface HarnessOptions {
  enforcer?: ProfileEnforcerOptions
  /** The server of /graphql. @default 'mercurius' */
  server?: GraphqlServerName
  /** Spread `enforcer.mercuriusOptions()` into mercurius (the pinned usage). @default true */
  spread?: boolean
  /** Register the GraphQL server at all. @default true */
  mercurius?: boolean
}

export async function harness(
  profile: SecurityProfile,
  options: HarnessOptions = {},
): Promise<Harness> {
  const audit: AuditEvent[] = []
  // Fastify's trustProxy is the one proxy setting the gates read.
  const app = Fastify({ logger: process.env.DBG === '1', trustProxy: '127.0.0.1' })
  onTestFinished(async () => {
    await app.close()
  })
  const enforcer = new ProfileEnforcer(profile, {
    authenticate,
    clientCertHeader: { name: 'x-ssl-client-verify', value: 'SUCCESS' },
    audit: (event) => {
      audit.push(event)
    },
    publicPaths: ['/public/*'],
    ...options.enforcer,
  })
  const server = options.server ?? 'mercurius'
  if (options.mercurius !== false && server === 'mercurius') {
    await app.register(mercurius, {
      schema,
      resolvers,
      allowBatchedQueries: true,
      ...(options.spread === false ? {} : enforcer.mercuriusOptions()),
    })
  }
  app.get('/health', async () => ({ ok: true }))
  app.get('/public/ping', async () => ({ ok: true }))
  app.get('/me', async (request) => request.auth)
  app.get('/public/me', async (request) => request.auth)
  app.post('/echo', async (request) => ({ bytes: JSON.stringify(request.body).length }))
  app.get('/client-error', async () => {
    throw Object.assign(new SecurityError('the widget id is malformed'), { statusCode: 400 })
  })
  app.get('/crash', async () => {
    throw new Error('connection string postgres://admin:hunter2@db/prod')
  })
  await enforcer.applyTo(app)
  if (options.mercurius !== false && server !== 'mercurius') await mount(app, enforcer, server)
  await app.ready()

  const send: Harness['send'] = ({ auth = 'alice', tls = true, cert = true, headers, ...rest }) =>
    app.inject({
      ...rest,
      headers: {
        ...(tls ? { 'x-forwarded-proto': 'https' } : {}),
        ...(cert ? { 'x-ssl-client-verify': 'SUCCESS' } : {}),
        ...(auth === null ? {} : { authorization: `Bearer ${auth}` }),
        ...headers,
      },
    })
  const gql: Harness['gql'] = (query, { auth = 'alice', variables, extensions } = {}) =>
    send({
      method: 'POST',
      url: '/graphql',
      auth,
      // GraphQL over HTTP's media type: with it graphql-yoga answers a
      // refusal 4xx (to plain application/json it answers 200).
      headers: { accept: 'application/graphql-response+json, application/json' },
      payload: Array.isArray(query) ? query : { query, variables, extensions },
    })
  return { app, enforcer, audit, send, gql }
}

/** graphql-yoga or Apollo Server on /graphql, with the enforcer's plugin, mounted after applyTo. */
async function mount(
  app: FastifyInstance,
  enforcer: ProfileEnforcer,
  server: Exclude<GraphqlServerName, 'mercurius'>,
): Promise<void> {
  if (server === 'graphql-yoga') {
    const yoga = createYoga<{ req: unknown; reply: unknown }>({
      schema: createSchema({ typeDefs: schema, resolvers }),
      plugins: [enforcer.graphqlYogaPlugin()],
      // The profile's maxBatchSize is the limit under test, not yoga's own.
      batching: { limit: 1000 },
      logging: false,
    })
    app.route({
      url: yoga.graphqlEndpoint,
      method: ['GET', 'POST', 'OPTIONS'],
      // graphql-yoga's Fastify recipe: its Response (a ponyfill Fastify
      // does not recognize as one) copied onto the reply.
      handler: async (req, reply) => {
        const response = await yoga.handleNodeRequestAndResponse(req, reply, { req, reply })
        for (const [name, value] of response.headers) reply.header(name, value)
        reply.status(response.status)
        return reply.send(response.body)
      },
    })
    return
  }
  const apollo = new ApolloServer({
    typeDefs: schema,
    resolvers,
    plugins: [enforcer.apolloPlugin()],
    allowBatchedHttpRequests: true,
  })
  await apollo.start()
  onTestFinished(async () => {
    await apollo.stop()
  })
  await app.register(fastifyApollo(apollo))
}

/** The `extensions.code` of each GraphQL error in a response. */
export function graphqlCodes(res: LightMyRequestResponse): string[] {
  const body = res.json() as { errors?: { extensions?: { code?: string } }[] }
  return (body.errors ?? []).map((e) => e.extensions?.code ?? '')
}

/** `{ user { friends { friends … { name } } } }` with `depth` levels (leaf counted). */
export function queryOfDepth(depth: number): string {
  let q = 'name'
  for (let i = 0; i < depth - 2; i++) q = `friends { ${q} }`
  return `{ user { ${q} } }`
}
