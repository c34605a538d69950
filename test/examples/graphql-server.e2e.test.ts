/**
 * The example server end to end: started as a child process (REGULATED, so
 * HTTPS with the development CA it generates), driven over real HTTP. Keys
 * go through the admin API; the database file is only opened read-only.
 *
 * Each test makes what it needs (its own API key, its own loopback source
 * address where a per-IP budget matters), so one failure never shows up as
 * a misleading one later.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type HttpsAnswer, type RequestOptions, requestLocal } from '../helpers/tls.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'fsl-example-'))
let child: ChildProcess
let port = 0
let demoKey = ''
let ca = ''
let output = ''
const READY = /fraiseql-security example ready on https:\/\/localhost:(\d+)\n/

function call(
  method: string,
  path: string,
  options: { key?: string; body?: string } & Pick<RequestOptions, 'localAddress'> = {},
): Promise<HttpsAnswer> {
  return requestLocal(port, path, {
    method,
    ca,
    timeoutMs: 10_000,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    ...(options.body === undefined ? {} : { body: options.body }),
    headers: {
      ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
  })
}

const gql = (key: string, query: string) =>
  call('POST', '/graphql', { key, body: JSON.stringify({ query }) })

/** A fresh key from the admin API, for one test. */
async function createKey(name: string, permissions: string[]): Promise<string> {
  const created = await call('POST', '/admin/api-keys', {
    key: demoKey,
    body: JSON.stringify({ name, region: 'eu_west_1', permissions }),
  })
  expect(created.statusCode, created.body).toBe(201)
  const key = JSON.parse(created.body).key as string
  expect(key).toMatch(/^fraiseql_live_eu_west_1_/)
  return key
}

/** The server answers (a request that proves it is alive, for tests whose request failed on purpose). */
async function expectAlive(): Promise<void> {
  expect(child.exitCode).toBeNull()
  expect((await call('GET', '/health')).statusCode).toBe(200)
}

beforeAll(async () => {
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'examples/graphql-server/server.ts',
      '--profile',
      'regulated',
      '--port',
      '0',
      '--data',
      dataDir,
    ],
    {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'warn', NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString()
  })
  // The server prints its ready line last, after the demo key and the curl
  // line: everything the tests read from the output is there once it is.
  // The bound is against a server that never starts, not a speed: under the
  // repeat script's CPU burner on a shared machine, start-up (tsx, the dev
  // CA, migrations) took over 60 s.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not start:\n${output}`)), 180_000)
    child.stdout?.on('data', (c: Buffer) => {
      output += c.toString()
      const ready = READY.exec(output)
      if (ready === null) return
      port = Number(ready[1])
      clearTimeout(timer)
      resolve()
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`example exited ${code}:\n${output}`))
    })
  })
  const key = /FRAISEQL_DEMO_KEY=(\S+)/.exec(output)
  if (key === null) throw new Error(`no demo key in the output:\n${output}`)
  demoKey = key[1]!
  ca = readFileSync(join(dataDir, 'certs', 'ca.pem'), 'utf8')
}, 200_000)

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
  rmSync(dataDir, { recursive: true, force: true })
})

describe('example GraphQL server (REGULATED)', () => {
  it('prints the demo key once with a ready curl line, before its ready line', () => {
    const curl = output.search(
      /curl --cacert \S+ca\.pem -H "Authorization: Bearer fraiseql_live_local_/,
    )
    expect(curl).toBeGreaterThan(-1)
    expect(curl).toBeLessThan(output.search(READY))
    expect(output.match(/FRAISEQL_DEMO_KEY=/g)).toHaveLength(1)
  })

  it('creates a key through the admin API and queries with it', async () => {
    const key = await createKey('e2e-query', ['customers:read', 'customers:write'])
    const write = await gql(
      key,
      'mutation { createCustomer(name: "Ada", email: "ada@example.com", taxId: "123-45-6789") { id taxId } }',
    )
    expect(JSON.parse(write.body)).toMatchObject({
      data: { createCustomer: { taxId: '123-45-6789' } },
    })
    const read = await gql(key, '{ customers { name taxId } }')
    expect(JSON.parse(read.body).data.customers).toContainEqual({
      name: 'Ada',
      taxId: '123-45-6789',
    })
  })

  it('the database holds only ciphertext', async () => {
    const key = await createKey('e2e-ciphertext', ['customers:write'])
    const write = await gql(
      key,
      'mutation { createCustomer(name: "Grace", email: "grace@example.com", taxId: "987-65-4321") { id } }',
    )
    expect(write.statusCode, write.body).toBe(200)
    const db = new Database(join(dataDir, 'customers.db'), { readonly: true, fileMustExist: true })
    try {
      const rows = db.prepare('SELECT * FROM customers WHERE name = ?').all('Grace') as Record<
        string,
        unknown
      >[]
      expect(rows).toHaveLength(1)
      const dump = JSON.stringify(rows)
      expect(dump).not.toContain('987-65-4321')
      expect(String(rows[0]!.tax_id_ciphertext)).toMatch(/^A[A-Za-z0-9_-]{60,}$/)
    } finally {
      db.close()
    }
  })

  it('serves nothing over plain HTTP (the port speaks TLS only; 426 is for proxied plain HTTP)', async () => {
    const plain = requestLocal(port, '/health', { timeoutMs: 10_000 })
    // The TLS layer drops the connection: a reset or a hang-up, never an answer.
    await expect(plain).rejects.toMatchObject({
      code: expect.stringMatching(/^(ECONNRESET|EPIPE)$/),
    })
    await expectAlive()
  })

  it('refuses an unknown key with 401 and no detail', async () => {
    const res = await gql(
      'fraiseql_live_local_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB000000',
      '{ customers { id } }',
    )
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'ERR_AUTH_REQUIRED' })
  })

  it('enforces the depth limit and disabled introspection; masks suggestions', async () => {
    const key = await createKey('e2e-guards', ['customers:read'])
    let q = 'id'
    for (let i = 0; i < 11; i++) q = `customers { ${q} }`
    const tooDeep = await gql(key, `{ ${q} }`)
    expect(tooDeep.statusCode).toBe(400)
    expect(tooDeep.body).toContain('ERR_GRAPHQL_DEPTH_LIMIT')
    const introspection = await gql(key, '{ __schema { types { name } } }')
    expect(introspection.body).toContain('ERR_GRAPHQL_INTROSPECTION_DISABLED')
    const typo = await gql(key, '{ customers { nam } }')
    expect(typo.statusCode).toBe(400)
    expect(typo.body).not.toContain('Did you mean')
  })

  it('enforces the body limit', async () => {
    const key = await createKey('e2e-body', ['customers:read'])
    const res = await call('POST', '/graphql', {
      key,
      body: JSON.stringify({ query: `{ customers { id } }`, pad: 'x'.repeat(1024 * 1024) }),
    })
    expect(res.statusCode).toBe(413)
    expect(JSON.parse(res.body)).toMatchObject({ max_size: 1024 * 1024, max_size_human: '1.0 MB' })
  })

  it('enforces the IP rate limit (100 per minute) on a client of its own', async () => {
    // 127.0.0.42 is this test's own client: no other test spends its budget.
    const client = { localAddress: '127.0.0.42' }
    for (let i = 0; i < 100; i++) {
      const res = await call('GET', '/health', client)
      expect(res.statusCode, `request ${i + 1}`).toBe(200)
    }
    // A sliding window may admit a few more if a window edge passes now;
    // it can never admit another 100.
    let refused: HttpsAnswer | undefined
    for (let i = 0; i < 100 && refused === undefined; i++) {
      const res = await call('GET', '/health', client)
      if (res.statusCode !== 200) refused = res
    }
    expect(refused?.statusCode).toBe(429)
    expect(JSON.parse(refused!.body)).toMatchObject({ code: 'ERR_HTTP_RATE_LIMITED' })
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThan(0)
    await expectAlive()
    // Up to 200 HTTPS requests one after another: the default 20 s ran out under load.
  }, 120_000)
})
