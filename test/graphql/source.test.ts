/**
 * The lexical pass run before graphql-js parses (`scanSource`): on every
 * document graphql-js parses it counts exactly the tokens `maxTokens`
 * counts (property-tested over generated documents with every kind of
 * token, comments and ignored characters), and it bounds nesting.
 */
import fc from 'fast-check'
import { parse } from 'graphql'
import { describe, expect, it } from 'vitest'
import { MAX_NESTING } from '../../src/graphql/index.js'
import { countTokens, scanSource } from '../../src/graphql/source.js'

const name = fc.stringMatching(/^[_A-Za-z][_0-9A-Za-z]{0,6}$/)
/** Ignored characters between tokens (spec §2.1.7): spaces, tabs, line ends, commas, comments, BOM. */
const gap = fc
  .array(fc.constantFrom(' ', '\t', '\n', '\r\n', ',', '# a comment { [ (\n', '\uFEFF'), {
    minLength: 1,
    maxLength: 3,
  })
  .map((parts) => parts.join(''))
const stringValue = fc.oneof(
  // Brackets, quotes, escapes and non-ASCII inside strings: none is a token of its own.
  fc
    .string({
      maxLength: 8,
      unit: fc.constantFrom('a', '{', '[', '(', '#', '"', '\\', ' ', '\t', 'é', '𝄞'),
    })
    .map((s) => JSON.stringify(s)),
  fc.constantFrom(
    '"a\\"b"',
    '"\\u00e9 \\\\ {"',
    '"""block { [ " "" \\""" still"""',
    '"""\n x\n"""',
  ),
)
const numberValue = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
  fc.constantFrom('1.5', '-0.25', '6.02e23', '1E-7', '0', '-0'),
)

const { value } = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    numberValue,
    stringValue,
    fc.constantFrom('true', 'false', 'null', 'RED', '$v'),
    fc.array(tie('value'), { maxLength: 3 }).map((xs) => `[${xs.join(' ')}]`),
    fc
      .array(fc.tuple(name, tie('value')), { maxLength: 3 })
      .map((kv) => `{${kv.map(([k, v]) => `${k}: ${v}`).join(', ')}}`),
  ),
}))

const { selection } = fc.letrec<{ selection: string }>((tie) => ({
  selection: fc
    .tuple(
      fc.option(name, { nil: undefined }),
      name,
      fc.array(fc.tuple(name, value), { maxLength: 2 }),
      fc.option(fc.constantFrom('@skip(if: true)', '@include(if: $v)'), { nil: undefined }),
      fc.oneof(
        { depthSize: 'small' },
        fc.constant([] as string[]),
        fc.array(tie('selection'), { minLength: 1, maxLength: 3 }),
      ),
      fc.constantFrom('field', 'inline', 'spread'),
      gap,
    )
    .map(([alias, field, args, directive, children, kind, g]) => {
      if (kind === 'spread') return `...${field}${g}`
      const body = children.length === 0 ? '' : `${g}{${g}${children.join(g)}${g}}`
      if (kind === 'inline') return `... on T${g}{${g}${field}${body}${g}}`
      const a = args.length === 0 ? '' : `(${args.map(([k, v]) => `${k}:${g}${v}`).join(g)})`
      return `${alias === undefined ? '' : `${alias}:${g}`}${field}${a}${directive ?? ''}${body}`
    }),
}))

const document = fc
  .tuple(fc.array(selection, { minLength: 1, maxLength: 4 }), gap, fc.boolean())
  .map(
    ([selections, g, named]) =>
      `${named ? `query Q($v: [Int!] = [1]) ` : ''}{${g}${selections.join(g)}${g}}${g}fragment F on T { a }`,
  )

describe('scanSource', () => {
  it('counts exactly the tokens graphql-js counts, on every document it parses', () => {
    fc.assert(
      fc.property(document, (source) => {
        const parsed = parse(source)
        const n = countTokens(parsed, Number.MAX_SAFE_INTEGER)!
        expect(scanSource(source, n, MAX_NESTING)).toEqual({ over: undefined })
        expect(scanSource(source, n - 1, MAX_NESTING)).toEqual({ over: 'tokens', tokens: n })
        // graphql-js agrees on the boundary.
        expect(() => parse(source, { maxTokens: n })).not.toThrow()
        expect(() => parse(source, { maxTokens: n - 1 })).toThrow(/tokens/)
      }),
      { numRuns: 400 },
    )
  })

  it('refuses nesting past the bound and stops there', () => {
    const deep = (n: number) => `${'{ a '.repeat(n)}${'}'.repeat(n)}`
    expect(scanSource(deep(10), undefined, 10)).toEqual({ over: undefined })
    expect(scanSource(deep(11), undefined, 10)).toEqual({ over: 'nesting' })
    expect(scanSource(`{ a(x: ${'['.repeat(11)}1${']'.repeat(11)}) }`, undefined, 11)).toEqual({
      over: 'nesting',
    })
    // Brackets inside strings, block strings and comments do not nest.
    const quoted = `{ a(x: "${'{'.repeat(50)}", y: """${'['.repeat(50)}""") # ${'('.repeat(50)}\n }`
    expect(scanSource(quoted, undefined, 3)).toEqual({ over: undefined })
  })

  it('stops counting at the limit, whatever follows', () => {
    const huge = `{ ${'a '.repeat(1_000_000)}}`
    expect(scanSource(huge, 100, MAX_NESTING)).toEqual({ over: 'tokens', tokens: 101 })
  })

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const v = scanSource(s, 50, 5)
        expect([undefined, 'tokens', 'nesting']).toContain(v.over)
      }),
    )
  })
})
