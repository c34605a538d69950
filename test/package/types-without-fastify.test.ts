/**
 * The `http` and `graphql` subpaths are usable without Fastify (the
 * Express-style middleware, the GraphQL guards for yoga or Apollo), and
 * `fastify` is an optional peer: their published declarations must
 * type-check in a project that does not have it, with `skipLibCheck: false`.
 *
 * The project is built in a temporary directory whose node_modules holds a
 * copy of the built package (a copy: a symlink would resolve to this
 * checkout, where fastify is installed), its dependencies, graphql (a peer)
 * and @types/node, and nothing else.
 */
import { spawnSync } from 'node:child_process'
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
}

let project: string

function link(name: string): void {
  const source = realpathSync(join(root, 'node_modules', name))
  const target = join(project, 'node_modules', name)
  mkdirSync(dirname(target), { recursive: true })
  symlinkSync(source, target, 'dir')
}

beforeAll(() => {
  // The build the whole run shares (npm test's pretest, or the global set-up):
  // rebuilding here deleted dist/ while other files were importing from it.
  project = mkdtempSync(join(tmpdir(), 'fraiseql-types-'))
  const installed = join(project, 'node_modules', 'fraiseql-security')
  mkdirSync(installed, { recursive: true })
  cpSync(join(root, 'package.json'), join(installed, 'package.json'))
  cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true })
  for (const name of Object.keys(pkg.dependencies)) link(name)
  link('graphql')
  link('@types/node')
  writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'module', private: true }))
  writeFileSync(
    join(project, 'index.ts'),
    [
      "import { createServer } from 'node:http'",
      "import { bodyLimitMiddleware, rateLimitMiddleware, MemoryStore, toHttpAnswer } from 'fraiseql-security/http'",
      "import { checkDocument, createValidationRules, redactSensitive } from 'fraiseql-security/graphql'",
      "import { parse, validate, buildSchema, specifiedRules } from 'graphql'",
      '',
      'const limit = rateLimitMiddleware({ max: 10, windowMs: 60_000, store: new MemoryStore() })',
      'const body = bodyLimitMiddleware({ maxSize: 1024 })',
      'createServer((req, res) => {',
      '  limit(req, res, () => body(req, res, () => res.end("ok")))',
      '})',
      "const answer = toHttpAnswer(new Error('x'))",
      'const status: number = answer.statusCode',
      "const schema = buildSchema('type Query { a: String }')",
      'const rules = createValidationRules({ maxDepth: 5 })',
      "const errors = validate(schema, parse('{ a }'), [...specifiedRules, ...rules])",
      "const decision = checkDocument(parse('{ a }'), { maxDepth: 5 })",
      "const redacted: unknown = redactSensitive({ password: 'p' })",
      'export { status, errors, decision, redacted }',
      '',
    ].join('\n'),
  )
}, 240_000)

afterAll(() => {
  if (project !== undefined) rmSync(project, { recursive: true, force: true })
})

describe('published declarations without fastify', () => {
  it('fastify is not resolvable from the project', () => {
    expect(() => createRequire(join(project, 'index.ts')).resolve('fastify')).toThrow()
  })

  it('http and graphql type-check with skipLibCheck false, strict, NodeNext', () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const run = spawnSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--skipLibCheck',
        'false',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        'index.ts',
      ],
      { cwd: project, encoding: 'utf8' },
    )
    expect(run.stdout + run.stderr).toBe('')
    expect(run.status).toBe(0)
    // A full type-check of the published declarations: about 15 s on an idle
    // 2-core machine, several times that on a loaded one.
  }, 240_000)
})
