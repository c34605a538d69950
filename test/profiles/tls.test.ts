/**
 * The TLS and mTLS gates on a real HTTPS server with generated certificates:
 * the socket, not a header, decides.
 */
import { connect } from 'node:tls'
import Fastify from 'fastify'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  ProfileEnforcer,
  REGULATED,
  RESTRICTED,
  type SecurityProfile,
} from '../../src/profiles/index.js'
import { httpsGet, makePki, type Pki } from '../helpers/tls.js'

let pki: Pki
beforeAll(() => {
  pki = makePki()
})

async function tlsServer(profile: SecurityProfile) {
  const enforcer = new ProfileEnforcer(profile, {
    authenticate: (request) => {
      const socket = request.raw.socket as import('node:tls').TLSSocket
      const cert = socket.getPeerCertificate?.()
      // The gate already refused unauthorized certificates; without one
      // (REGULATED does not ask), the caller is an API client.
      return cert?.subject?.CN === undefined
        ? { principal: 'api-client', kind: 'apiKey', permissions: [] }
        : { principal: String(cert.subject.CN), kind: 'mtls', permissions: [] }
    },
  })
  const app = Fastify({
    https: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, ...enforcer.serverOptions() },
  })
  onTestFinished(async () => {
    await app.close()
  })
  app.get('/whoami', async (request) => ({ principal: request.auth?.principal ?? null }))
  await enforcer.applyTo(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  return { port, enforcer }
}

describe('mTLS (RESTRICTED)', () => {
  it('serverOptions asks for a certificate without failing the handshake', () => {
    expect(new ProfileEnforcer(RESTRICTED).serverOptions()).toEqual({
      minVersion: 'TLSv1.2',
      requestCert: true,
      rejectUnauthorized: false,
    })
    expect(new ProfileEnforcer(REGULATED).serverOptions()).toEqual({ minVersion: 'TLSv1.2' })
  })

  it('serves a client certificate the CA signed', async () => {
    const { port } = await tlsServer(RESTRICTED)
    const res = await httpsGet(port, '/whoami', {
      ca: pki.ca,
      cert: pki.clientCert,
      key: pki.clientKey,
    })
    expect(res.statusCode).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ principal: 'service-a' })
  })

  it('answers 403 without a client certificate', async () => {
    const { port } = await tlsServer(RESTRICTED)
    const res = await httpsGet(port, '/whoami', { ca: pki.ca })
    expect(res.statusCode).toBe(403)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'ERR_PROFILE_CLIENT_CERT_REQUIRED' })
  })

  it('answers 403 to a certificate another CA signed, and to a forged proxy header', async () => {
    const { port } = await tlsServer(RESTRICTED)
    const rogue = await httpsGet(port, '/whoami', {
      ca: pki.ca,
      cert: pki.rogueCert,
      key: pki.rogueKey,
    })
    expect(rogue.statusCode).toBe(403)
    const forged = await httpsGet(port, '/whoami', {
      ca: pki.ca,
      headers: { 'x-ssl-client-verify': 'SUCCESS', 'x-forwarded-proto': 'https' },
    })
    expect(forged.statusCode).toBe(403)
  })
})

describe('TLS (REGULATED)', () => {
  it('serves HTTPS and refuses a TLS 1.1 handshake', async () => {
    const { port } = await tlsServer(REGULATED)
    const ok = await httpsGet(port, '/whoami', {
      ca: pki.ca,
      cert: pki.clientCert,
      key: pki.clientKey,
    })
    expect(ok.statusCode).toBe(200)
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        ca: pki.ca,
        servername: 'localhost',
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
      })
      socket.on('secureConnect', () => {
        socket.destroy()
        resolve('connected')
      })
      socket.on('error', () => resolve('refused'))
    })
    expect(outcome).toBe('refused')
  })

  it('answers 426 with Upgrade to plain HTTP', async () => {
    const enforcer = new ProfileEnforcer(REGULATED, { authenticate: () => null })
    const app = Fastify()
    onTestFinished(async () => {
      await app.close()
    })
    app.get('/x', async () => 'x')
    await enforcer.applyTo(app)
    const res = await app.inject({
      method: 'GET',
      url: '/x',
      headers: { 'x-forwarded-proto': 'https' },
    })
    expect(res.statusCode).toBe(426)
    expect(res.headers.upgrade).toBe('TLS/1.2, HTTP/1.1')
    expect(res.headers.connection).toMatch(/upgrade/i)
    expect(res.json()).toEqual({
      detail: 'TLS 1.2 or later is required',
      code: 'ERR_PROFILE_TLS_REQUIRED',
    })
  })
})
