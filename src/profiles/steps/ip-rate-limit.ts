/** Requests per window and client IP, before authentication (the `rateLimit` plugin). */
import { rateLimit } from '../../http/index.js'
import type { EnforcerStep } from './step.js'

export const ipRateLimit: EnforcerStep = {
  name: 'ipRateLimit',
  phase: 'onRequest',
  enforces: ['rateLimit', 'rateLimitEnabled'],
  enabled: (profile) => profile.rateLimitEnabled,
  async install(context, app) {
    await app.register(rateLimit, context.limiterConfig(context.profile.rateLimit))
    return true
  },
}
