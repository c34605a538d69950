/**
 * Development certificates, made on first start and kept in the data
 * directory: a local CA, a server certificate for 127.0.0.1 / localhost,
 * and (for RESTRICTED) a client certificate the CA signed. Pure JavaScript
 * (@peculiar/x509 over WebCrypto, P-256): no openssl needed. Never use
 * these outside development.
 */
import { webcrypto } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
// @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const DAY = 24 * 60 * 60 * 1000

export interface DevCertificates {
  readonly ca: string
  readonly serverKey: string
  readonly serverCert: string
  /** Paths, for the `curl --cert` line. */
  readonly files: { ca: string; clientCert: string; clientKey: string }
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey)
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex')
}

async function issue(
  subject: string,
  usage: x509.ExtendedKeyUsage,
  ca: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  altNames?: x509.JsonGeneralNames,
): Promise<{ cert: string; key: string }> {
  const keys = await keyPair()
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      ...(altNames === undefined ? [] : [new x509.SubjectAlternativeNameExtension(altNames)]),
    ],
  })
  return { cert: cert.toString('pem'), key: await pemKey(keys.privateKey) }
}

/** Loads the development PKI from `dir`, creating it on first use (files mode 0600). */
export async function devCertificates(
  dir: string,
): Promise<DevCertificates & { created: boolean }> {
  const path = (f: string) => join(dir, f)
  const files = {
    ca: path('ca.pem'),
    clientCert: path('client.pem'),
    clientKey: path('client-key.pem'),
  }
  let created = false
  if (!existsSync(path('server.pem'))) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const keys = await keyPair()
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=fraiseql-security development CA',
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 365 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
      ],
    })
    const ca = { cert: caCert, keys }
    const server = await issue('CN=localhost', x509.ExtendedKeyUsage.serverAuth, ca, [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ])
    const client = await issue('CN=demo-service', x509.ExtendedKeyUsage.clientAuth, ca)
    const write = (f: string, data: string) => writeFileSync(path(f), data, { mode: 0o600 })
    write('ca.pem', caCert.toString('pem'))
    write('server.pem', server.cert)
    write('server-key.pem', server.key)
    write('client.pem', client.cert)
    write('client-key.pem', client.key)
    created = true
  }
  return {
    ca: readFileSync(files.ca, 'utf8'),
    serverCert: readFileSync(path('server.pem'), 'utf8'),
    serverKey: readFileSync(path('server-key.pem'), 'utf8'),
    files,
    created,
  }
}
