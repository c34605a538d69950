/**
 * Regression (review of issue 14): two ways a secret still reached a span.
 *
 * - A bare word where a string was expected (`login(password: hunter2)`, a
 *   client's typo, or a variable default `$p: String = hunter2`) is an enum
 *   value to graphql-js: `graphql.document` kept it ("enums stay: the schema
 *   fixes their values", but not in a String argument) and graphql-js echoed
 *   it in `String cannot represent a non string value: hunter2`. Such values
 *   under a sensitive name are now redacted, and scrubbed from messages.
 * - A block string that holds `"""` is printed by graphql-js with the escape
 *   `\"""`: `Int cannot represent non-integer value: """a \""" Hunter2"""`
 *   matched none of the forms the tracer scrubbed. That form is scrubbed too.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  dropContextManager,
  exportedText,
  otel,
  type TracedServer,
  tracedServer,
  useContextManager,
} from '../graphql/tracing-fixtures.js'

beforeAll(useContextManager)
afterAll(dropContextManager)

const SDL = `
  enum Sort { ASC DESC }
  input SignupInput { pin: Int, name: String, password: String }
  type Query { login(user: String, password: String, sort: Sort): String }
  type Mutation { signup(c: SignupInput): String }
`
const resolvers = {
  Query: { login: () => 'ok' },
  Mutation: { signup: () => 'ok' },
}

let server: TracedServer | undefined
afterEach(async () => {
  await server?.app.close()
  server = undefined
})

async function trace(query: string) {
  const o = otel()
  const tracer = o.tracer({ includeDocument: true })
  server = await tracedServer(o, tracer, { mercurius: { schema: SDL, resolvers } })
  const res = await server.post({ query })
  return { o, res, text: exportedText(o.spans()) }
}

describe('a bare word under a sensitive name is redacted', () => {
  it('login(password: hunter2enum): not in the document, the status or the events', async () => {
    const { o, res, text } = await trace('query { login(user: "x", password: hunter2enum) }')
    expect(res.status).toBe(400)
    expect(text).not.toContain('hunter2enum')
    const span = o.byName('query')
    expect(span.attributes['graphql.document']).toContain('password: "[REDACTED]"')
    expect(span.status.message).toBe('String cannot represent a non string value: [REDACTED]')
  })

  it('an input field: signup(c: {password: HUNTER2ENUM})', async () => {
    const { text } = await trace('mutation { signup(c: {password: HUNTER2ENUM}) }')
    expect(text).not.toContain('HUNTER2ENUM')
  })

  it('a list under a sensitive name: login(password: [hunter2a, hunter2b])', async () => {
    const { text } = await trace('query { login(password: [hunter2a, hunter2b]) }')
    expect(text).not.toMatch(/hunter2a|hunter2b/)
  })

  it('the default of a variable bound to a sensitive argument', async () => {
    const { o, text } = await trace('query Q($p: String = hunter2default) { login(password: $p) }')
    expect(text).not.toContain('hunter2default')
    expect(o.byName('query Q').attributes['graphql.document']).toContain(
      '$p: String = "[REDACTED]"',
    )
  })

  it('an enum value under a plain name stays readable', async () => {
    const { o } = await trace('query { login(user: "x", sort: DESC) }')
    expect(o.byName('query').attributes['graphql.document']).toContain('sort: DESC')
  })
})

describe('a block string holding """ is scrubbed as graphql-js prints it', () => {
  it('signup(c: {pin: """a \\""" Hunter2Block"""})', async () => {
    const { o, text } = await trace('mutation { signup(c: {pin: """a \\""" Hunter2Block"""}) }')
    expect(text).not.toContain('Hunter2Block')
    expect(o.byName('mutation').status.message).toMatch(/\[REDACTED\]/)
  })
})
