import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli } from '../cli/run.js'
import { makePki } from '../helpers/tls.js'

// Issue 20: `--url` could not reach the HTTPS (REGULATED) and mTLS
// (RESTRICTED) example servers: fetch took no CA and no client certificate,
// and a failure printed a stack trace.

const dir = mkdtempSync(join(tmpdir(), 'fsl-cli-tls-'))
const pki = makePki()
const files = {
  ca: join(dir, 'ca.pem'),
  cert: join(dir, 'client.pem'),
  key: join(dir, 'client.key'),
}
writeFileSync(files.ca, pki.ca)
writeFileSync(files.cert, pki.clientCert)
writeFileSync(files.key, pki.clientKey)

let app: FastifyInstance
let url: string
beforeAll(async () => {
  app = Fastify({
    https: {
      key: pki.serverKey,
      cert: pki.serverCert,
      ca: pki.ca,
      requestCert: true,
      rejectUnauthorized: true,
    },
  })
  app.get('/admin/dek', async (request, reply) => {
    if (request.headers.authorization !== 'Bearer admin-key')
      return reply.code(401).send({ detail: 'missing or invalid API key' })
    return [{ id: 'dk1', status: 'active', createdAt: '2026-01-01T00:00:00.000Z', usesReserved: 0 }]
  })
  url = await app.listen({ host: '127.0.0.1', port: 0 })
})
afterAll(async () => {
  await app.close()
  rmSync(dir, { recursive: true, force: true })
})

const tlsArgs = ['--cacert', files.ca, '--cert', files.cert, '--key', files.key]

describe('CLI --url against an HTTPS server that requires a client certificate', () => {
  it('works with --cacert, --cert and --key', async () => {
    const r = await cli([
      'dek',
      'status',
      '--url',
      url,
      '--api-key',
      'admin-key',
      ...tlsArgs,
      '--json',
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ id: 'dk1' })])
  })

  it.each([
    [
      'without --cacert the server is not trusted',
      ['--cert', files.cert, '--key', files.key],
      /certificate/i,
    ],
    [
      'without a client certificate the handshake fails',
      ['--cacert', files.ca],
      /^fraiseql-security dek: GET https:\/\/127\.0\.0\.1:\d+: /,
    ],
  ])('%s: one line, exit 1, no stack', async (_, args, message) => {
    const r = await cli(['dek', 'status', '--url', url, '--api-key', 'admin-key', ...args])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(message)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('a wrong API key is one line with the 401 and the server detail', async () => {
    const r = await cli(['dek', 'status', '--url', url, '--api-key', 'wrong', ...tlsArgs])
    expect(r.code).toBe(1)
    expect(r.stderr.trim()).toMatch(/401 missing or invalid API key$/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('--cert without --key, or TLS files with an http URL, is a usage error (exit 2)', async () => {
    expect(
      (await cli(['dek', 'status', '--url', url, '--api-key', 'k', '--cert', files.cert])).code,
    ).toBe(2)
    expect(
      (
        await cli([
          'dek',
          'status',
          '--url',
          'http://127.0.0.1:3000',
          '--api-key',
          'k',
          '--cacert',
          files.ca,
        ])
      ).code,
    ).toBe(2)
  })
})
