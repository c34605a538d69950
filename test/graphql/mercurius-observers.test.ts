/**
 * onAccept / onReject / reportOnly under mercurius (the spread and the
 * plugin): every decision reaches the observers with the Fastify request,
 * including refusals the spread's validation rules would have made without
 * it, and a cached query's; reportOnly runs what it reports.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import mercurius from 'mercurius'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type GraphqlGuardOptions,
  type GuardDecision,
  graphqlGuards,
  mercuriusGuardOptions,
} from '../../src/graphql/index.js'
import { nested, resolvers, SDL } from './fixtures.js'

let app: FastifyInstance | undefined

afterEach(async () => {
  await app?.close()
  app = undefined
})

async function build(guard: GraphqlGuardOptions): Promise<FastifyInstance> {
  app = Fastify()
  await app.register(mercurius, {
    schema: SDL,
    resolvers,
    ...mercuriusGuardOptions(guard),
  } as never)
  await app.register(graphqlGuards, guard)
  await app.ready()
  return app
}

async function post(query: string, client: string) {
  const res = await app!.inject({
    method: 'POST',
    url: '/graphql',
    headers: { 'content-type': 'application/json', 'x-client': client },
    payload: { query },
  })
  return { status: res.statusCode, body: res.json() as { data?: unknown; errors?: unknown[] } }
}

describe('guard observers under mercurius', () => {
  it('onReject gets the request for validation-time refusals, cached or not; onAccept the rest', async () => {
    const seen: [string, unknown, readonly string[]][] = []
    const observe = (kind: string) => (request: FastifyRequest, d: GuardDecision) => {
      seen.push([kind, request.headers['x-client'], d.codes])
    }
    await build({
      maxDepth: 4,
      maxTokens: 200,
      onAccept: observe('accept') as never,
      onReject: observe('reject') as never,
    })
    expect((await post('{ me { name } }', 'a')).status).toBe(200)
    expect((await post(nested(6), 'b')).status).toBe(400)
    expect((await post(nested(6), 'c')).status).toBe(400) // same text again
    const flood = `{ ${Array.from({ length: 300 }, (_, i) => `a${i}: __typename`).join(' ')} }`
    expect((await post(flood, 'd')).status).toBe(400)
    expect(seen).toEqual([
      ['accept', 'a', []],
      ['reject', 'b', ['ERR_GRAPHQL_DEPTH_LIMIT']],
      ['reject', 'c', ['ERR_GRAPHQL_DEPTH_LIMIT']],
      ['reject', 'd', ['ERR_GRAPHQL_TOKEN_LIMIT']],
    ])
  })

  it('reportOnly runs the operation and reports it once, not enforced', async () => {
    const reported: GuardDecision[] = []
    await build({
      maxDepth: 4,
      reportOnly: true,
      onReject: ((_r: unknown, d: GuardDecision) => {
        reported.push(d)
      }) as never,
    })
    const deep = await post(nested(6), 'x')
    expect(deep.status).toBe(200)
    expect(deep.body.errors).toBeUndefined()
    expect(reported.map((d) => [d.codes, d.enforced, d.metrics?.depth])).toEqual([
      [['ERR_GRAPHQL_DEPTH_LIMIT'], false, 6],
    ])
  })

  it('reportOnly without onReject is refused at registration', async () => {
    await expect(build({ maxDepth: 4, reportOnly: true })).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
    })
  })
})
