/** Plain HTTP, or TLS below `minTlsVersion`, is answered 426 before anything else runs. */
import { TlsRequiredError } from '../errors.js'
import { isTlsRequest } from '../gates.js'
import type { EnforcerStep } from './step.js'

export const tlsGate: EnforcerStep = {
  name: 'tlsGate',
  phase: 'onRequest',
  enforces: ['tlsRequired', 'minTlsVersion'],
  enabled: (profile) => profile.tlsRequired,
  install(context, app) {
    const { profile, trusted } = context
    app.addHook('onRequest', (request, reply, done) => {
      if (isTlsRequest(request, profile.minTlsVersion, trusted)) return done()
      void context.refuse(request, reply, new TlsRequiredError(profile.minTlsVersion))
    })
    return true
  },
}
