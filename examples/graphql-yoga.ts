/**
 * The GraphQL guards on graphql-yoga with the packaged envelop plugin:
 * depth, cost (list sizes from the request's variables), aliases,
 * directives, tokens and introspection, refusals answered 400 with our
 * `ERR_GRAPHQL_*` code, "Did you mean …?" removed, each refusal reported to
 * `onReject` with yoga's context. Runs five requests through yoga's fetch
 * API and exits.
 *
 *   npx tsx examples/graphql-yoga.ts
 */
import { useGraphqlGuards } from 'fraiseql-security/graphql'
import { createSchema, createYoga } from 'graphql-yoga'

const guards = useGraphqlGuards<{ request: Request }>({
  maxDepth: 4,
  maxComplexity: 200,
  maxAliases: 5,
  maxDirectives: 5,
  maxTokens: 500,
  introspection: 'disabled',
  // Where a team watches a profile before enforcing it (`reportOnly: true`).
  onReject: (ctx, decision) => {
    console.log(
      'refused      ←',
      decision.codes.join(','),
      ctx.request.headers.get('user-agent') ?? '',
    )
  },
})

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

async function ask(query: string, variables?: Record<string, unknown>): Promise<string> {
  const res = await yoga.fetch('http://127.0.0.1/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
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
console.log(
  'costly $n    →',
  await ask('query Friends($n: Int) { me { friends(first: $n) { name } } }', { n: 1000 }),
)
