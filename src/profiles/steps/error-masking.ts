/** Errors reach the client at the profile's `errorDetail`, whoever threw them. */
import { setErrorDetail } from '../../internal/reply/fastify.js'
import type { EnforcerStep } from './step.js'

export const errorMasking: EnforcerStep = {
  name: 'errorMasking',
  phase: 'errorHandler',
  // blockFieldSuggestions: the GraphQL formatter removes "Did you mean …?"
  // from every error this level lets through.
  enforces: ['errorDetail', 'blockFieldSuggestions'],
  enabled: () => true,
  async install(context, app) {
    await setErrorDetail(app, context.profile.errorDetail)
    return true
  },
}
