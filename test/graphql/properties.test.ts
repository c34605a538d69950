/**
 * Properties over generated documents and messages: the measurements do not
 * depend on how a selection is written (inline, inline fragment, named
 * fragment), the analysis never throws on a parseable document, and no
 * suggestion graphql-js can write survives `stripFieldSuggestions`.
 */
import { createRequire } from 'node:module'
import fc from 'fast-check'
import { parse } from 'graphql'
import { describe, expect, it } from 'vitest'
import { analyzeDocument, stripFieldSuggestions } from '../../src/graphql/index.js'

/** A field with its selection, and how its selection is to be written. */
interface Tree {
  readonly name: string
  readonly alias: string | undefined
  readonly first: number | undefined
  readonly wrap: 'plain' | 'inline' | 'named'
  readonly children: readonly Tree[]
}

const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.record({
    name: fc.constantFrom('a', 'b', 'c', '__typename'),
    alias: fc.option(fc.constantFrom('x', 'y', 'z'), { nil: undefined }),
    first: fc.option(fc.nat({ max: 20 }), { nil: undefined }),
    wrap: fc.constantFrom('plain', 'inline', 'named'),
    children: fc.oneof(
      { depthSize: 'small' },
      fc.constant([]),
      fc.array(tie('tree'), { minLength: 1, maxLength: 3 }),
    ),
  }),
}))

const depthOf = (t: Tree): number => 1 + Math.max(0, ...t.children.map(depthOf))

const head = (t: Tree) =>
  `${t.alias === undefined ? '' : `${t.alias}: `}${t.name}${t.first === undefined ? '' : `(first: ${t.first})`}`

function inline(t: Tree): string {
  return t.children.length === 0 ? head(t) : `${head(t)} { ${t.children.map(inline).join(' ')} }`
}

/** The same fields, each selection set wrapped as its node says; named fragments collected. */
function wrapped(roots: readonly Tree[]): string {
  const fragments: string[] = []
  const selection = (items: readonly Tree[], wrap: Tree['wrap']): string => {
    const body = items.map(field).join(' ')
    if (wrap === 'inline') return `... { ${body} }`
    if (wrap === 'named') {
      const name = `F${fragments.length}`
      fragments.push(`fragment ${name} on T { ${body} }`)
      return `...${name}`
    }
    return body
  }
  const field = (t: Tree): string =>
    t.children.length === 0 ? head(t) : `${head(t)} { ${selection(t.children, t.wrap)} }`
  const op = `{ ${selection(roots, 'named')} }`
  return [op, ...fragments].join('\n')
}

describe('analysis properties', () => {
  it('depth is the construction depth, and every figure is the same inline or through fragments', () => {
    fc.assert(
      fc.property(fc.array(tree, { minLength: 1, maxLength: 3 }), (roots) => {
        const plain = analyzeDocument(parse(`{ ${roots.map(inline).join(' ')} }`))
        const viaFragments = analyzeDocument(parse(wrapped(roots)))
        expect(plain.depth).toBe(Math.max(...roots.map(depthOf)))
        expect(viaFragments).toEqual(plain)
      }),
    )
  })

  /** Documents that parse but may be nonsense: unknown fragments, cycles, stray variables. */
  const selectionText: fc.Arbitrary<string> = fc.letrec<{ sel: string }>((tie) => ({
    sel: fc.oneof(
      { depthSize: 'small' },
      fc.constantFrom('f', 'x: f', '__typename', '__schema { types { name } }'),
      fc.constantFrom('...A', '...B', '...Missing', '...A @include(if: $v)'),
      fc
        .tuple(
          fc.constantFrom('f', 'g(first: $n)', 'h(limit: -3)', 'k(last: 9999999999999)'),
          fc.array(tie('sel'), { minLength: 1, maxLength: 3 }),
        )
        .map(([f, s]) => `${f} { ${s.join(' ')} }`),
      fc
        .array(tie('sel'), { minLength: 1, maxLength: 3 })
        .map((s) => `... on T { ${s.join(' ')} }`),
    ),
  })).sel
  const documentText = fc
    .tuple(
      fc.array(selectionText, { minLength: 1, maxLength: 3 }),
      fc.array(selectionText, { minLength: 1, maxLength: 3 }),
      fc.array(selectionText, { minLength: 1, maxLength: 3 }),
      fc.boolean(),
    )
    .map(
      ([op, a, b, second]) =>
        `query Q($n: Int = 3, $v: Boolean) { ${op.join(' ')} }\n` +
        `${second ? `query R { ${b.join(' ')} }\n` : ''}` +
        `fragment A on T { ${a.join(' ')} }\nfragment B on T { ${b.join(' ')} }`,
    )

  it('never throws on a parseable document, and every figure is a non-negative number', () => {
    fc.assert(
      fc.property(
        documentText,
        fc.option(fc.constantFrom('Q', 'R', 'Nope'), { nil: undefined }),
        (text, operationName) => {
          const doc = parse(text)
          const a = analyzeDocument(doc, { operationName, variables: { n: 2 } })
          for (const v of [a.depth, a.complexity, a.aliases, a.directives]) {
            expect(v).toBeGreaterThanOrEqual(0)
          }
          expect(analyzeDocument(doc)).toEqual(analyzeDocument(doc))
        },
      ),
    )
  })
})

describe('stripFieldSuggestions properties', () => {
  // graphql-js's own suggestion writer, so every form it can produce is covered.
  const { didYouMean } = createRequire(import.meta.url)('graphql/jsutils/didYouMean.js') as {
    didYouMean(sub: string | readonly string[], suggestions?: readonly string[]): string
  }
  const name = fc.stringMatching(/^[_A-Za-z][_0-9A-Za-z]{0,12}$/)
  const suggestion = fc
    .tuple(
      fc.option(fc.constantFrom('to use an inline fragment on', 'the enum value'), {
        nil: undefined,
      }),
      fc.array(name, { minLength: 1, maxLength: 8 }),
    )
    .map(([sub, names]) => (sub === undefined ? didYouMean(names) : didYouMean(sub, names)))
  const prefix = fc.string().filter((s) => !s.includes('Did you mean'))

  it('removes every suggestion graphql-js writes and keeps the message before it', () => {
    fc.assert(
      fc.property(prefix, suggestion, (p, s) => {
        const out = stripFieldSuggestions(p + s)
        expect(out).not.toContain('Did you mean')
        expect(out).toBe(p.trimEnd())
      }),
    )
  })

  it('is idempotent and leaves messages without a suggestion alone', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.boolean(), (a, b, join) => {
        const message = join ? `${a}Did you mean${b}` : a
        const once = stripFieldSuggestions(message)
        expect(stripFieldSuggestions(once)).toBe(once)
        expect(once).not.toContain('Did you mean')
        if (!message.includes('Did you mean')) expect(once).toBe(message)
      }),
    )
  })
})
