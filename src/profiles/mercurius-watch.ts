/**
 * Finding every mercurius instance of an app, whenever it is registered, so
 * the order of `applyTo(app)` and `app.register(mercurius)` never decides
 * whether the GraphQL guards are installed.
 *
 * - Registered before `applyTo`, on the app (mercurius is not encapsulated):
 *   `app.graphql` is there already.
 * - Registered after, anywhere below the app: mercurius declares its routes
 *   from an instance that inherits the `graphql` decorator, and an `onRoute`
 *   hook added to the app now runs in every instance created later.
 * - Registered before, inside a plugin that already loaded: Fastify keeps
 *   each instance's encapsulated children (the list `addHook` walks to give
 *   them hooks added later); the walk below reads it, and looks again when
 *   the app becomes ready (`routes: false` instances declare no route).
 *   Where that list cannot be read (another Fastify), the enforcer's
 *   `onReady` check still refuses a GraphQL route it did not guard.
 *
 * mercurius reads its hooks per operation, so hooks added at any of these
 * moments hold from the first request on.
 *
 * Only a mercurius inside `app` counts: decorators are inherited, so an
 * encapsulated `app` (a plugin not wrapped in fastify-plugin) also sees the
 * `app.graphql` of a mercurius registered on an ancestor, whose routes none
 * of `app`'s hooks reach. Such a one is counted apart (`outside`), never
 * given to `onFound`.
 */
import type { FastifyInstance } from 'fastify'
import { isMercurius } from '../internal/mercurius-context.js'

/** Called once per mercurius instance, with the Fastify instance it was met on. */
export type MercuriusFound = (instance: FastifyInstance, graphql: object) => void

export interface MercuriusWatch {
  /** How many mercurius instances were found so far. */
  readonly found: number
  /** How many were seen that live outside the watched app (on an ancestor). */
  readonly outside: number
  /** Looks at the app and every instance below it again (from the app's `onReady`). */
  revisit(): void
}

/** The encapsulated children of an instance, as Fastify keeps them (`Symbol('fastify.children')`). */
function childrenOf(instance: object): readonly FastifyInstance[] {
  for (const key of Object.getOwnPropertySymbols(instance)) {
    if (key.description === 'fastify.children') {
      const children = (instance as Record<symbol, unknown>)[key]
      return Array.isArray(children) ? (children as FastifyInstance[]) : []
    }
  }
  return []
}

/**
 * Whether the instance that holds the `graphql` decorator `instance` sees is
 * `app` or below it. Fastify makes each encapsulated instance with
 * `Object.create(parent)` and a decorator is an own property of the
 * instance that declared it (mercurius's parent: it is not encapsulated).
 */
function declaredWithin(app: object, instance: object): boolean {
  for (let o: object | null = instance; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.hasOwn(o, 'graphql')) return o === app || Object.prototype.isPrototypeOf.call(app, o)
  }
  return false
}

export function watchMercurius(app: FastifyInstance, onFound: MercuriusFound): MercuriusWatch {
  const seen = new WeakSet<object>()
  let found = 0
  let outside = 0
  const visit = (instance: FastifyInstance): void => {
    const graphql = (instance as { graphql?: unknown }).graphql
    if (!isMercurius(graphql) || seen.has(graphql)) return
    seen.add(graphql)
    if (!declaredWithin(app, instance)) {
      outside++
      return
    }
    found++
    onFound(instance, graphql)
  }
  const visitTree = (instance: FastifyInstance, level: number): void => {
    visit(instance)
    // Plugins nest a few levels; the bound only guards against a cycle.
    if (level < 64) for (const child of childrenOf(instance)) visitTree(child, level + 1)
  }
  visitTree(app, 0)
  app.addHook('onRoute', function (this: FastifyInstance) {
    visit(this)
  })
  return {
    get found() {
      return found
    },
    get outside() {
      return outside
    },
    revisit: () => visitTree(app, 0),
  }
}
