/**
 * graphql-js, loaded on first use. `graphql` is an optional peer: importing
 * `fraiseql-security/graphql` (and `profiles`, which composes it) must work in
 * a REST-only app that never installed it, so nothing here imports it at the
 * top level. The load is synchronous because validation rules and
 * formatters are synchronous APIs.
 */
import { createRequire } from 'node:module'
import type * as GraphqlModule from 'graphql'
import { MissingDependencyError } from './optional-import.js'

/** The parts of graphql-js the guards and the tracer use at run time. */
export type GraphqlRuntime = Pick<
  typeof GraphqlModule,
  'GraphQLError' | 'defaultFieldResolver' | 'parse' | 'print' | 'visit'
>

let loaded: GraphqlRuntime | undefined

/**
 * graphql-js as Node resolves `import 'graphql'`: graphql 16 has no `exports`
 * map, so an ESM import and `require` both land on its CommonJS entry, the one
 * mercurius uses too. One module instance means one `GraphQLError` class.
 */
export function graphqlRuntime(feature: string): GraphqlRuntime {
  if (loaded !== undefined) return loaded
  try {
    loaded = createRequire(import.meta.url)('graphql') as GraphqlRuntime
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new MissingDependencyError('graphql', feature)
    }
    throw err
  }
  return loaded
}
