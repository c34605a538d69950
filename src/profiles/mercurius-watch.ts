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
 * - Registered after with `routes: false`: no route, but `app.graphql` is
 *   there when the app becomes ready.
 *
 * mercurius reads its hooks per operation, so hooks added at any of these
 * moments hold from the first request on.
 */
import type { FastifyInstance } from 'fastify'
import { isMercurius } from '../graphql/fastify.js'

/** Called once per mercurius instance, with the Fastify instance it was met on. */
export type MercuriusFound = (instance: FastifyInstance, graphql: object) => void

export interface MercuriusWatch {
  /** How many mercurius instances were found so far. */
  readonly found: number
  /** Looks at `app.graphql` again (from the app's `onReady`). */
  revisit(): void
}

export function watchMercurius(app: FastifyInstance, onFound: MercuriusFound): MercuriusWatch {
  const seen = new WeakSet<object>()
  let found = 0
  const visit = (instance: FastifyInstance): void => {
    const graphql = (instance as { graphql?: unknown }).graphql
    if (!isMercurius(graphql) || seen.has(graphql)) return
    seen.add(graphql)
    found++
    onFound(instance, graphql)
  }
  visit(app)
  app.addHook('onRoute', function (this: FastifyInstance) {
    visit(this)
  })
  return {
    get found() {
      return found
    },
    revisit: () => visit(app),
  }
}
