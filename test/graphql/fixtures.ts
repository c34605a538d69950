/**
 * A small schema with lists (first/last/limit), nested types, an interface
 * and a union, and a resolver set over fixed data, for the guard suites.
 */
import { buildSchema, type GraphQLError, parse, specifiedRules, validate } from 'graphql'
import { createValidationRules, type GraphqlGuardOptions } from '../../src/graphql/index.js'
import { RateLimitExceededError, RateLimiter } from '../../src/http/index.js'

export const SDL = `
  interface Node { id: ID! }
  union SearchResult = User | Post
  type Query {
    me: User
    user(id: ID!): User
    users(first: Int, last: Int, limit: Int, after: String): [User!]!
    search(term: String!, limit: Int): [SearchResult!]!
    node(id: ID!): Node
    boom: String
  }
  type Mutation { addPost(title: String!): Post }
  type User implements Node {
    id: ID!
    name: String
    posts(first: Int): [Post!]!
    friends(first: Int): [User!]!
  }
  type Post implements Node {
    id: ID!
    title: String
    author: User
    comments(limit: Int): [Comment!]!
  }
  type Comment { id: ID! body: String author: User }
`

export const schema = buildSchema(SDL)

interface UserRow {
  id: string
  name: string
}

const user = (id: string): UserRow => ({ id, name: `user ${id}` })
const list = (n: unknown, make: (i: number) => unknown) =>
  Array.from({ length: Math.min(typeof n === 'number' ? n : 2, 3) }, (_, i) => make(i))

/** mercurius resolvers: small lists whatever `first` asks (the guards, not the data, are under test). */
export const resolvers = {
  Query: {
    me: () => user('1'),
    user: (_: unknown, { id }: { id: string }) => user(id),
    users: (_: unknown, { first }: { first?: number }) => list(first, (i) => user(String(i))),
    search: () => [],
    node: (_: unknown, { id }: { id: string }) => user(id),
    boom: () => {
      throw new Error('connect ECONNREFUSED 10.0.0.5:5432')
    },
  },
  Mutation: { addPost: (_: unknown, { title }: { title: string }) => ({ id: 'p1', title }) },
  User: {
    posts: (u: UserRow, { first }: { first?: number }) =>
      list(first, (i) => ({ id: `${u.id}-p${i}`, title: 't' })),
    friends: (u: UserRow, { first }: { first?: number }) =>
      list(first, (i) => user(`${u.id}.${i}`)),
  },
}

/** graphql-js `validate` with `specifiedRules` and our rules. */
export function validateWith(query: string, options: GraphqlGuardOptions): readonly GraphQLError[] {
  return validate(schema, parse(query), [...specifiedRules, ...createValidationRules(options)])
}

/** The codes of our rejections (errors without a code, from specifiedRules, are left out). */
// `extensions` as a record, not `{ code?: unknown }`: graphql-yoga (a dev
// dependency, for an example) augments GraphQLErrorExtensions with fields of
// its own, and TypeScript's weak-type check then rejects the narrower shape.
export function codes(
  errors: readonly { extensions?: Readonly<Record<string, unknown>> }[],
): unknown[] {
  return errors.map((e) => e.extensions?.code).filter((c) => c !== undefined)
}

/** `{ user(id: 1) { friends { friends { ... { name } } } } }` with `depth` levels in all. */
export function nested(depth: number): string {
  let body = 'name'
  for (let i = 0; i < depth - 2; i++) body = `friends { ${body} }`
  return `{ user(id: 1) { ${body} } }`
}

/**
 * A `chargeCost` over a memory rate limiter of `max` units a minute (fixed
 * clock): throws RateLimitExceededError once the budget is spent; `charged`
 * lists every cost it was given.
 */
export function chargingLimiter(max: number) {
  const limiter = new RateLimiter({ max, windowMs: 60_000, clock: () => 1_000_000 })
  const charged: number[] = []
  const charge = (_context: unknown, cost: number): void => {
    charged.push(cost)
    const set = limiter.globalPolicies
    const info = limiter.consume('client', set, cost) as Exclude<
      ReturnType<typeof limiter.consume>,
      Promise<unknown>
    >
    if (!info.allowed) throw new RateLimitExceededError(info, limiter.headersFor(info, set))
  }
  return { charge, charged }
}
