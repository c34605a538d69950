/**
 * Throwaway PKI for TLS and mTLS tests: a CA, a server certificate for
 * 127.0.0.1 / localhost, a client certificate the CA signed, and one a
 * different CA signed. Made with the openssl CLI (P-256 keys, a few tens of
 * milliseconds), once per test file, in a temporary directory.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Pki {
  readonly ca: string
  readonly serverKey: string
  readonly serverCert: string
  readonly clientKey: string
  readonly clientCert: string
  /** A client certificate signed by a CA the server does not trust. */
  readonly rogueKey: string
  readonly rogueCert: string
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
}

function issue(dir: string, name: string, subject: string, ca: string, ext: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`])
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`])
  writeFileSync(join(dir, `${name}.ext`), ext)
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ])
}

function selfSigned(dir: string, name: string, subject: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`])
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-subj',
    subject,
    '-days',
    '2',
    '-sha256',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-out',
    `${name}.crt`,
  ])
}

/** Generates the whole PKI; the directory is removed before returning. */
export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'fsl-pki-'))
  try {
    selfSigned(dir, 'ca', '/CN=fraiseql test CA')
    selfSigned(dir, 'rogue-ca', '/CN=rogue CA')
    issue(
      dir,
      'server',
      '/CN=localhost',
      'ca',
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    )
    issue(dir, 'client', '/CN=service-a', 'ca', 'extendedKeyUsage=clientAuth\n')
    issue(dir, 'rogue', '/CN=intruder', 'rogue-ca', 'extendedKeyUsage=clientAuth\n')
    const read = (f: string) => readFileSync(join(dir, f), 'utf8')
    return {
      ca: read('ca.crt'),
      serverKey: read('server.key'),
      serverCert: read('server.crt'),
      clientKey: read('client.key'),
      clientCert: read('client.crt'),
      rogueKey: read('rogue.key'),
      rogueCert: read('rogue.crt'),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface HttpsAnswer {
  readonly statusCode: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

export interface RequestOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: string | Buffer
  /** The CA to trust; without it the request is plain HTTP. */
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
  /** Source address on the loopback network (any of 127.0.0.0/8), for a client of its own. */
  readonly localAddress?: string
  /** @default 5000 */
  readonly timeoutMs?: number
}

/** One request to 127.0.0.1:`port`: HTTPS when `ca` is given (server name localhost), else plain HTTP. */
export function requestLocal(
  port: number,
  path: string,
  options: RequestOptions = {},
): Promise<HttpsAnswer> {
  const tls = options.ca !== undefined
  const send = tls ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = send(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        ...(tls ? { ca: options.ca, servername: 'localhost' } : {}),
        ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }),
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        headers: options.headers ?? {},
        agent: false,
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () =>
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body }),
        )
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** One HTTPS GET to 127.0.0.1:`port`, optionally with a client certificate. */
export function httpsGet(
  port: number,
  path: string,
  options: { ca: string; cert?: string; key?: string; headers?: Record<string, string> },
): Promise<HttpsAnswer> {
  return requestLocal(port, path, options)
}
