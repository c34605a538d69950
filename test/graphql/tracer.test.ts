/**
 * GraphQLTracer against a real SDK (in-memory exporter): span names, kinds,
 * attributes, statuses and the span tree, through the execute wrapper and
 * through mercurius over HTTP; what is recorded, and what never is.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import Fastify, { type FastifyInstance } from 'fastify'
import { execute, parse } from 'graphql'
import mercurius from 'mercurius'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_SENSITIVE_PATTERNS,
  GraphQLTracer,
  graphqlGuards,
  graphqlTracing,
  mercuriusGuardOptions,
  mercuriusTracingHooks,
  type TracingConfig,
} from '../../src/graphql/index.js'
import {
  dropContextManager,
  exportedText,
  idOf,
  otel,
  parentId,
  TRACING_SDL,
  type TracedServer,
  tracedServer,
  tracingSchema,
  useContextManager,
} from './tracing-fixtures.js'

beforeAll(useContextManager)
afterAll(dropContextManager)

/** Runs `query` through the execute wrapper of a tracer on a fresh SDK. */
async function run(
  query: string,
  config: TracingConfig = {},
  extra: { variables?: Record<string, unknown>; operationName?: string; sampled?: boolean } = {},
) {
  const o = otel({ sampled: extra.sampled ?? true })
  const tracer = o.tracer(config)
  const schema = tracingSchema(() => tracer)
  const result = await tracer.wrapExecute(execute)({
    schema,
    document: parse(query),
    variableValues: extra.variables ?? null,
    operationName: extra.operationName ?? null,
  })
  return { o, tracer, result }
}

describe('operation spans (execute wrapper)', () => {
  it.each([
    ['query GetMe { me { id } }', 'query GetMe', 'query', 'GetMe'],
    ['{ me { id } }', 'query', 'query', undefined],
    ['query { me { id } }', 'query', 'query', undefined],
    ['mutation AddPost { addPost(title: "x") { id } }', 'mutation AddPost', 'mutation', 'AddPost'],
    ['mutation { addPost(title: "x") { id } }', 'mutation', 'mutation', undefined],
    ['subscription OnPost { postAdded { id } }', 'subscription OnPost', 'subscription', 'OnPost'],
  ])('%s is one SERVER span named %j with its type and name', async (query, name, type, opName) => {
    const { o } = await run(query)
    const spans = o.spans()
    expect(spans).toHaveLength(1)
    const span = spans[0]!
    expect(span.name).toBe(name)
    expect(span.kind).toBe(SpanKind.SERVER)
    expect(span.attributes['graphql.operation.type']).toBe(type)
    expect(span.attributes['graphql.operation.name']).toBe(opName)
    expect(span.attributes['graphql.document']).toBeUndefined()
    expect(span.status.code).toBe(SpanStatusCode.UNSET)
    expect(span.attributes['error.type']).toBeUndefined()
  })

  it('a multi-operation document is named after the operation operationName selects', async () => {
    const doc = 'query A { me { id } } mutation B { addPost(title: "t") { id } } query C { boom }'
    const { o } = await run(doc, {}, { operationName: 'B' })
    const span = o.byName('mutation B')
    expect(span.attributes).toMatchObject({
      'graphql.operation.type': 'mutation',
      'graphql.operation.name': 'B',
    })
  })

  it('one parsed document run again under other operation names names each span after the operation it ran', async () => {
    const o = otel({ sampled: true })
    const tracer = o.tracer({})
    const schema = tracingSchema(() => tracer)
    const document = parse('query A { me { id } } query B { me { name } }')
    const traced = tracer.wrapExecute(execute)
    // More names than the per-document cache keeps: those past it are still named right.
    const names = ['A', 'B', 'A', ...Array.from({ length: 20 }, (_, i) => `X${i}`), 'B', null]
    for (const operationName of names) await traced({ schema, document, operationName })
    expect(o.spans().map((s) => s.name)).toEqual(
      names.map((n) => (n === 'A' || n === 'B' ? `query ${n}` : 'GraphQL Operation')),
    )
  })

  it('several operations and no operationName: GraphQL Operation, status ERROR', async () => {
    const { o, result } = await run('query A { me { id } } query B { me { name } }')
    expect(result).toHaveProperty('errors')
    const span = o.byName('GraphQL Operation')
    expect(span.attributes['graphql.operation.type']).toBeUndefined()
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
    expect(span.attributes['error.type']).toBe('_OTHER')
  })

  it('operationNameInSpanName: false names spans by type only, the name stays an attribute', async () => {
    const { o } = await run('query GetMe { me { id } }', { operationNameInSpanName: false })
    expect(o.byName('query').attributes['graphql.operation.name']).toBe('GetMe')
  })

  it('a result with errors sets status ERROR, error.type and one exception event per error, though execution returned', async () => {
    const { o, result } = await run('query Q { me { id } boom coded }')
    expect((result as { data: unknown }).data).toMatchObject({ me: { id: '1' }, boom: null })
    const span = o.byName('query Q')
    expect(span.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'connect ECONNREFUSED 10.0.0.5:5432',
    })
    expect(span.attributes['error.type']).toBe('_OTHER')
    expect(span.events.map((e) => [e.name, e.attributes?.['exception.type']])).toEqual([
      ['exception', '_OTHER'],
      ['exception', 'FORBIDDEN'],
    ])
  })

  it('error.type is the first error’s extensions.code when it has one', async () => {
    const { o } = await run('{ coded }')
    expect(o.byName('query').attributes['error.type']).toBe('FORBIDDEN')
  })

  it('the operation span is a child of the active span', async () => {
    const o = otel()
    const tracer = o.tracer()
    const parent = o.provider.getTracer('app').startSpan('HTTP POST')
    await context.with(trace.setSpan(context.active(), parent), () =>
      tracer.wrapExecute(execute)({
        schema: tracingSchema(() => tracer),
        document: parse('{ me { id } }'),
      }),
    )
    expect(parentId(o.byName('query'))).toBe(idOf(parent))
  })

  it('a synchronous execute result is traced too', async () => {
    const o = otel()
    const tracer = o.tracer()
    const result = tracer.wrapExecute(execute)({
      schema: tracingSchema(() => tracer),
      document: parse('{ me { name } }'),
    })
    expect(result).toEqual({ data: { me: { name: 'ada' } } })
    expect(o.byName('query').ended).toBe(true)
  })
})

describe('resolver spans', () => {
  it('are off by default: one span per operation', async () => {
    const { o } = await run('{ me { id name posts { title } } }')
    expect(o.spans().map((s) => s.name)).toEqual(['query'])
  })

  it('with traceResolvers, each field is an INTERNAL child of the operation span named by its path', async () => {
    const { o } = await run('query Q { me { id posts(first: 2) { title } } }', {
      traceResolvers: true,
    })
    const op = o.byName('query Q')
    const children = o.spans().filter((s) => s !== op)
    for (const s of children) {
      expect(parentId(s)).toBe(idOf(op))
      expect(s.kind).toBe(SpanKind.INTERNAL)
    }
    expect(children.map((s) => s.name).sort()).toEqual([
      'me',
      'me.id',
      'me.posts',
      'me.posts.title',
      'me.posts.title',
    ])
    const titles = children.filter((s) => s.name === 'me.posts.title')
    expect(titles.map((s) => s.attributes['graphql.field.path']).sort()).toEqual([
      'me.posts.0.title',
      'me.posts.1.title',
    ])
    expect(o.byName('me.posts').attributes).toMatchObject({
      'graphql.field.name': 'posts',
      'graphql.field.type': '[Post!]!',
    })
  })

  it('stop at maxResolverSpans per operation; the operation span counts the rest', async () => {
    const { o } = await run('{ users(first: 10) { id name } }', {
      traceResolvers: true,
      maxResolverSpans: 5,
    })
    const op = o.byName('query')
    expect(o.spans()).toHaveLength(6)
    expect(op.attributes['fraiseql.graphql.resolver_spans.dropped']).toBe(21 - 5)
  })

  it('a failing resolver’s span has status ERROR and error.type', async () => {
    const { o } = await run('{ boom }', { traceResolvers: true })
    const span = o.byName('boom')
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
    expect(span.attributes['error.type']).toBe('_OTHER')
  })

  it('a custom fieldResolver still resolves fields without their own resolver', async () => {
    const o = otel()
    const tracer = o.tracer({ traceResolvers: true })
    const result = await tracer.wrapExecute(execute)({
      schema: tracingSchema(() => tracer),
      document: parse('{ me { id name } }'),
      fieldResolver: (source, _args, _ctx, info) =>
        String((source as Record<string, unknown>)[info.fieldName]).toUpperCase(),
    })
    expect(result).toEqual({ data: { me: { id: '1', name: 'ADA' } } })
    expect(o.spans().map((s) => s.name)).toContain('me.name')
  })
})

describe('traceDataAccess', () => {
  it('is a CLIENT child of the resolver span that calls it', async () => {
    const { o } = await run('{ lookup(id: "7") }', { traceResolvers: true })
    const data = o.byName('db.lookup')
    expect(data.kind).toBe(SpanKind.CLIENT)
    expect(data.attributes).toEqual({ 'db.system': 'test' })
    expect(parentId(data)).toBe(idOf(o.byName('lookup')))
  })

  it('is a child of the operation span without resolver spans', async () => {
    const { o } = await run('{ lookup(id: "7") }')
    expect(parentId(o.byName('db.lookup'))).toBe(idOf(o.byName('query')))
  })

  it('records no span when off, with no active span, or under a span that does not record', async () => {
    const o = otel()
    const off = o.tracer({ traceDataAccess: false })
    const on = o.tracer()
    const parent = o.provider.getTracer('app').startSpan('parent')
    expect(
      await context.with(trace.setSpan(context.active(), parent), () =>
        off.traceDataAccess('x', async () => 1),
      ),
    ).toBe(1)
    expect(on.traceDataAccess('y', () => 2)).toBe(2)
    const unsampled = trace.wrapSpanContext({ ...parent.spanContext(), traceFlags: 0 })
    expect(
      context.with(trace.setSpan(context.active(), unsampled), () =>
        on.traceDataAccess('z', () => 3),
      ),
    ).toBe(3)
    expect(o.spans()).toEqual([])
  })

  it('a failure sets status ERROR and error.type without the message', async () => {
    const o = otel()
    const tracer = o.tracer()
    const parent = o.provider.getTracer('app').startSpan('parent')
    const failure = Object.assign(new Error('duplicate key (email)=(ada@example.com)'), {
      code: '23505',
    })
    await expect(
      context.with(trace.setSpan(context.active(), parent), () =>
        tracer.traceDataAccess('db.insert', async () => {
          throw failure
        }),
      ),
    ).rejects.toBe(failure)
    expect(() =>
      context.with(trace.setSpan(context.active(), parent), () =>
        tracer.traceDataAccess('db.sync', () => {
          throw new TypeError('boom')
        }),
      ),
    ).toThrow(TypeError)
    // 23505 starts with a digit: not a class name, so the fallback.
    expect(o.byName('db.insert').attributes['error.type']).toBe('_OTHER')
    expect(o.byName('db.insert').status).toEqual({ code: SpanStatusCode.ERROR })
    expect(o.byName('db.sync').attributes['error.type']).toBe('TypeError')
    expect(exportedText(o.spans())).not.toContain('ada@example.com')
  })

  it('needs a name and a function', () => {
    const tracer = otel().tracer()
    expect(() => tracer.traceDataAccess('', () => 1)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
    expect(() => tracer.traceDataAccess('x', undefined as never)).toThrow(/`fn`/)
  })
})

describe('what is recorded', () => {
  it('includeDocument records the document with every string and number literal redacted', async () => {
    const { o } = await run(
      'query Q { login(user: "ada", password: "hunter2") users(first: 3) { id } }',
      { includeDocument: true },
    )
    const doc = o.byName('query Q').attributes['graphql.document'] as string
    expect(doc).toContain('login(user: "[REDACTED]", password: "[REDACTED]")')
    expect(doc).toContain('users(first: "[REDACTED]")')
    expect(doc).not.toContain('hunter2')
    expect(doc).not.toContain('ada')
  })

  it('the document is cut to maxQueryLength after redaction', async () => {
    const fields = Array.from({ length: 200 }, (_, i) => `f${i}: me { id }`).join(' ')
    const { o } = await run(`query Long { ${fields} }`, {
      includeDocument: true,
      maxQueryLength: 100,
    })
    const doc = o.byName('query Long').attributes['graphql.document'] as string
    expect(doc).toHaveLength(100)
    expect(doc.endsWith('…')).toBe(true)
  })

  it('includeVariables records them redacted by key, and a variable bound to a sensitive argument whatever its name', async () => {
    const { o } = await run(
      'query Q($u: String!, $p: String!, $input: JSON) { login(user: $u, password: $p) echo(input: $input) }',
      { includeVariables: true },
      {
        variables: {
          u: 'ada',
          p: 'hunter2',
          input: { apiToken: 'tok-1', nested: [{ 'API-Key': 'k-2' }], keyboard: 'qwerty' },
        },
      },
    )
    const recorded = JSON.parse(o.byName('query Q').attributes['graphql.variables'] as string)
    expect(recorded).toEqual({
      u: 'ada',
      p: '[REDACTED]',
      input: { apiToken: '[REDACTED]', nested: [{ 'API-Key': '[REDACTED]' }], keyboard: 'qwerty' },
    })
  })

  it('sanitizeVariables: false records variables as sent', async () => {
    const { o } = await run(
      'query Q($input: JSON) { echo(input: $input) }',
      { includeVariables: true, sanitizeVariables: false },
      { variables: { input: { password: 'visible' } } },
    )
    expect(o.byName('query Q').attributes['graphql.variables']).toBe(
      '{"input":{"password":"visible"}}',
    )
  })

  it('variables and document are not recorded by default', async () => {
    const { o } = await run(
      'query Q($input: JSON) { echo(input: $input) }',
      {},
      { variables: { input: { note: 'plain' } } },
    )
    const attributes = o.byName('query Q').attributes
    expect(attributes['graphql.variables']).toBeUndefined()
    expect(attributes['graphql.document']).toBeUndefined()
  })

  it('an error message echoing a redacted variable is scrubbed, in the status and the events', async () => {
    const { o } = await run(
      'query Q($u: String!, $p: String!) { login(user: $u, password: $p) }',
      { traceResolvers: true },
      { variables: { u: 'ada', p: 'hunter2' } },
    )
    const expected = 'wrong password [REDACTED] for ada'
    expect(o.byName('query Q').status.message).toBe(expected)
    expect(o.byName('query Q').events[0]?.attributes?.['exception.message']).toBe(expected)
    expect(o.byName('login').status.message).toBe(expected)
    expect(exportedText(o.spans())).not.toContain('hunter2')
  })

  it('an error message echoing an inline literal is scrubbed, whatever the argument is called', async () => {
    const { o } = await run('{ login(user: "ada", password: "s3cr3t-inline") }')
    // Every literal graphql.document redacts is scrubbed: the user name too.
    expect(o.byName('query').status.message).toBe('wrong password [REDACTED] for [REDACTED]')
  })

  it('messages are redacted first, then cut: a secret across the cut leaves no prefix behind', async () => {
    const secret = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
    const { o } = await run(
      'query Q($input: JSON) { echo(input: $input) }',
      { maxQueryLength: 30 },
      { variables: { input: { token: secret } } },
    )
    const message = o.byName('query Q').status.message!
    expect(message).toHaveLength(30)
    expect(message).toBe('bad input {"token":"[REDACTED…')
    expect(exportedText(o.spans())).not.toContain('ABCDEF')
  })

  it('a span that does not record costs no redaction, printing or variable read', async () => {
    let reads = 0
    const variables = new Proxy(
      { input: { password: 'x' } },
      {
        get(target, key, receiver) {
          reads++
          return Reflect.get(target, key, receiver)
        },
      },
    )
    const o = otel({ sampled: false })
    const tracer = o.tracer({ includeDocument: true, includeVariables: true, traceResolvers: true })
    const schema = tracingSchema(() => tracer)
    const wrapped = tracer.wrapExecute((args) => {
      expect(args.variableValues).toBe(variables)
      return execute(args)
    })
    await wrapped({
      schema,
      document: parse('query Q($input: JSON) { echo(input: $input) }'),
      variableValues: variables,
    })
    // graphql-js coerces `input` itself: one read, none by the tracer.
    expect(reads).toBe(1)
    expect(o.spans()).toEqual([])
  })
})

describe('configuration', () => {
  it('defaults', () => {
    const { tracerProvider: _, ...config } = new GraphQLTracer().config
    expect(config).toEqual({
      traceResolvers: false,
      maxResolverSpans: 100,
      traceDataAccess: true,
      ignoreTrivialResolveSpans: false,
      includeVariables: false,
      sanitizeVariables: true,
      sensitivePatterns: [...DEFAULT_SENSITIVE_PATTERNS],
      includeDocument: false,
      maxQueryLength: 1000,
      operationNameInSpanName: true,
    })
    expect(DEFAULT_SENSITIVE_PATTERNS).toEqual([
      'password',
      'passwd',
      'passphrase',
      'passcode',
      'pwd',
      'token',
      'secret',
      'key',
      'private_key',
      'privkey',
      'auth',
      'credential',
      'api_key',
      'apikey',
      'authorization',
      'cookie',
      'session',
      'jwt',
    ])
  })

  it.each([
    [{ maxQueryLength: 0 }, 'maxQueryLength'],
    [{ traceResolvers: 'yes' }, 'traceResolvers'],
    [{ sensitivePatterns: ['--'] }, 'sensitivePatterns[0]'],
    [{ tracerProvider: {} }, 'tracerProvider'],
    [{ includeVariabels: true }, 'includeVariabels'],
  ])('%j is ERR_CONFIG_INVALID naming %s', (config, field) => {
    expect(() => new GraphQLTracer(config as TracingConfig)).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        issues: [expect.objectContaining({ field })],
      }),
    )
  })

  it('sensitivePatterns replaces the defaults', async () => {
    const { o } = await run(
      'query Q($input: JSON) { echo(input: $input) }',
      { includeVariables: true, sensitivePatterns: ['ssn'] },
      { variables: { input: { ssn: '078-05-1120', password: 'p' } } },
    )
    expect(JSON.parse(o.byName('query Q').attributes['graphql.variables'] as string)).toEqual({
      input: { ssn: '[REDACTED]', password: 'p' },
    })
  })

  it('the global provider is the default', async () => {
    const o = otel()
    trace.setGlobalTracerProvider(o.provider)
    try {
      const tracer = new GraphQLTracer()
      await tracer.wrapExecute(execute)({
        schema: tracingSchema(() => tracer),
        document: parse('{ me { id } }'),
      })
      expect(o.spans().map((s) => s.name)).toEqual(['query'])
    } finally {
      trace.disable()
    }
  })
})

describe('mercurius over HTTP', () => {
  let server: TracedServer | undefined
  afterEach(async () => {
    await server?.app.close()
    server = undefined
  })

  async function start(config: TracingConfig = {}, setup?: Parameters<typeof tracedServer>[2]) {
    const o = otel()
    server = await tracedServer(o, o.tracer(config), setup)
    return { o, server }
  }

  it('the operation span is a child of the HTTP server span, its resolver spans children of it', async () => {
    const { o, server } = await start({ traceResolvers: true })
    const res = await server.post({ query: 'query Me { me { id name } }' })
    expect(res).toEqual({ status: 200, body: { data: { me: { id: '1', name: 'ada' } } } })
    const op = o.byName('query Me')
    expect(op.kind).toBe(SpanKind.SERVER)
    expect(parentId(op)).toBe(idOf(server.httpSpans[0]!))
    for (const name of ['me', 'me.id', 'me.name']) {
      expect(parentId(o.byName(name))).toBe(idOf(op))
    }
  })

  it('without resolver spans, a data-access span inside a resolver is a child of the operation span', async () => {
    const { o, server } = await start()
    await server.post({ query: '{ lookup(id: "1") }' })
    expect(parentId(o.byName('db.lookup'))).toBe(idOf(o.byName('query')))
    expect(o.spans()).toHaveLength(2)
  })

  it('with resolver spans, a data-access span is a child of its resolver’s span', async () => {
    const { o, server } = await start({ traceResolvers: true })
    await server.post({ query: '{ lookup(id: "1") }' })
    expect(parentId(o.byName('db.lookup'))).toBe(idOf(o.byName('lookup')))
  })

  it('a refused operation is named from its document; a syntax error keeps the generic name', async () => {
    const { o, server } = await start()
    await server.post({ query: 'query Nope { nope }' })
    await server.post({ query: 'query Nope { nope' })
    expect(o.spans().map((s) => s.name)).toEqual(['query Nope', 'GraphQL Operation'])
  })

  it('a cached query is traced on every request, with the operation the body names', async () => {
    const { o, server } = await start()
    const query = 'query A { me { id } } mutation B { addPost(title: "x") { id } }'
    await server.post({ query, operationName: 'A' })
    await server.post({ query, operationName: 'B' })
    await server.post({ query, operationName: 'A' })
    expect(o.spans().map((s) => s.name)).toEqual(['query A', 'mutation B', 'query A'])
  })

  it('errors in the result: status ERROR with error.type, message scrubbed of the password', async () => {
    const { o, server } = await start()
    const res = await server.post({
      query: 'mutation Login($p: String!) { login(user: "ada", password: $p) }',
      variables: { p: 'hunter2' },
    })
    expect(res.status).toBe(400)
    // A query operation sent as `mutation`: refused by validation (no such
    // field), the span still named from the document.
    const span = o.byName('mutation Login')
    expect(span.attributes['graphql.operation.type']).toBe('mutation')
    expect(span.attributes['error.type']).toBe('GRAPHQL_VALIDATION_FAILED')
    await server.post({
      query: 'query Login($u: String!, $p: String!) { login(user: $u, password: $p) }',
      variables: { u: 'ada', p: 'hunter2' },
    })
    const login = o.byName('query Login')
    expect(login.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'wrong password [REDACTED] for ada',
    })
    expect(exportedText(o.spans())).not.toContain('hunter2')
  })

  it('a syntax error is a GraphQL Operation span with error.type GRAPHQL_PARSE_FAILED', async () => {
    const { o, server } = await start()
    const res = await server.post({ query: '{ me { id }' })
    expect(res.status).toBe(400)
    const span = o.byName('GraphQL Operation')
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
    expect(span.attributes['error.type']).toBe('GRAPHQL_PARSE_FAILED')
    expect(parentId(span)).toBe(idOf(server.httpSpans[0]!))
  })

  it('an operation a guard refuses before execution is a span with the guard’s code', async () => {
    const guard = { maxDepth: 2 }
    const { o, server } = await start(
      {},
      {
        mercurius: mercuriusGuardOptions(guard),
        before: async (app) => {
          await app.register(graphqlGuards, guard)
        },
      },
    )
    const res = await server.post({ query: 'query Deep { me { posts { title } } }' })
    expect(res.status).toBe(400)
    const span = o.byName('query Deep')
    expect(span.attributes['error.type']).toBe('ERR_GRAPHQL_DEPTH_LIMIT')
    expect(span.status.message).toBe('Query is too deep.')
  })

  it('each operation of a batch is its own span, refused ones included', async () => {
    const { o, server } = await start({}, { mercurius: { allowBatchedQueries: true } })
    const res = await server.post([
      { query: 'query One { me { id } }' },
      { query: '{ nope }' },
      { query: 'mutation Two { addPost(title: "t") { id } }' },
    ])
    expect(res.status).toBe(200)
    const names = o.spans().map((s) => s.name)
    expect(names.sort()).toEqual(['mutation Two', 'query', 'query One'])
    expect(o.byName('query').attributes['error.type']).toBe('GRAPHQL_VALIDATION_FAILED')
    for (const span of o.spans()) expect(parentId(span)).toBe(idOf(server.httpSpans[0]!))
  })

  it('a sampled-out request leaves no span and answers as usual', async () => {
    const o = otel({ sampled: false })
    server = await tracedServer(o, o.tracer({ traceResolvers: true, includeVariables: true }))
    const res = await server.post({ query: '{ me { id } lookup(id: "1") }' })
    expect(res).toEqual({ status: 200, body: { data: { me: { id: '1' }, lookup: 'row 1' } } })
    expect(o.spans()).toEqual([])
    // Nothing was parsed for a span that did not record.
    expect(server.app.graphqlTracer?.knownDocument('{ me { id } lookup(id: "1") }')).toBeUndefined()
  })
})

describe('the document cache that names mercurius spans', () => {
  it('parses a source once, remembers a syntax error as null, and keeps the recent sources', () => {
    const tracer = new GraphQLTracer()
    const doc = tracer.documentFor('query A { me { id } }')
    expect(doc?.kind).toBe('Document')
    expect(tracer.documentFor('query A { me { id } }')).toBe(doc)
    expect(tracer.documentFor('query A { me { id }')).toBeNull()
    expect(tracer.knownDocument('query A { me { id }')).toBeNull()
    expect(tracer.knownDocument('{ never }')).toBeUndefined()
    // Two generations of 500: a source used again survives, forgotten ones parse again.
    for (let i = 0; i < 1200; i++) {
      tracer.documentFor(`{ f${i} }`)
      if (i % 100 === 0) tracer.knownDocument('query A { me { id } }')
    }
    expect(tracer.knownDocument('query A { me { id } }')).toBe(doc)
    expect(tracer.knownDocument('{ f0 }')).toBeUndefined()
    expect(tracer.knownDocument('{ f1199 }')?.kind).toBe('Document')
  })

  it('does not keep a very long source', () => {
    const tracer = new GraphQLTracer()
    const long = `{ me { id ${' '.repeat(30_000)} } }`
    expect(tracer.documentFor(long)?.kind).toBe('Document')
    expect(tracer.knownDocument(long)).toBeUndefined()
  })
})

describe('the plugin and the hooks', () => {
  let app: FastifyInstance | undefined
  afterEach(async () => {
    await app?.close()
    app = undefined
  })

  /** A fresh app with mercurius registered (closed after the test). */
  async function withMercurius(): Promise<FastifyInstance> {
    app = Fastify()
    await app.register(mercurius, { schema: TRACING_SDL, resolvers: { Query: { me: () => null } } })
    return app
  }

  it('refuses to register before mercurius, naming the fix', async () => {
    app = Fastify()
    await expect(app.register(graphqlTracing, {})).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringContaining('register mercurius before graphqlTracing'),
    })
  })

  it('takes a tracer or a configuration, not both', async () => {
    const o = otel()
    const app = await withMercurius()
    await expect(
      app.register(graphqlTracing, { tracer: o.tracer(), includeDocument: true }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', issues: [{ field: 'includeDocument' }] })
  })

  it('refuses a second registration on the same app', async () => {
    const o = otel()
    const app = await withMercurius()
    await app.register(graphqlTracing, { tracer: o.tracer() })
    await expect(app.register(graphqlTracing, { tracer: o.tracer() })).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringContaining('already registered'),
    })
  })

  it('builds a tracer from a configuration and exposes it as app.graphqlTracer', async () => {
    const o = otel()
    const app = await withMercurius()
    await app.register(graphqlTracing, { tracerProvider: o.provider, includeDocument: true })
    await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ me { id } }' } })
    expect(app.graphqlTracer).toBeInstanceOf(GraphQLTracer)
    expect(o.byName('query').attributes['graphql.document']).toBe('{\n  me {\n    id\n  }\n}')
  })

  it('app.graphql() called directly is traced too (no HTTP request)', async () => {
    const o = otel()
    const app = await withMercurius()
    await app.register(graphqlTracing, { tracer: o.tracer() })
    await app.ready()
    await app.graphql('query Direct { me { id } }')
    expect(o.spans().map((s) => s.name)).toEqual(['query Direct'])
  })

  it('mercuriusTracingHooks added by hand trace operations; without the plugin a refusal leaves no span', async () => {
    const o = otel()
    const app = await withMercurius()
    const hooks = mercuriusTracingHooks(o.tracer())
    app.graphql.addHook('preParsing', hooks.preParsing)
    app.graphql.addHook('preExecution', hooks.preExecution)
    app.graphql.addHook('onResolution', hooks.onResolution)
    const parent = o.provider.getTracer('app').startSpan('outer')
    await context.with(trace.setSpan(context.active(), parent), () =>
      app.graphql('query ByHand { me { id } }'),
    )
    await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ nope }' } })
    expect(o.spans().map((s) => s.name)).toEqual(['query ByHand'])
    expect(parentId(o.byName('query ByHand'))).toBe(idOf(parent))
  })

  it('mercuriusTracingHooks: a WebSocket subscription’s setup is one span with its type and name', async () => {
    const o = otel()
    const hooks = mercuriusTracingHooks(o.tracer())
    await hooks.preSubscriptionExecution(
      null as never,
      parse('subscription OnPost { postAdded { id } }'),
      {},
    )
    const span = o.byName('subscription OnPost')
    expect(span.attributes['graphql.operation.type']).toBe('subscription')
    expect(span.ended).toBe(true)
  })
})
