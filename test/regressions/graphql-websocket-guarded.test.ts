/**
 * Regression (review of issue 14): GraphQL over WebSocket kept none of the
 * promises the HTTP route keeps. mercurius parses a subscription before any
 * hook and sends what it throws as it is, past every error formatter:
 *
 * - a subscription nested 5,000 list brackets deep answered `Maximum call
 *   stack size exceeded`, and one of any length was parsed whole (no token
 *   limit before parsing; a WebSocket message is not bounded by the body
 *   limit);
 * - a `subscribe` resolver's error (`db password=hunter2`) reached the
 *   client under `errorDetail: 'safe'` and `'minimal'`, with or without the
 *   `mercuriusOptions()` spread; without it, a field resolver's error in a
 *   `next` message did too;
 * - refused subscriptions cost nothing: after the upgrade a client could
 *   send them without limit.
 *
 * Each socket of a guarded mercurius is now held to the same rules: the text
 * and the variables are checked before mercurius parses them, every error
 * sent is brought to the profile's level, and (under a profile) every
 * `subscribe` message pays one unit of the principal's budget.
 */

import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import { graphqlGuards, mercuriusGuardOptions } from '../../src/graphql/index.js'
import {
  defineProfile,
  ProfileEnforcer,
  type ProfileOverrides,
  STANDARD,
} from '../../src/profiles/index.js'
import { authenticate } from '../profiles/harness.js'

interface Socket {
  on(event: 'message', listener: (data: Buffer) => void): void
  on(event: 'open' | 'close', listener: () => void): void
  on(event: 'error', listener: (err: Error) => void): void
  send(data: string): void
  terminate(): void
}
const WebSocket = createRequire(import.meta.url)('ws') as new (
  url: string,
  protocol: string,
  options: { headers: Record<string, string> },
) => Socket

const SDL = `
  type Query { hello: String }
  type Tick { id: ID, bad: String }
  type Subscription { tick(n: [Int], node: Node): Tick, boom: Tick }
  input Node { next: Node }
`
const resolvers = {
  Query: { hello: () => 'world' },
  Tick: {
    bad: () => {
      throw new Error('db password=hunter2 in a field')
    },
  },
  Subscription: {
    tick: {
      subscribe: async (
        _: unknown,
        __: unknown,
        ctx: { pubsub: { subscribe(t: string): unknown; publish(e: object): void } },
      ) => {
        const it = await ctx.pubsub.subscribe('TICK')
        ctx.pubsub.publish({ topic: 'TICK', payload: { tick: { id: '1' } } })
        return it
      },
    },
    boom: {
      subscribe: async () => {
        throw new Error('db password=hunter2 at 10.0.0.7')
      },
    },
  },
}

interface Message {
  readonly id?: string
  readonly type: string
  readonly payload?: unknown
}

/** A graphql-transport-ws client on a real socket: send, and wait for the answer to an id. */
async function connect(app: FastifyInstance, path = '/graphql') {
  const port = (app.server.address() as AddressInfo).port
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, 'graphql-transport-ws', {
    headers: { authorization: 'Bearer alice' },
  })
  onTestFinished(() => ws.terminate())
  const messages: Message[] = []
  const waiters: (() => void)[] = []
  ws.on('message', (data) => {
    messages.push(JSON.parse(data.toString()) as Message)
    for (const w of waiters.splice(0)) w()
  })
  await new Promise<void>((resolve, reject) => {
    ws.on('open', resolve)
    ws.on('error', reject)
  })
  const next = (test: (m: Message) => boolean) =>
    new Promise<Message>((resolve) => {
      const look = (): void => {
        const m = messages.find(test)
        if (m === undefined) {
          waiters.push(look)
          return
        }
        messages.splice(messages.indexOf(m), 1)
        resolve(m)
      }
      look()
    })
  ws.send(JSON.stringify({ type: 'connection_init' }))
  await next((m) => m.type === 'connection_ack')
  return {
    /**
     * Subscribes and resolves with the first `error` or `next` message for
     * that id. `variables` as JSON text (a value nested 20,000 deep is more
     * than JSON.stringify can write).
     */
    subscribe(id: string, query: string, variables?: string): Promise<Message> {
      const payload = JSON.stringify({ query }).slice(0, -1)
      ws.send(
        `{"id":${JSON.stringify(id)},"type":"subscribe","payload":${payload}${variables === undefined ? '' : `,"variables":${variables}`}}}`,
      )
      return next((m) => m.id === id && (m.type === 'error' || m.type === 'next'))
    },
  }
}

type Wiring = 'profile' | 'profile without the spread' | 'applyTo after mercurius' | 'graphqlGuards'

async function serve(wiring: Wiring, overrides: ProfileOverrides = {}) {
  const app = Fastify({ logger: false })
  onTestFinished(async () => {
    await app.close()
  })
  const options = { schema: SDL, resolvers, subscription: true }
  if (wiring === 'graphqlGuards') {
    const opts = { maxDepth: 10, maxTokens: 5000, errorDetail: overrides.errorDetail ?? 'safe' }
    await app.register(mercurius, { ...options, ...mercuriusGuardOptions(opts) } as never)
    await app.register(graphqlGuards, opts)
  } else {
    const enforcer = new ProfileEnforcer(defineProfile(STANDARD, overrides), { authenticate })
    const spread = wiring === 'profile without the spread' ? {} : enforcer.mercuriusOptions()
    if (wiring === 'applyTo after mercurius') {
      await app.register(mercurius, { ...options, ...spread } as never)
      await enforcer.applyTo(app)
    } else {
      await enforcer.applyTo(app)
      await app.register(mercurius, { ...options, ...spread } as never)
    }
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  return app
}

const errorsOf = (m: Message) =>
  (m.type === 'error' ? m.payload : (m.payload as { errors?: unknown }).errors) as {
    message: string
    extensions?: { code?: string; requestId?: string }
  }[]
const codesOf = (m: Message) => errorsOf(m).map((e) => e.extensions?.code)

const WIRINGS: readonly Wiring[] = [
  'profile',
  'profile without the spread',
  'applyTo after mercurius',
  'graphqlGuards',
]

describe('GraphQL over WebSocket is held to the guards and the error detail', () => {
  for (const wiring of WIRINGS) {
    describe(wiring, () => {
      it("a subscribe resolver's error is masked (safe)", async () => {
        const ws = await connect(await serve(wiring))
        const m = await ws.subscribe('1', 'subscription { boom { id } }')
        expect(JSON.stringify(m)).not.toContain('hunter2')
        expect(m.type).toBe('error')
        expect(errorsOf(m)[0]).toMatchObject({ message: 'Internal error' })
        expect(codesOf(m)).toEqual(['ERR_INTERNAL'])
      })

      it("a field resolver's error in a next message is masked (safe)", async () => {
        const ws = await connect(await serve(wiring))
        const m = await ws.subscribe('1', 'subscription { tick { id bad } }')
        expect(m.type).toBe('next')
        expect(JSON.stringify(m)).not.toContain('hunter2')
        expect(codesOf(m)).toEqual(['ERR_INTERNAL'])
      })

      it('a subscription nested 5,000 brackets deep: ERR_GRAPHQL_DEPTH_LIMIT, before parsing', async () => {
        const ws = await connect(await serve(wiring))
        const deep = `subscription { tick(n: ${'['.repeat(5000)}${']'.repeat(5000)}) { id } }`
        const m = await ws.subscribe('1', deep)
        expect(JSON.stringify(m)).not.toMatch(/call stack|RangeError/i)
        expect(codesOf(m)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
      })

      it('a subscription over the token limit is refused', async () => {
        const ws = await connect(await serve(wiring))
        const long = `subscription { tick { ${'id '.repeat(20_000)}} }`
        const m = await ws.subscribe('1', long)
        expect(codesOf(m)).toEqual(['ERR_GRAPHQL_TOKEN_LIMIT'])
      })

      it('variables nested 20,000 levels deep: ERR_GRAPHQL_DEPTH_LIMIT', async () => {
        const ws = await connect(await serve(wiring))
        const node = `${'{"next":'.repeat(20_000)}{}${'}'.repeat(20_000)}`
        const m = await ws.subscribe(
          '1',
          'subscription S($x: Node) { tick(node: $x) { id } }',
          `{"x":${node}}`,
        )
        expect(JSON.stringify(m)).not.toMatch(/call stack|RangeError/i)
        expect(codesOf(m)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
      })

      it('a subscription within the limits still runs', async () => {
        const ws = await connect(await serve(wiring))
        const m = await ws.subscribe('1', 'subscription { tick { id } }')
        expect(m).toMatchObject({ type: 'next', payload: { data: { tick: { id: '1' } } } })
      })
    })
  }

  it("'minimal': a generic message and the request id", async () => {
    const ws = await connect(await serve('profile without the spread', { errorDetail: 'minimal' }))
    const m = await ws.subscribe('1', 'subscription { boom { id } }')
    expect(JSON.stringify(m)).not.toContain('hunter2')
    expect(errorsOf(m)[0]).toMatchObject({
      message: 'Internal error',
      extensions: { requestId: expect.any(String) },
    })
    const deep = await ws.subscribe(
      '2',
      `subscription { tick(n: ${'['.repeat(5000)}1${']'.repeat(5000)}) { id } }`,
    )
    expect(errorsOf(deep)[0]).toMatchObject({
      message: 'Request rejected',
      extensions: { code: 'ERR_GRAPHQL_DEPTH_LIMIT' },
    })
  })
})

describe('refused operations over WebSocket are not free', () => {
  it('every subscribe message pays one unit of principalRateLimit, refused or not', async () => {
    const app = await serve('profile', { principalRateLimit: { max: 4 } })
    // The upgrade request paid one unit; three refused subscriptions pay the rest.
    const ws = await connect(app)
    for (let i = 0; i < 3; i++) {
      const m = await ws.subscribe(`bad${i}`, 'subscription { nope }')
      expect(m.type).toBe('error')
      expect(codesOf(m)).not.toContain('ERR_HTTP_RATE_LIMITED')
    }
    const over = await ws.subscribe('over', 'subscription { nope }')
    expect(codesOf(over)).toEqual(['ERR_HTTP_RATE_LIMITED'])
    const valid = await ws.subscribe('valid', 'subscription { tick { id } }')
    expect(codesOf(valid)).toEqual(['ERR_HTTP_RATE_LIMITED'])
  })
})
