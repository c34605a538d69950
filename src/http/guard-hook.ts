/**
 * One Fastify `onRequest` hook for the HTTP guards (body limit, rate limit)
 * registered back to back on the same instance. Fastify charges each hook a
 * few percent of a small request (its runner, a bound function, a `next`
 * call), so two guards in one hook cost one hook's overhead.
 *
 * Merging never changes what runs or in which order: a guard joins the
 * previous guard's hook only where that hook is the last `onRequest` hook of
 * an instance, i.e. exactly where Fastify would have appended the guard's own
 * hook. Anywhere else (a hook of the user's in between, a child context that
 * added its own hooks since) the guard gets a hook of its own, in the place
 * Fastify would have put it. Each guard works alone and in any order.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** A guard answered the request itself (or will): nothing after it runs. */
export const ANSWERED: unique symbol = Symbol('fraiseql-security.answered')

/**
 * What a guard decided: `undefined` lets the request on to the next guard,
 * {@link ANSWERED} stops it, a promise settles to either later. A guard that
 * throws, or whose promise rejects, fails the request through Fastify's
 * error handling, as a hook's `done(error)` would.
 */
export type GuardVerdict = undefined | typeof ANSWERED | Promise<undefined | typeof ANSWERED>

export type RequestGuard = (request: FastifyRequest, reply: FastifyReply) => GuardVerdict

type Done = (err?: Error) => void
type OnRequestHook = (request: FastifyRequest, reply: FastifyReply, done: Done) => void

/** The guards behind each hook this module made, in order. */
const guardsOf = new WeakMap<OnRequestHook, readonly RequestGuard[]>()

function runFrom(
  guards: readonly RequestGuard[],
  start: number,
  request: FastifyRequest,
  reply: FastifyReply,
  done: Done,
): void {
  for (let i = start; i < guards.length; i++) {
    let verdict: GuardVerdict
    try {
      verdict = guards[i]!(request, reply)
    } catch (err) {
      done(err as Error)
      return
    }
    if (verdict === undefined) continue
    if (verdict === ANSWERED) return
    const next = i + 1
    verdict.then(
      (v) => {
        if (v !== ANSWERED) runFrom(guards, next, request, reply, done)
      },
      (err: unknown) => done(err as Error),
    )
    return
  }
  done()
}

/** A hook of its own for `guard`, for a phase guards do not share (`preHandler`). */
export function guardHook(guard: RequestGuard): OnRequestHook {
  return hookFor([guard])
}

function hookFor(guards: readonly RequestGuard[]): OnRequestHook {
  const hook: OnRequestHook =
    guards.length === 1
      ? (request, reply, done) => {
          // One guard: the loop's bookkeeping is not worth it.
          let verdict: GuardVerdict
          try {
            verdict = guards[0]!(request, reply)
          } catch (err) {
            done(err as Error)
            return
          }
          if (verdict === undefined) done()
          else if (verdict !== ANSWERED)
            verdict.then(
              (v) => {
                if (v !== ANSWERED) done()
              },
              (err: unknown) => done(err as Error),
            )
        }
      : (request, reply, done) => runFrom(guards, 0, request, reply, done)
  guardsOf.set(hook, guards)
  return hook
}

interface HookLists {
  onRequest: unknown[]
}

/** Fastify's private instance symbols, found once by description; `null` when absent. */
let internals: { hooks: symbol; children: symbol } | null | undefined

function internalsOf(app: FastifyInstance): { hooks: symbol; children: symbol } | null {
  if (internals === undefined) {
    let hooks: symbol | undefined
    let children: symbol | undefined
    for (let o: object | null = app; o !== null; o = Object.getPrototypeOf(o)) {
      for (const s of Object.getOwnPropertySymbols(o)) {
        if (s.description === 'fastify.hooks') hooks ??= s
        else if (s.description === 'fastify.children') children ??= s
      }
    }
    internals = hooks !== undefined && children !== undefined ? { hooks, children } : null
  }
  return internals
}

/**
 * Adds `guard` as an `onRequest` hook of `app`, sharing the previous guard's
 * hook when that one is the instance's last `onRequest` hook. Call it where
 * the plugin would call `app.addHook('onRequest', …)`: it takes effect at the
 * same moment Fastify's own `addHook` would, and reaches the child contexts
 * Fastify's would.
 */
export function addRequestGuard(app: FastifyInstance, guard: RequestGuard): void {
  const found = internalsOf(app)
  if (found === null) {
    // Another Fastify major: a plain hook of its own, always correct.
    app.addHook('onRequest', hookFor([guard]))
    return
  }
  const { hooks, children } = found
  const attach = (instance: FastifyInstance) => {
    const record = instance as unknown as Record<symbol, unknown>
    const list = (record[hooks] as HookLists).onRequest
    const last = list[list.length - 1] as OnRequestHook | undefined
    const before = last === undefined ? undefined : guardsOf.get(last)
    // Replaced, not mutated: a context that copied the old hook keeps what it had.
    if (before !== undefined) list[list.length - 1] = hookFor([...before, guard])
    else list.push(hookFor([guard]))
    for (const child of record[children] as FastifyInstance[]) attach(child)
  }
  // Fastify's `addHook` defers the same way (`after`), and then walks the
  // instance and its children as `attach` does. Taking no argument keeps a
  // boot error pending for the next `after` / `ready` (avvio), as `addHook` does.
  app.after(() => attach(app))
}
