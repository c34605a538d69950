/**
 * The Fastify routes that serve graphql-yoga or Apollo Server, and which of
 * them the enforcer's plugins guard, so that a profile's GraphQL settings
 * are never silently left off a route because it serves GraphQL through a
 * server other than mercurius, or at a path other than `graphqlPath`.
 *
 * - A route serves GraphQL when its handler is Apollo Server's Fastify
 *   handler (`@as-integrations/fastify`, which calls
 *   `executeHTTPGraphQLRequest`), or calls graphql-yoga's Node entry point
 *   (`handleNodeRequestAndResponse` / `handleNodeRequest`), or says so with
 *   `config: { graphql: true }` (a handler that reaches its server some
 *   other way), whatever its path.
 * - A path is guarded when a plugin of the enforcer claimed it: the yoga
 *   plugin claims its yoga's `graphqlEndpoint` (yoga answers 404 anywhere
 *   else), the Apollo plugin the path it was given (Apollo Server does not
 *   know where it is mounted), once its server started.
 * - Routes declared after `applyTo` are listed from `onRoute`, and the
 *   enforcer's `onReady` refuses one left unguarded, naming it. Fastify
 *   lists no route declared before (and keeps only a bound copy of its
 *   handler, whose source says nothing): there `config: { graphql: true }`
 *   is tested again on each request, before the handler, and an unguarded
 *   request is refused before the server sees it.
 * - A guarded request runs its handler inside an AsyncLocalStorage holding
 *   the Fastify request: the plugins find it there whatever context the
 *   server builds (Apollo's `contextValue` holds none by default).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** The servers a route can be recognized as. */
export type GraphqlServer = 'graphql-yoga' | 'Apollo Server' | 'GraphQL'

/** A route that serves GraphQL, as `onRoute` saw it. */
export interface GraphqlRoute {
  readonly url: string
  readonly methods: readonly string[]
  readonly server: GraphqlServer
}

const APOLLO_HANDLER = /\bexecuteHTTPGraphQLRequest\b/
const YOGA_HANDLER = /\bhandleNodeRequest(?:AndResponse)?\b/

/** Recognized servers per handler function: the source is read once per handler. */
const recognized = new WeakMap<object, GraphqlServer | null>()

/** The server a route's handler (or its `config.graphql`) says it serves, if any. */
export function graphqlServerOf(handler: unknown, config: unknown): GraphqlServer | undefined {
  if ((config as { graphql?: unknown } | null | undefined)?.graphql === true) return 'GraphQL'
  if (typeof handler !== 'function') return undefined
  let server = recognized.get(handler)
  if (server === undefined) {
    const source = Function.prototype.toString.call(handler)
    server = APOLLO_HANDLER.test(source)
      ? 'Apollo Server'
      : YOGA_HANDLER.test(source)
        ? 'graphql-yoga'
        : null
    recognized.set(handler, server)
  }
  return server ?? undefined
}

/** `/graphql/` and `/graphql` are one path to a server that ignores the trailing slash. */
function normalized(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/** What {@link GraphqlRoutes.link} found for a request. */
export type RouteLink =
  | { readonly kind: 'none' }
  | { readonly kind: 'guarded' }
  | { readonly kind: 'unguarded'; readonly server: GraphqlServer; readonly url: string }

/** The GraphQL routes of one enforcer's app and the paths its plugins claimed. */
export class GraphqlRoutes {
  readonly #claims = new Set<string>()
  readonly #routes: GraphqlRoute[] = []
  readonly #requests = new AsyncLocalStorage<FastifyRequest>()

  /** A plugin of the enforcer guards the server at `path`. */
  claim(path: string): void {
    this.#claims.add(normalized(path))
  }

  /** Whether any plugin claimed a path (its server is initialized or started). */
  get claimed(): boolean {
    return this.#claims.size > 0
  }

  /** Lists the GraphQL routes declared from now on, in `app` and below it. */
  watch(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const server = graphqlServerOf(route.handler, route.config)
      if (server === undefined) return
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      this.#routes.push({ url: route.url ?? route.path ?? '', methods, server })
    })
  }

  /** The listed routes no plugin claimed. */
  unguarded(): GraphqlRoute[] {
    return this.#routes.filter((r) => !this.#claims.has(normalized(r.url)))
  }

  /** What the request's route is: served by a guarded server, an unguarded one, or neither. */
  link(request: FastifyRequest): RouteLink {
    const route = request.routeOptions
    const url = route.url
    if (url === undefined) return { kind: 'none' }
    if (this.#claims.has(normalized(url))) return { kind: 'guarded' }
    // `route.handler` is Fastify's bound copy: only the config can say.
    const server = graphqlServerOf(undefined, route.config)
    return server === undefined ? { kind: 'none' } : { kind: 'unguarded', server, url }
  }

  /** Runs `next` (the rest of the request's lifecycle) with `request` findable by the plugins. */
  run(request: FastifyRequest, next: () => void): void {
    this.#requests.run(request, next)
  }

  /** The Fastify request whose GraphQL operation is running, if it came through a guarded route. */
  current(): FastifyRequest | undefined {
    return this.#requests.getStore()
  }
}
