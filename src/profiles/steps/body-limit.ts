/** Bodies over `maxBodySize` are refused 413 while they stream (the `bodyLimit` plugin). */
import { bodyLimit as bodyLimitPlugin } from '../../http/index.js'
import type { EnforcerStep } from './step.js'

export const bodyLimit: EnforcerStep = {
  name: 'bodyLimit',
  phase: 'onRequest',
  enforces: ['maxBodySize'],
  enabled: () => true,
  async install(context, app) {
    await app.register(bodyLimitPlugin, { maxSize: context.profile.maxBodySize })
    return true
  },
}
