/**
 * redactSensitive: which keys are sensitive (strong words anywhere, other
 * patterns by segment), how values are walked and copied, and the promise the tracer
 * is built on: for any nested value with secret keys, and for any inline
 * literal, no secret reaches an exported attribute, status or event.
 */
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { execute, parse } from 'graphql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_SENSITIVE_PATTERNS, redactSensitive } from '../../src/graphql/index.js'
import { scrubList, scrubText } from '../../src/graphql/redact.js'
import {
  dropContextManager,
  exportedText,
  otel,
  tracingSchema,
  useContextManager,
} from './tracing-fixtures.js'

beforeAll(useContextManager)
afterAll(dropContextManager)

const R = '[REDACTED]'

/** Keys the default patterns must redact, each with the pattern or rule that catches it. */
const MUST_REDACT: readonly (readonly [string, string])[] = [
  ['password', 'password'],
  ['Password', 'case'],
  ['PASSWORD', 'case'],
  ['userPassword', 'camelCase segment'],
  ['password_hash', 'snake_case segment'],
  ['passwords', 'plural'],
  ['password2', 'digits split'],
  ['apiToken', 'token'],
  ['api_token', 'token'],
  ['access-token', 'kebab-case segment'],
  ['refreshToken', 'token'],
  ['oauth2Token', 'token after digits'],
  ['API-Key', 'api_key'],
  ['apiKey', 'api_key'],
  ['APIKey', 'acronym then word'],
  ['api_key', 'api_key'],
  ['apikey', 'apikey'],
  ['APIKEY', 'apikey, case'],
  ['x-api-key', 'header name'],
  ['privateKey', 'key'],
  ['primaryKey', 'key (segment rule: any key)'],
  ['secret', 'secret'],
  ['clientSecret', 'secret'],
  ['client_secret', 'secret'],
  ['secrets', 'plural'],
  ['auth', 'auth'],
  ['x_auth_header', 'auth segment'],
  ['authToken', 'auth'],
  ['Authorization', 'authorization'],
  ['proxy-authorization', 'authorization'],
  ['cookie', 'cookie'],
  ['Set-Cookie', 'cookie'],
  ['cookies', 'plural'],
  ['sessionId', 'session'],
  ['session_token', 'session'],
  ['SESSION', 'session, case'],
  ['jwt', 'jwt'],
  ['idJwt', 'jwt segment'],
  ['credential', 'credential'],
  ['credentials', 'plural'],
  ['userCredentials', 'plural segment'],
  ['user.credentials[0].secret', 'a dotted path as one key'],
  ['user password', 'space separated'],
]

/**
 * Known false positives, listed in docs/graphql.md: names that contain a
 * strong word (matched anywhere) without holding a secret. Redacted, on purpose.
 */
const KNOWN_FALSE_POSITIVES: readonly string[] = [
  'tokenizer',
  'tokenization',
  'maxTokens',
  'tokenCount',
  'secretary',
  'secretariat',
  'passwordless',
  'passwordPolicy',
  'passwordChangedAt',
  'hasPassword',
  'credentialType',
  'tokenExpiresAt',
  'apiKeyCount',
]

/** Keys that contain a short pattern as a substring but not as a word. */
const MUST_NOT_REDACT: readonly (readonly [string, string])[] = [
  ['keyboard', 'key inside a word'],
  ['monkey', 'key at the end of a word'],
  ['monkeys', 'plural of a non-match'],
  ['donkey', 'key at the end'],
  ['turkey', 'key at the end'],
  ['hockey', 'key at the end'],
  ['keynote', 'key at the start'],
  ['keystone', 'key at the start'],
  ['author', 'auth inside a word'],
  ['authors', 'auth inside a word'],
  ['authority', 'auth inside a word'],
  ['authentic', 'auth inside a word'],
  ['coauthor', 'auth inside a word'],
  ['passport', 'pass, not password'],
  ['compass', 'pass, not password'],
  ['pwdx', 'pwd inside a word'],
  ['spwd', 'pwd at the end of a word'],
  ['cookiecutter', 'cookie inside a word'],
  ['sessional', 'session inside a word'],
  ['apiVersion', 'api without key'],
  ['username', 'plain'],
  ['email', 'plain'],
  ['title', 'plain'],
  ['id', 'plain'],
]

describe('which keys are sensitive (default patterns)', () => {
  it('the table has at least 40 cases, both ways', () => {
    expect(MUST_REDACT.length + MUST_NOT_REDACT.length).toBeGreaterThanOrEqual(40)
    expect(MUST_NOT_REDACT.length).toBeGreaterThanOrEqual(20)
  })

  it.each(MUST_REDACT)('%s is redacted (%s)', (key) => {
    expect(redactSensitive({ [key]: 'v', other: 'kept' })).toEqual({ [key]: R, other: 'kept' })
  })

  it.each(MUST_NOT_REDACT)('%s is kept (%s)', (key) => {
    expect(redactSensitive({ [key]: 'v' })).toEqual({ [key]: 'v' })
  })

  it.each(KNOWN_FALSE_POSITIVES)(
    '%s is redacted (a known false positive of a strong word)',
    (key) => {
      expect(redactSensitive({ [key]: 'v' })).toEqual({ [key]: R })
    },
  )

  it('every known false positive is listed in docs/graphql.md', () => {
    const doc = readFileSync(new URL('../../docs/graphql.md', import.meta.url), 'utf8')
    for (const key of KNOWN_FALSE_POSITIVES) expect(doc).toContain(`\`${key}\``)
  })
})

describe('how values are walked', () => {
  it('nested objects and arrays are walked; a sensitive key’s whole value is replaced, whatever it is', () => {
    const input = {
      user: {
        name: 'ada',
        credentials: [{ secret: 's' }],
        profile: { keyboard: 'qwerty', pin: 1234 },
      },
      list: [{ token: 't' }, { apiKey: { id: 1, value: 'k' } }, 'plain', 3],
      password: null,
      sessionTimeout: 30,
    }
    expect(redactSensitive(input)).toEqual({
      user: { name: 'ada', credentials: R, profile: { keyboard: 'qwerty', pin: 1234 } },
      list: [{ token: R }, { apiKey: R }, 'plain', 3],
      password: R,
      sessionTimeout: R,
    })
  })

  it('returns a copy and never modifies its input', () => {
    const inner = { token: 't', keep: { a: 1 } }
    const input = { inner, list: [inner] }
    const snapshot = structuredClone(input)
    const out = redactSensitive(input)
    expect(input).toEqual(snapshot)
    expect(out.inner).not.toBe(inner)
    expect(out.inner.keep).not.toBe(inner.keep)
    expect(out.list[0]).toEqual({ token: R, keep: { a: 1 } })
  })

  it('options.patterns replaces the defaults', () => {
    expect(redactSensitive({ ssn: '078-05-1120', password: 'p' }, { patterns: ['ssn'] })).toEqual({
      ssn: R,
      password: 'p',
    })
    const extended = [...DEFAULT_SENSITIVE_PATTERNS, 'ssn']
    expect(redactSensitive({ ssn: 'x', password: 'p' }, { patterns: extended })).toEqual({
      ssn: R,
      password: R,
    })
  })

  it('multi-word patterns match their words in a row', () => {
    const patterns = ['credit_card']
    expect(redactSensitive({ creditCardNumber: 1, card: 2, credit: 3 }, { patterns })).toEqual({
      creditCardNumber: R,
      card: 2,
      credit: 3,
    })
  })

  it('scalars pass through', () => {
    for (const v of ['s', 1, true, null, undefined, 10n]) expect(redactSensitive(v)).toBe(v)
  })

  it('cycles become [Circular], nesting past 64 levels [Truncated]', () => {
    const cyclic: Record<string, unknown> = { name: 'a' }
    cyclic.self = cyclic
    expect(redactSensitive(cyclic)).toEqual({ name: 'a', self: '[Circular]' })
    let deep: unknown = { token: 'deep secret' }
    for (let i = 0; i < 100; i++) deep = { next: deep }
    expect(JSON.stringify(redactSensitive(deep))).not.toContain('deep secret')
    expect(JSON.stringify(redactSensitive(deep))).toContain('[Truncated]')
  })

  it('a shared object appears in full at each place, not as a cycle', () => {
    const shared = { a: 1 }
    expect(redactSensitive({ x: shared, y: shared })).toEqual({ x: { a: 1 }, y: { a: 1 } })
  })

  it('Maps, Sets, dates, errors and class instances are copied as a logger would print them', () => {
    class Account {
      constructor(
        readonly owner: string,
        readonly apiKey: string,
      ) {}
    }
    const error = Object.assign(new Error('failed'), { code: 'E1', authToken: 't' })
    const out = redactSensitive({
      map: new Map<unknown, unknown>([
        ['password', 'p'],
        ['name', 'n'],
        [1, 'one'],
      ]),
      set: new Set([{ token: 't' }]),
      when: new Date(0),
      error,
      account: new Account('ada', 'k'),
    })
    expect(out.map).toEqual(
      new Map<unknown, unknown>([
        ['password', R],
        ['name', 'n'],
        [1, 'one'],
      ]),
    )
    expect(out.set).toEqual(new Set([{ token: R }]))
    expect(out.when).toBe('1970-01-01T00:00:00.000Z')
    expect(out.error).toEqual({ name: 'Error', message: 'failed', code: 'E1', authToken: R })
    expect(out.account).toEqual({ owner: 'ada', apiKey: R })
  })

  it('a __proto__ key stays a plain key and pollutes nothing', () => {
    const input = JSON.parse('{"__proto__": {"polluted": true, "token": "t"}}') as object
    const out = redactSensitive(input) as Record<string, unknown>
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(Object.hasOwn(out, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(JSON.stringify(out)).not.toContain('"t"')
  })
})

describe('scrubText replaces whole values, not substrings', () => {
  const word = fc.stringMatching(/^[A-Za-z0-9]{1,12}$/)
  const around = fc.stringMatching(/^[ -~]{0,20}$/)

  it('a value standing between delimiters, bare or quoted, is replaced and nothing else changes', () => {
    // No space or quote in the value: those are the delimiters here.
    const value = fc.string({ minLength: 1, maxLength: 12 }).filter((v) => !/[\s"]/.test(v))
    fc.assert(
      fc.property(around, value, around, fc.constantFrom('', '"'), (a, secret, b, q) => {
        const list = scrubList([secret])
        expect(scrubText(`${a} ${q}${secret}${q} ${b}`, list)).toBe(
          `${scrubText(`${a} `, list)}${q}[REDACTED]${q}${scrubText(` ${b}`, list)}`,
        )
      }),
    )
  })

  it('a value inside a longer word is left alone, and text without the value is unchanged', () => {
    fc.assert(
      fc.property(word, word, word, (left, secret, right) => {
        const text = `x${left}${secret}${right}x`
        expect(scrubText(text, scrubList([secret]))).toBe(text)
        expect(scrubText('wrong password', scrubList(['a', 'o', 'w']))).toBe('wrong password')
      }),
    )
  })
})

// Property: secrets are strings only ever generated under sensitive keys,
// marked so they cannot occur by chance anywhere else.
const SENSITIVE_KEYS = [
  'password',
  'apiToken',
  'API-Key',
  'x_auth_header',
  'secret',
  'sessionId',
  'Authorization',
  'set-cookie',
  'jwt',
  'clientCredentials',
  'privateKey',
  'refresh_token',
]
const PLAIN_KEYS = ['name', 'keyboard', 'monkey', 'author', 'items', 'id', 'count', 'note']
const MARK = 'S3CR3T'

const secret = fc.uuid().map((u) => `${MARK}-${u}`)
const secretValue = fc.oneof(
  secret,
  fc.array(secret, { minLength: 1, maxLength: 2 }),
  fc.record({ inner: secret, deeper: fc.record({ value: secret }) }),
)
const plainValue = fc.oneof(
  fc.string({ maxLength: 8 }).filter((s) => !s.includes(MARK)),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
)
const { tree } = fc.letrec<{ tree: unknown; object: object; array: unknown[] }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    plainValue,
    tie('object'),
    tie('array'),
  ),
  object: fc
    .tuple(
      fc.dictionary(fc.constantFrom(...PLAIN_KEYS), tie('tree'), { maxKeys: 4 }),
      fc.dictionary(fc.constantFrom(...SENSITIVE_KEYS), secretValue, { maxKeys: 2 }),
    )
    .map(([plain, sensitive]) => ({ ...plain, ...sensitive })),
  array: fc.array(tie('tree'), { maxLength: 3 }),
}))

// Inline literals: graphql.document hides every string literal, so every
// string is a (marked) secret, under plain and sensitive names alike.
const LITERAL_KEYS = ['name', 'keyboard', 'items', 'note', 'password', 'apiToken', 'clientsecret']
const { literalTree } = fc.letrec<{ literalTree: unknown }>((tie) => ({
  literalTree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    secret,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.dictionary(fc.constantFrom(...LITERAL_KEYS), tie('literalTree'), { maxKeys: 4 }),
    fc.array(tie('literalTree'), { maxLength: 3 }),
  ),
}))

/** A JSON-shaped value as a GraphQL literal (string escapes are JSON's, which GraphQL shares). */
function printLiteral(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(printLiteral).join(', ')}]`
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value).map(([k, v]) => `${k}: ${printLiteral(v)}`)
    return `{${fields.join(', ')}}`
  }
  return JSON.stringify(value)
}

/** Every marked secret in `value`. */
function secretsIn(value: unknown): string[] {
  const json = JSON.stringify(value) ?? ''
  return [...json.matchAll(new RegExp(`${MARK}-[0-9a-f-]{36}`, 'g'))].map((m) => m[0])
}

describe('property: no secret survives', () => {
  it('redactSensitive leaves no secret value in its copy', () => {
    fc.assert(
      fc.property(tree, (value) => {
        const out = JSON.stringify(redactSensitive(value)) ?? ''
        for (const s of secretsIn(value)) expect(out).not.toContain(s)
      }),
    )
  })

  it('no secret reaches any exported attribute, status or event, whatever is recorded and however short the limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        tree,
        fc.integer({ min: 16, max: 2000 }),
        fc.boolean(),
        async (input, maxQueryLength, traceResolvers) => {
          const o = otel()
          const tracer = o.tracer({
            includeVariables: true,
            includeDocument: true,
            traceResolvers,
            maxQueryLength,
          })
          // `echo` fails with a message that repeats its whole input.
          await tracer.wrapExecute(execute)({
            schema: tracingSchema(() => tracer),
            document: parse('query Q($input: JSON) { echo(input: $input) }'),
            variableValues: { input },
          })
          const text = exportedText(o.spans())
          for (const s of secretsIn(input)) expect(text).not.toContain(s)
          expect(o.spans().length).toBeGreaterThan(0)
        },
      ),
      { numRuns: 150 },
    )
  })

  it('no inline literal reaches any exported attribute, status or event, whatever its key is called', async () => {
    await fc.assert(
      fc.asyncProperty(
        literalTree,
        fc.boolean(),
        fc.integer({ min: 16, max: 2000 }),
        fc.boolean(),
        async (literal, asDefault, maxQueryLength, traceResolvers) => {
          const o = otel()
          const tracer = o.tracer({ includeDocument: true, traceResolvers, maxQueryLength })
          const text = printLiteral(literal)
          // Inline as an argument, or as a variable's default value.
          const query = asDefault
            ? `query Q($input: JSON = ${text}) { echo(input: $input) }`
            : `query Q { echo(input: ${text}) }`
          await tracer.wrapExecute(execute)({
            schema: tracingSchema(() => tracer),
            document: parse(query),
          })
          const exported = exportedText(o.spans())
          for (const s of secretsIn(literal)) expect(exported).not.toContain(s)
          expect(o.spans().length).toBeGreaterThan(0)
        },
      ),
      { numRuns: 150 },
    )
  })
})
