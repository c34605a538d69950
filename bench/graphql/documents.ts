/**
 * The contenders of `npm run bench -- graphql` and the documents they
 * validate, built once and checked before anything is timed.
 *
 * - `specified`, `specified-aa`: graphql-js `validate` with `specifiedRules`
 *   alone, the cost every server pays anyway; `specified-aa` is a second,
 *   identical contender measured as if it were another (A/A control: its
 *   ratio to `specified` is the noise floor).
 * - `ours`: `specifiedRules` + `createValidationRules` from the package's
 *   public entry (`fraiseql-security/graphql`, i.e. dist/) with depth,
 *   complexity, alias and directive limits.
 * - `armor`: `specifiedRules` + graphql-armor's equivalents (maxDepthRule with
 *   `flattenFragments`, maxAliasesRule, maxDirectivesRule, costLimitRule) at
 *   the same limits, with `propagateOnRejection: false` so a rule reports
 *   instead of throwing (every document passes anyway: this is the accept path).
 */
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit'
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases'
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth'
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives'
import { analyzeDocument, createValidationRules } from 'fraiseql-security/graphql'
import {
  buildSchema,
  type DocumentNode,
  parse,
  specifiedRules,
  type ValidationRule,
  validate,
  visit,
} from 'graphql'

export const VARIANTS = ['specified', 'specified-aa', 'ours', 'armor'] as const
export type Variant = (typeof VARIANTS)[number]

export const DESCRIPTIONS: Record<Variant, string> = {
  specified: '`specified`: graphql-js `validate(schema, document, specifiedRules)`: the baseline',
  'specified-aa': '`specified-aa`: the same again (A/A control)',
  ours: '`ours`: `specifiedRules` + `createValidationRules(LIMITS)` (one rule, one walk)',
  armor:
    '`armor`: `specifiedRules` + graphql-armor `maxDepthRule` (`flattenFragments: true`), `maxAliasesRule` (`allowList: []`), `maxDirectivesRule`, `costLimitRule`, `propagateOnRejection: false`',
}

/** The limits both guards enforce; generous enough that every document passes. */
export const LIMITS = { maxDepth: 15, maxAliases: 100, maxDirectives: 50, maxComplexity: 100_000 }

export const SCHEMA = buildSchema(`
  interface Node { id: ID! }
  union SearchResult = User | Post
  type Query {
    me: User
    user(id: ID!): User
    users(first: Int, after: String): [User!]!
    node(id: ID!): Node
    search(term: String!, limit: Int): [SearchResult!]!
  }
  type User implements Node {
    id: ID!
    name: String
    email: String
    avatar(size: Int): String
    posts(first: Int): [Post!]!
    friends(first: Int): [User!]!
  }
  type Post implements Node {
    id: ID!
    title: String
    body: String
    published: Boolean
    author: User
    comments(limit: Int): [Comment!]!
    tags: [String!]!
  }
  type Comment { id: ID! body: String author: User createdAt: String }
`)

/** A typical application query: about ten fields, one variable, two small lists. */
const SMALL = `
  query Dashboard($id: ID!, $withEmail: Boolean!) {
    user(id: $id) {
      id
      name
      email @include(if: $withEmail)
      posts(first: 5) { id title comments(limit: 3) { id body } }
      friends(first: 3) { id name }
    }
  }`

/** 200 fields: 25 aliased users, each with 8 fields and 2 more aliases. */
const LARGE = `query Wide {\n${Array.from(
  { length: 25 },
  (_, i) =>
    `  u${i}: user(id: "${i}") { id name p: posts(first: 2) { id title c: comments(limit: 2) { id } } }`,
).join('\n')}\n}`

/** Twelve fragments, nested four deep, most spread several times. */
const FRAGMENTS = `
  query Feed($id: ID!) {
    me { ...UserFull }
    a: user(id: $id) { ...UserFull }
    b: user(id: "2") { ...UserCard friends(first: 5) { ...UserCard } }
    node(id: $id) { id ... on User { ...UserFull } ... on Post { ...PostFull } }
    search(term: "graphql", limit: 10) {
      __typename
      ... on User { ...UserCard }
      ... on Post { ...PostCard }
    }
    users(first: 10) { ...UserCard posts(first: 2) { ...PostCard } }
  }
  fragment Id on Node { id }
  fragment UserBasic on User { ...Id name }
  fragment UserCard on User { ...UserBasic avatar(size: 64) }
  fragment CommentBasic on Comment { id body createdAt }
  fragment CommentFull on Comment { ...CommentBasic author { ...UserCard } }
  fragment PostBasic on Post { ...Id title published }
  fragment PostCard on Post { ...PostBasic author { ...UserCard } tags }
  fragment PostFull on Post { ...PostCard body comments(limit: 5) { ...CommentFull } }
  fragment UserPosts on User { posts(first: 3) { ...PostFull } }
  fragment UserFriends on User { friends(first: 3) { ...UserCard ...UserPosts } }
  fragment UserFull on User { ...UserCard email ...UserPosts ...UserFriends }
`

export const DOCUMENTS = {
  small: { source: SMALL, about: 'a typical application query' },
  large: { source: LARGE, about: '25 aliased users with nested aliased lists' },
  fragments: { source: FRAGMENTS, about: 'nested named fragments, most spread several times' },
} as const
export type DocumentName = keyof typeof DOCUMENTS

/** What a document holds, as written and once fragments are expanded. */
export function describeDocument(name: DocumentName): string {
  const document = parse(DOCUMENTS[name].source)
  let fields = 0
  let spreads = 0
  let fragments = 0
  visit(document, {
    Field: () => void fields++,
    FragmentSpread: () => void spreads++,
    FragmentDefinition: () => void fragments++,
  })
  const a = analyzeDocument(document)
  return `\`${name}\`: ${DOCUMENTS[name].about}: ${fields} fields written, ${fragments} fragments spread ${spreads} times; depth ${a.depth}, ${a.aliases} aliases and ${a.directives} directives once expanded, cost ${a.complexity} under our default model`
}

const ARMOR_RULES: ValidationRule[] = [
  maxDepthRule({
    n: LIMITS.maxDepth,
    flattenFragments: true,
    ignoreIntrospection: false,
    propagateOnRejection: false,
  }),
  maxAliasesRule({ n: LIMITS.maxAliases, allowList: [], propagateOnRejection: false }),
  maxDirectivesRule({ n: LIMITS.maxDirectives, propagateOnRejection: false }),
  costLimitRule({ maxCost: 1e12, flattenFragments: true, propagateOnRejection: false }),
]

const RULES: Record<Variant, readonly ValidationRule[]> = {
  specified: specifiedRules,
  'specified-aa': specifiedRules,
  ours: [...specifiedRules, ...createValidationRules(LIMITS)],
  armor: [...specifiedRules, ...ARMOR_RULES],
}

export interface Setup {
  /** One call per variant and document: validates a fresh copy of the document. */
  readonly calls: Record<DocumentName, Record<Variant, () => unknown>>
  readonly checks: readonly string[]
}

/**
 * Builds every call and checks that each variant accepts each document with
 * no error at all: a rejection would measure the refusal path, and a rule
 * that throws would measure nothing.
 */
export function setup(): Setup {
  const checks: string[] = []
  const calls = {} as Record<DocumentName, Record<Variant, () => unknown>>
  for (const [name, { source }] of Object.entries(DOCUMENTS) as [
    DocumentName,
    (typeof DOCUMENTS)[DocumentName],
  ][]) {
    const document = parse(source)
    const perVariant = {} as Record<Variant, () => unknown>
    for (const v of VARIANTS) {
      const rules = RULES[v]
      // A shallow copy per call: our rule caches its measurements per
      // DocumentNode (mercurius hands the same node to preExecution), and the
      // bench must time the walk, not a cache hit. The copy is one small
      // object, paid equally by every variant.
      perVariant[v] = () => validate(SCHEMA, { ...document } as DocumentNode, rules)
      const errors = perVariant[v]() as readonly { message: string }[]
      if (errors.length > 0) {
        throw new Error(
          `${v} refuses the ${name} document: ${errors.map((e) => e.message).join('; ')}`,
        )
      }
    }
    calls[name] = perVariant
    checks.push(`every contender validates the ${name} document with no error`)
  }
  return { calls, checks }
}
