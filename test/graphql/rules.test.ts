/**
 * The validation rules with graphql-js's own `validate`, no framework: every
 * limit at exactly its maximum (accepted) and one past it (refused), and the
 * bypasses that defeated earlier depth/alias/introspection guards.
 */
import { parse } from 'graphql'
import { describe, expect, it } from 'vitest'
import {
  analyzeDocument,
  checkDocument,
  createValidationRules,
  MAX_NESTING,
} from '../../src/graphql/index.js'
import { codes, nested, validateWith } from './fixtures.js'

describe('depth', () => {
  it('counts leaf fields: { a { b } } is 2', () => {
    expect(analyzeDocument(parse('{ me { id } }')).depth).toBe(2)
    expect(analyzeDocument(parse('{ me }')).depth).toBe(1)
  })

  it('accepts a query at exactly maxDepth and refuses one level more', () => {
    expect(validateWith(nested(5), { maxDepth: 5 })).toEqual([])
    expect(codes(validateWith(nested(6), { maxDepth: 5 }))).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
  })

  it('gives named fragments and inline fragments the depth of the same fields written inline', () => {
    const inline = '{ user(id: 1) { friends { friends { name } } } }'
    const named = `
      { user(id: 1) { ...A } }
      fragment A on User { friends { ...B } }
      fragment B on User { friends { ...C } }
      fragment C on User { name }`
    const inlineFragments =
      '{ ... on Query { user(id: 1) { ... on User { friends { ... { friends { ... on User { name } } } } } } } }'
    for (const q of [inline, named, inlineFragments]) {
      expect(analyzeDocument(parse(q)).depth).toBe(4)
      expect(validateWith(q, { maxDepth: 4 })).toEqual([])
      expect(codes(validateWith(q, { maxDepth: 3 }))).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    }
  })

  it('follows a fragment spread twice at different depths to its deepest use', () => {
    const q = `
      { me { ...F friends { friends { ...F } } } }
      fragment F on User { posts { title } }`
    // me → friends → friends → (F) posts → title
    expect(analyzeDocument(parse(q)).depth).toBe(5)
  })

  it('counts introspection fields like any other', () => {
    const q = '{ __schema { types { fields { type { ofType { name } } } } } }'
    expect(analyzeDocument(parse(q)).depth).toBe(6)
    expect(codes(validateWith(q, { maxDepth: 5 }))).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
  })

  it('terminates on fragment cycles, which graphql-js itself refuses', () => {
    const q = `
      { me { ...A } }
      fragment A on User { friends { ...B } }
      fragment B on User { friends { ...A } }
      fragment Self on User { ...Self }`
    const errors = validateWith(q, { maxDepth: 3, maxAliases: 0, maxComplexity: 1 })
    expect(errors.some((e) => /Cannot spread fragment "A" within itself/.test(e.message))).toBe(
      true,
    )
    const a = analyzeDocument(parse(q))
    expect(Number.isFinite(a.depth)).toBe(true)
    expect(Number.isFinite(a.complexity)).toBe(true)
  })

  it(`refuses nesting past ${MAX_NESTING} levels even when only another limit is set`, () => {
    const n = MAX_NESTING + 50
    const fragments = Array.from(
      { length: n },
      (_, i) => `fragment F${i} on User { ${i + 1 < n ? `...F${i + 1}` : 'id'} }`,
    ).join('\n')
    const q = `{ me { ...F0 } }\n${fragments}`
    const a = analyzeDocument(parse(q))
    expect(a.depth).toBe(Number.POSITIVE_INFINITY)
    expect(codes(validateWith(q, { maxAliases: 10 }))).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
  })
})

describe('introspection', () => {
  const disabled = { introspection: 'disabled' } as const

  it.each([
    ['__schema', '{ __schema { queryType { name } } }'],
    ['__type(name:)', '{ __type(name: "User") { name } }'],
    ['an alias', '{ a: __schema { queryType { name } } }'],
    ['an aliased __type', '{ t: __type(name: "User") { fields { name } } }'],
    ['a named fragment', '{ ...F } fragment F on Query { __schema { types { name } } }'],
    ['an inline fragment on Query', '{ ... on Query { __type(name: "Post") { name } } }'],
    ['an untyped inline fragment', '{ ... { ... { __schema { types { name } } } } }'],
    [
      'a fragment nested in a fragment',
      '{ ...A } fragment A on Query { ...B } fragment B on Query { x: __schema { types { name } } }',
    ],
  ])('refuses introspection through %s', (_, q) => {
    expect(codes(validateWith(q, disabled))).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
    expect(validateWith(q, { introspection: 'enabled' })).toEqual([])
  })

  it('allows __typename, aliased or not', () => {
    expect(validateWith('{ __typename t: __typename me { __typename } }', disabled)).toEqual([])
  })

  it('judges the field name, not a fragment called __schema', () => {
    const q = '{ ...__schema } fragment __schema on Query { me { id } }'
    expect(validateWith(q, disabled)).toEqual([])
    expect(analyzeDocument(parse(q)).introspectionFields).toEqual([])
  })

  it('lists the introspection fields a document uses', () => {
    const a = analyzeDocument(
      parse('{ __type(name: "User") { name } s: __schema { types { name } } }'),
    )
    expect(a.introspectionFields).toEqual(['__schema', '__type'])
  })

  it("'authenticated' rules alone refuse introspection for everyone (fail closed)", () => {
    const q = '{ __schema { queryType { name } } }'
    expect(codes(validateWith(q, { introspection: 'authenticated' }))).toEqual([
      'ERR_GRAPHQL_INTROSPECTION_DISABLED',
    ])
  })

  it('checkDocument decides authenticated introspection from the caller', () => {
    const doc = parse('{ __schema { queryType { name } } }')
    const opts = { introspection: 'authenticated' } as const
    expect(codes(checkDocument(doc, opts, { authenticated: false }))).toEqual([
      'ERR_GRAPHQL_INTROSPECTION_DISABLED',
    ])
    expect(checkDocument(doc, opts, { authenticated: true })).toEqual([])
  })
})

describe('aliases', () => {
  const aliases = (n: number) =>
    `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`

  it('accepts exactly maxAliases and refuses one more', () => {
    expect(validateWith(aliases(3), { maxAliases: 3 })).toEqual([])
    expect(codes(validateWith(aliases(4), { maxAliases: 3 }))).toEqual(['ERR_GRAPHQL_ALIAS_LIMIT'])
  })

  it('refuses a flood of 10,000 __typename aliases', () => {
    expect(codes(validateWith(aliases(10_000), { maxAliases: 100 }))).toEqual([
      'ERR_GRAPHQL_ALIAS_LIMIT',
    ])
  })

  it('counts the aliases of a fragment at every spread, and through nested fragments', () => {
    const q = `
      { me { ...F } u: user(id: 2) { ...F } }
      fragment F on User { a: id b: name ...G }
      fragment G on User { c: id }`
    // 1 (u) + 2 spreads of F × (a, b, c)
    expect(analyzeDocument(parse(q)).aliases).toBe(7)
    expect(validateWith(q, { maxAliases: 7 })).toEqual([])
    expect(codes(validateWith(q, { maxAliases: 6 }))).toEqual(['ERR_GRAPHQL_ALIAS_LIMIT'])
  })
})

describe('directives', () => {
  it('accepts exactly maxDirectives and refuses one more, fragments included', () => {
    const q = `
      query Q @skip(if: false) { me @include(if: true) { ...F @include(if: true) } }
      fragment F on User @skip(if: false) { id @skip(if: false) }`
    // operation 1 + me 1 + spread 1 + fragment definition 1 + id 1
    expect(analyzeDocument(parse(q)).directives).toBe(5)
    expect(codes(validateWith(q, { maxDirectives: 5 }))).not.toContain(
      'ERR_GRAPHQL_DIRECTIVE_LIMIT',
    )
    expect(codes(validateWith(q, { maxDirectives: 4 }))).toContain('ERR_GRAPHQL_DIRECTIVE_LIMIT')
  })

  it('refuses 10,000 @include on one field, and the same flood hidden in a fragment', () => {
    const flood = '@include(if: true) '.repeat(10_000)
    expect(codes(validateWith(`{ __typename ${flood} }`, { maxDirectives: 50 }))).toEqual([
      'ERR_GRAPHQL_DIRECTIVE_LIMIT',
    ])
    const inFragment = `{ ...F ...F } fragment F on Query { __typename ${flood} }`
    expect(analyzeDocument(parse(inFragment)).directives).toBe(20_000)
    expect(codes(validateWith(inFragment, { maxDirectives: 50 }))).toEqual([
      'ERR_GRAPHQL_DIRECTIVE_LIMIT',
    ])
  })
})

describe('complexity', () => {
  it('multiplies a list field and its selection by first/last/limit', () => {
    // users: 10 × (1 + id 1 + name 1)
    expect(analyzeDocument(parse('{ users(first: 10) { id name } }')).complexity).toBe(30)
    expect(analyzeDocument(parse('{ users(last: 4) { id } }')).complexity).toBe(8)
    // nested lists multiply: 10 × (1 + 5 × (1 + 1))
    expect(
      analyzeDocument(parse('{ users(limit: 10) { posts(first: 5) { id } } }')).complexity,
    ).toBe(110)
  })

  it('accepts exactly maxComplexity and refuses one more', () => {
    expect(validateWith('{ users(first: 10) { id name } }', { maxComplexity: 30 })).toEqual([])
    expect(codes(validateWith('{ users(first: 10) { id name } }', { maxComplexity: 29 }))).toEqual([
      'ERR_GRAPHQL_COMPLEXITY_LIMIT',
    ])
  })

  it("reads a variable's default, else defaultListSize; request variables when given", () => {
    const withDefault = parse('query ($n: Int = 7) { users(first: $n) { id } }')
    const without = parse('query ($n: Int) { users(first: $n) { id } }')
    expect(analyzeDocument(withDefault).complexity).toBe(14)
    expect(analyzeDocument(without).complexity).toBe(20)
    expect(analyzeDocument(without, { complexity: { defaultListSize: 3 } }).complexity).toBe(6)
    expect(analyzeDocument(without, { variables: { n: 500 } }).complexity).toBe(1000)
  })

  it('takes a variable from the operation that spreads the fragment', () => {
    const q = parse(`
      query A($n: Int = 2) { ...F }
      query B($n: Int = 50) { ...F }
      fragment F on Query { users(first: $n) { id } }`)
    expect(analyzeDocument(q, { operationName: 'A' }).complexity).toBe(4)
    expect(analyzeDocument(q, { operationName: 'B' }).complexity).toBe(100)
  })

  it('never makes a negative or odd list size cheaper than the default', () => {
    for (const v of ['-1000', '1.5', '"9"', 'null']) {
      expect(analyzeDocument(parse(`{ users(first: ${v}) { id } }`)).complexity).toBe(20)
    }
    expect(analyzeDocument(parse('{ users(first: 99999999999999999999) { id } }')).complexity).toBe(
      2e20,
    )
  })

  it('applies fieldCosts by parent type, below the root too, with the schema', async () => {
    const { schema } = await import('./fixtures.js')
    const complexity = { fieldCosts: { 'Query.search': 50, 'User.posts': 20, 'Post.title': 3 } }
    const q = parse('{ search(term: "x") { __typename } me { posts(first: 2) { title } } }')
    // search 50 + 1; me 1 + posts 2 × (20 + 3)
    expect(analyzeDocument(q, { schema, complexity }).complexity).toBe(98)
    expect(
      validateWith('{ search(term: "x") { __typename } }', { maxComplexity: 50, complexity }),
    ).toHaveLength(1)
  })

  it('honours custom list arguments', () => {
    const q = parse('{ users(first: 10, after: "x") { id } }')
    expect(analyzeDocument(q, { complexity: { listArguments: ['limit'] } }).complexity).toBe(2)
  })
})

describe('tokens', () => {
  it('lets graphql-js refuse a 1 MB string of tokens after maxTokens, with a message the guards recognise', () => {
    const source = `{ ${'a '.repeat(500_000)}}`
    expect(source.length).toBeGreaterThan(1_000_000)
    expect(() => parse(source, { maxTokens: 1000 })).toThrow(
      /Document contains more tha[nt] 1000 tokens/,
    )
  })

  it('checkDocument counts the tokens of a document parsed without a limit', () => {
    const doc = parse(`{ ${'me '.repeat(200)}}`)
    expect(checkDocument(doc, { maxTokens: 202 })).toEqual([])
    expect(codes(checkDocument(doc, { maxTokens: 201 }))).toEqual(['ERR_GRAPHQL_TOKEN_LIMIT'])
  })
})

describe('messages', () => {
  it('hide the limits unless revealLimits is on', () => {
    const q = nested(12)
    const hidden = validateWith(q, { maxDepth: 10 })
    expect(hidden.map((e) => e.message)).toEqual(['Query is too deep.'])
    const shown = validateWith(q, { maxDepth: 10, revealLimits: true })
    expect(shown.map((e) => e.message)).toEqual(['Query depth 12 exceeds the maximum of 10.'])
  })

  it('point at the operation, one error per limit per operation', () => {
    const q = `query A { ${nested(4).slice(1, -1)} } query B { x: me { id } }`
    const errors = validateWith(q, { maxDepth: 3, maxAliases: 0 })
    expect(codes(errors)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT', 'ERR_GRAPHQL_ALIAS_LIMIT'])
    expect(errors[0]!.locations).toEqual([{ line: 1, column: 1 }])
  })
})

describe('options', () => {
  it('refuse a bad option naming the field', () => {
    expect(() => createValidationRules({ maxDepth: 0 })).toThrow(/`maxDepth`/)
    expect(() => createValidationRules({ maxDepht: 3 } as never)).toThrow(/`maxDepht`: unknown/)
    expect(() => createValidationRules({ complexity: { fieldCosts: { search: 3 } } })).toThrowError(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
  })

  it('return no rule when nothing is checked', () => {
    expect(createValidationRules({})).toEqual([])
    expect(createValidationRules({ maxDepth: 3 })).toHaveLength(1)
  })
})
