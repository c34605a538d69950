/**
 * The example server end to end: started as a child process (REGULATED, so
 * HTTPS with the development CA it generates), driven over real HTTP. Keys
 * go through the admin API; the database file is only opened read-only.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'fsl-example-'))
let child: ChildProcess
let port = 0
let demoKey = ''
let ca = ''
let output = ''

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field in assertions
  json(): any
}

function call(
  method: string,
  path: string,
  options: { key?: string; body?: string | Buffer; tls?: boolean } = {},
): Promise<Answer> {
  const tls = options.tls ?? true
  const send = tls ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = send(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        servername: 'localhost',
        ...(tls ? { ca } : {}),
        agent: false,
        timeout: 10_000,
        headers: {
          ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body),
          }),
        )
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(options.body)
  })
}

const gql = (key: string, query: string) =>
  call('POST', '/graphql', { key, body: JSON.stringify({ query }) })

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
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not start:\n${output}`)), 60_000)
    child.stdout?.on('data', (c: Buffer) => {
      output += c.toString()
      const listening = /listening on https:\/\/localhost:(\d+)/.exec(output)
      const key = /FRAISEQL_DEMO_KEY=(\S+)/.exec(output)
      if (listening !== null && key !== null) {
        port = Number(listening[1])
        demoKey = key[1]!
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('exit', (code) => reject(new Error(`example exited ${code}:\n${output}`)))
  })
  ca = readFileSync(join(dataDir, 'certs', 'ca.pem'), 'utf8')
}, 90_000)

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
  rmSync(dataDir, { recursive: true, force: true })
})

describe('example GraphQL server (REGULATED)', () => {
  let key = ''

  it('prints the demo key once with a ready curl line', () => {
    expect(output).toMatch(
      /curl --cacert \S+ca\.pem -H "Authorization: Bearer fraiseql_live_local_/,
    )
  })

  it('creates a key through the admin API and queries with it', async () => {
    const created = await call('POST', '/admin/api-keys', {
      key: demoKey,
      body: JSON.stringify({ name: 'e2e', region: 'eu_west_1', permissions: ['customers:read'] }),
    })
    expect(created.status).toBe(201)
    key = created.json().key
    expect(key).toMatch(/^fraiseql_live_eu_west_1_/)
    const write = await gql(
      key,
      'mutation { createCustomer(name: "Ada", email: "ada@example.com", taxId: "123-45-6789") { id taxId } }',
    )
    expect(write.json()).toMatchObject({ data: { createCustomer: { taxId: '123-45-6789' } } })
    const read = await gql(key, '{ customers { name taxId } }')
    expect(read.json().data.customers).toContainEqual({ name: 'Ada', taxId: '123-45-6789' })
  })

  it('the database holds only ciphertext', () => {
    const db = new Database(join(dataDir, 'customers.db'), { readonly: true, fileMustExist: true })
    try {
      const rows = db.prepare('SELECT * FROM customers').all() as Record<string, unknown>[]
      expect(rows.length).toBeGreaterThan(0)
      const dump = JSON.stringify(rows)
      expect(dump).not.toContain('123-45-6789')
      expect(String(rows[0]!.tax_id_ciphertext)).toMatch(/^A[A-Za-z0-9_-]{60,}$/)
    } finally {
      db.close()
    }
  })

  it('serves nothing over plain HTTP (the port speaks TLS only; 426 is for proxied plain HTTP)', async () => {
    await expect(call('GET', '/health', { tls: false })).rejects.toThrow()
  })

  it('refuses an unknown key with 401 and no detail', async () => {
    const res = await gql(
      'fraiseql_live_local_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB000000',
      '{ customers { id } }',
    )
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/)
  })

  it('enforces the depth limit and disabled introspection; masks suggestions', async () => {
    let q = 'id'
    for (let i = 0; i < 11; i++) q = `customers { ${q} }`
    const tooDeep = await gql(key, `{ ${q} }`)
    expect(tooDeep.status).toBe(400)
    expect(tooDeep.body).toContain('ERR_GRAPHQL_DEPTH_LIMIT')
    const introspection = await gql(key, '{ __schema { types { name } } }')
    expect(introspection.body).toContain('ERR_GRAPHQL_INTROSPECTION_DISABLED')
    const typo = await gql(key, '{ customers { nam } }')
    expect(typo.body).not.toContain('Did you mean')
  })

  it('enforces the body limit', async () => {
    const res = await call('POST', '/graphql', {
      key,
      body: JSON.stringify({ query: `{ customers { id } }`, pad: 'x'.repeat(1024 * 1024) }),
    })
    expect(res.status).toBe(413)
  })

  it('enforces the IP rate limit (100 per minute)', async () => {
    let last = 0
    for (let i = 0; i < 105 && last !== 429; i++) last = (await call('GET', '/health')).status
    expect(last).toBe(429)
  })
})
