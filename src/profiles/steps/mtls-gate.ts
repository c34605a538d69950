/** A request without an authorized client certificate is answered 403. */
import { ClientCertificateRequiredError } from '../errors.js'
import { type ClientCertHeader, hasAuthorizedClientCert } from '../gates.js'
import type { EnforcerStep } from './step.js'

export const mtlsGate: EnforcerStep = {
  name: 'mtlsGate',
  phase: 'onRequest',
  enforces: ['mtlsRequired'],
  enabled: (profile) => profile.mtlsRequired,
  install(context, app) {
    const { trusted } = context
    const header = context.options.clientCertHeader as ClientCertHeader | undefined
    app.addHook('onRequest', (request, reply, done) => {
      if (hasAuthorizedClientCert(request, trusted, header)) return done()
      void context.refuse(request, reply, new ClientCertificateRequiredError())
    })
    return true
  },
}
