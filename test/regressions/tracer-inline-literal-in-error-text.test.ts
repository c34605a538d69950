/**
 * Regression: the tracer scrubbed error messages only of literals under
 * sensitive argument names, while `graphql.document` redacts every string,
 * integer and float literal. graphql-js echoes literals in its own error
 * text: for `signup(c: {pin: "Hunter2Secret"})` with `pin` an `Int`, the
 * document showed `"[REDACTED]"` and the status and exception event said
 * `Int cannot represent non-integer value: "Hunter2Secret"`.
 *
 * And scrubbing replaced every substring: a one-character password turned
 * `wrong password` into `wrong p[REDACTED]ssword`. Values are now replaced
 * where they stand as values (quoted, or delimited by non-alphanumerics).
 */
import { execute, parse } from 'graphql'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  dropContextManager,
  exportedText,
  otel,
  type TracedServer,
  tracedServer,
  tracingSchema,
  useContextManager,
} from '../graphql/tracing-fixtures.js'

beforeAll(useContextManager)
afterAll(dropContextManager)

const SIGNUP_SDL = `
  input SignupInput { pin: Int, name: String, ratio: Float }
  type Query { ok: Boolean }
  type Mutation { signup(c: SignupInput): String }
`

let server: TracedServer | undefined
afterEach(async () => {
  await server?.app.close()
  server = undefined
})

describe('literals graphql-js echoes in its own errors (mercurius)', () => {
  it('signup(c: {pin: "Hunter2Secret"}): no trace of the literal in status or events', async () => {
    const o = otel()
    const tracer = o.tracer({ includeDocument: true })
    server = await tracedServer(o, tracer, {
      mercurius: { schema: SIGNUP_SDL, resolvers: { Mutation: { signup: () => 'ok' } } },
    })
    const res = await server.post({ query: 'mutation { signup(c: {pin: "Hunter2Secret"}) }' })
    expect(res.status).toBe(400)
    const span = o.byName('mutation')
    expect(span.attributes['graphql.document']).toContain('pin: "[REDACTED]"')
    expect(span.status.message).toBe('Int cannot represent non-integer value: "[REDACTED]"')
    expect(span.events[0]?.attributes?.['exception.message']).toBe(
      'Int cannot represent non-integer value: "[REDACTED]"',
    )
    expect(exportedText(o.spans())).not.toContain('Hunter2Secret')
  })

  it('escaped as graphql-js prints it (quotes, backslashes, control characters)', async () => {
    const o = otel()
    const tracer = o.tracer()
    server = await tracedServer(o, tracer, {
      mercurius: { schema: SIGNUP_SDL, resolvers: { Mutation: { signup: () => 'ok' } } },
    })
    await server.post({ query: String.raw`mutation { signup(c: {pin: "a\"b\\c\u0001d\u0085"}) }` })
    const message = o.byName('mutation').status.message!
    expect(message).toBe('Int cannot represent non-integer value: "[REDACTED]"')
  })

  it('an Int literal out of range and a Float literal for an Int are scrubbed too', async () => {
    const o = otel()
    const tracer = o.tracer()
    server = await tracedServer(o, tracer, {
      mercurius: { schema: SIGNUP_SDL, resolvers: { Mutation: { signup: () => 'ok' } } },
    })
    await server.post({ query: 'mutation A { signup(c: {pin: 98765432101}) }' })
    await server.post({ query: 'mutation B { signup(c: {pin: 4.25}) }' })
    const text = exportedText(o.spans())
    expect(text).not.toContain('98765432101')
    expect(text).not.toContain('4.25')
    expect(o.byName('mutation A').status.message).toMatch(/\[REDACTED\]$/)
  })
})

describe('whole values, not substrings (execute wrapper)', () => {
  async function run(query: string, variables?: Record<string, unknown>) {
    const o = otel()
    const tracer = o.tracer({ traceResolvers: true })
    await tracer.wrapExecute(execute)({
      schema: tracingSchema(() => tracer),
      document: parse(query),
      variableValues: variables ?? null,
    })
    return o
  }

  it('a one-character password does not mangle "wrong password"', async () => {
    const o = await run('query Q($u: String!, $p: String!) { login(user: $u, password: $p) }', {
      u: 'ada',
      p: 'a',
    })
    expect(o.byName('query Q').status.message).toBe('wrong password [REDACTED] for ada')
    expect(o.byName('login').status.message).toBe('wrong password [REDACTED] for ada')
  })

  it('short inline literals are replaced where they stand as words, and nowhere else', async () => {
    const o = await run('{ login(user: "o", password: "s") }')
    expect(o.byName('query').status.message).toBe('wrong password [REDACTED] for [REDACTED]')
  })

  it('a value that is part of a longer word is left alone; the same value alone is not', async () => {
    const o = await run('query Q($p: String!) { login(user: "x", password: $p) }', { p: 'pass' })
    // "password" contains "pass" but is another word; the password itself is replaced.
    expect(o.byName('query Q').status.message).toBe('wrong password [REDACTED] for [REDACTED]')
  })
})
