/**
 * The GraphQL guards on graphql-yoga: `createValidationRules` are plain
 * graphql-js rules, so any server that validates with graphql-js takes them.
 * The token limit goes to the parser; suggestions are stripped from the
 * validation result. Runs three requests through yoga's fetch API and exits.
 *
 *   npx tsx examples/graphql-yoga.ts
 */
import { createValidationRules, stripFieldSuggestions } from 'fraiseql-security/graphql'
import { GraphQLError, parse } from 'graphql'
import { createSchema, createYoga, type Plugin } from 'graphql-yoga'

const limits = {
  maxDepth: 4,
  maxComplexity: 200,
  maxAliases: 5,
  maxDirectives: 5,
  introspection: 'disabled',
} as const
const maxTokens = 500

const guards: Plugin = {
  onParse({ setParseFn }) {
    // Counted by the lexer: a flood of tokens never becomes an AST.
    setParseFn((source, options) => parse(source, { ...options, maxTokens }))
  },
  onValidate({ addValidationRule }) {
    for (const rule of createValidationRules(limits)) addValidationRule(rule)
    // "Did you mean …?" maps a hidden schema one typo at a time.
    return ({ result, setResult }) => {
      if (result.length === 0) return
      setResult(
        result.map(
          (e) =>
            new GraphQLError(stripFieldSuggestions(e.message), {
              nodes: e.nodes ?? null,
              extensions: e.extensions,
            }),
        ),
      )
    }
  },
}

const yoga = createYoga({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      type User { id: ID!, name: String, friends(first: Int): [User!]! }
      type Query { me: User }
    `,
    resolvers: {
      Query: { me: () => ({ id: '1', name: 'Ada', friends: [] }) },
    },
  }),
  plugins: [guards],
  logging: false,
})

async function ask(query: string): Promise<string> {
  const res = await yoga.fetch('http://127.0.0.1/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  })
  return `${res.status} ${await res.text()}`
}

console.log('ok           →', await ask('{ me { name } }'))
console.log(
  'too deep     →',
  await ask('{ me { friends { friends { friends { friends { name } } } } } }'),
)
console.log('introspection→', await ask('{ a: __schema { types { name } } }'))
console.log('typo         →', await ask('{ me { nam } }'))
