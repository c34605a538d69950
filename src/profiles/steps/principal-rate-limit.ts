/**
 * Cost units per window and principal (anonymous callers by IP): every
 * request pays one unit on arrival, before anything parses it; GraphQL
 * operations pay the rest of their cost in the GraphQL step.
 */
import type { EnforcerStep } from './step.js'

export const principalRateLimit: EnforcerStep = {
  name: 'principalRateLimit',
  phase: 'onRequest',
  enforces: ['principalRateLimit'],
  enabled: () => true,
  install(context, app) {
    const { budget } = context
    const limiter = budget.start(context.limiterConfig(context.profile.principalRateLimit), app.log)
    app.addHook('onClose', async () => limiter.close())
    app.addHook('onRequest', async (request, reply) => {
      try {
        await budget.charge(request, 1)
      } catch (err) {
        return context.refuse(request, reply, err as Error & { code: string })
      }
      budget.notePrepaid(request, 1)
    })
    return true
  },
}
