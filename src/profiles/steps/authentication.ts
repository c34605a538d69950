/**
 * Resolves `request.auth` with the `authenticate` option; with
 * `authRequired`, a request without valid credentials is answered 401 (a
 * `publicPaths` path excepted), and a token older than
 * `tokenExpiryMinutes` is no credential.
 */
import { pathOf } from '../../internal/path-matcher.js'
import { AuthenticationRequiredError, TokenExpiredError, TokenNotYetValidError } from '../errors.js'
import type { AuthContext } from '../options.js'
import type { EnforcerStep } from './step.js'

/**
 * Whether a token issued at `issuedAt` is usable at `now`: not older than
 * `maxAgeMs` (exact), not issued later than `now + toleranceMs`, and issued
 * at a finite time at all.
 */
function freshness(
  issuedAt: unknown,
  now: number,
  maxAgeMs: number,
  toleranceMs: number,
): 'fresh' | 'expired' | 'future' {
  const t = issuedAt instanceof Date ? issuedAt.getTime() : issuedAt
  if (typeof t !== 'number' || !Number.isFinite(t)) return 'expired'
  if (t > now + toleranceMs) return 'future'
  return now - t <= maxAgeMs ? 'fresh' : 'expired'
}

export const authentication: EnforcerStep = {
  name: 'authentication',
  phase: 'onRequest',
  enforces: ['authRequired', 'tokenExpiryMinutes'],
  enabled: () => true,
  install(context, app) {
    const { profile: p, options: o, clock, isPublic } = context
    const authenticate = o.authenticate
    const challenge = o.authChallenge
    const scheme = challenge.split(' ')[0] ?? 'Bearer'
    const expiryMs = p.tokenExpiryMinutes * 60_000
    const toleranceMs = o.clockToleranceMs
    const hasPublic = o.publicPaths.length > 0

    if (p.authRequired && authenticate === undefined) {
      app.log.error(
        { profile: p.name },
        'ProfileEnforcer: authRequired is set and no authenticate() was given; every request will be refused with 401',
      )
    }

    app.addHook('onRequest', async (request, reply) => {
      request.auth = null
      // A public path still identifies its caller (introspection for
      // authenticated requests, per-principal limits); it only does not
      // require one, and an expired token there is just anonymous.
      const required = p.authRequired && !(hasPublic && isPublic(pathOf(request.url)))
      let auth: AuthContext | null | undefined = null
      if (authenticate !== undefined) auth = await authenticate(request)
      if (auth !== null && auth !== undefined) {
        const verdict =
          auth.kind === 'token' ? freshness(auth.issuedAt, clock(), expiryMs, toleranceMs) : 'fresh'
        if (verdict === 'fresh') {
          request.auth = auth
          return
        }
        if (!required) return
        const error =
          verdict === 'future' ? new TokenNotYetValidError(scheme) : new TokenExpiredError(scheme)
        return context.refuse(request, reply, error)
      }
      if (required)
        return context.refuse(request, reply, new AuthenticationRequiredError(challenge))
    })
    return true
  },
}
