/**
 * Every optional peer dependency really is optional: in a process whose
 * module resolution cannot find any of them (neither `import` nor
 * `require`), the built subpaths import, and a provider names the package to
 * install on first use.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const OPTIONAL = [
  'fastify',
  'ioredis',
  'pg',
  'better-sqlite3',
  'node-vault',
  '@aws-sdk/client-kms',
  '@google-cloud/kms',
  'google-gax',
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  'graphql',
  'mercurius',
  'xmlbuilder2',
]

/** The peers `fraiseql-security/graphql` loads with require(). */
const REQUIRED_BY_GRAPHQL = ['graphql', 'mercurius']

/** @cyclonedx/cyclonedx-library (CommonJS) looks for xmlbuilder2 with require(). */
const REQUIRED_BY_CYCLONEDX = ['xmlbuilder2']

const SUBPATHS = [
  'fraiseql-security',
  'fraiseql-security/http',
  'fraiseql-security/kms',
  'fraiseql-security/kms/testing',
  'fraiseql-security/graphql',
  'fraiseql-security/api-keys',
  'fraiseql-security/sbom',
]

describe('optional peer dependencies', () => {
  it('every subpath imports without them, and each provider names its package on first use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fsl-peers-'))
    writeFileSync(
      join(dir, 'hook.mjs'),
      `const blocked = ${JSON.stringify(OPTIONAL)}
export async function resolve(specifier, context, next) {
  if (blocked.some((p) => specifier === p || specifier.startsWith(p + '/'))) {
    const err = new Error("Cannot find package '" + specifier + "'")
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
  return next(specifier, context)
}
`,
    )
    // graphql-js is loaded with require() (the guards' APIs are synchronous),
    // which the ESM hook above does not see: block the GraphQL peers there too.
    writeFileSync(
      join(dir, 'block-require.cjs'),
      `const Module = require('node:module')
const blocked = ${JSON.stringify([...REQUIRED_BY_GRAPHQL, ...REQUIRED_BY_CYCLONEDX])}
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  if (blocked.some((p) => request === p || request.startsWith(p + '/'))) {
    const err = new Error("Cannot find module '" + request + "'")
    err.code = 'MODULE_NOT_FOUND'
    throw err
  }
  return resolve.call(this, request, ...rest)
}
`,
    )
    writeFileSync(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module'\nregister('./hook.mjs', import.meta.url)\n`,
    )
    const script = `
const out = {}
for (const sub of ${JSON.stringify(SUBPATHS)}) {
  out[sub] = Object.keys(await import(sub)).length
}
const graphql = await import('fraiseql-security/graphql')
try {
  graphql.createValidationRules({ maxDepth: 5 })
  out.graphql = 'no error'
} catch (err) {
  out.graphql = err.code + ' ' + err.packageName
}
out.strip = graphql.stripFieldSuggestions('x. Did you mean "y"?')
const kms = await import('fraiseql-security/kms')
const providers = {
  vault: new kms.VaultKmsProvider({ address: 'http://127.0.0.1:1', token: 't' }),
  aws: new kms.AwsKmsProvider({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }),
  gcp: new kms.GcpKmsProvider({ projectId: 'proj-123', locationId: 'global', keyRingId: 'ring' }),
}
for (const [name, p] of Object.entries(providers)) {
  try {
    await p.encrypt('x', 'app')
    out[name] = 'no error'
  } catch (err) {
    out[name] = err.code + ' ' + err.packageName
  }
}
const sbom = await import('fraiseql-security/sbom')
const bom = await new sbom.SBOMGenerator().generate('test/sbom/fixtures/v2')
out.sbomJson = JSON.parse(await sbom.toCycloneDX(bom, 'json')).bomFormat
out.sbomSpdx = JSON.parse(sbom.toSPDX(bom)).spdxVersion
try {
  await sbom.toCycloneDX(bom, 'xml')
  out.sbomXml = 'no error'
} catch (err) {
  out.sbomXml = err.code + ' ' + err.packageName
}
console.log(JSON.stringify(out))`
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--require',
        join(dir, 'block-require.cjs'),
        '--import',
        join(dir, 'register.mjs'),
        '--input-type=module',
        '-e',
        script,
      ],
      { cwd: root, timeout: 20_000 },
    )
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
    expect(result).toMatchObject({
      vault: 'ERR_DEPENDENCY_MISSING node-vault',
      aws: 'ERR_DEPENDENCY_MISSING @aws-sdk/client-kms',
      gcp: 'ERR_DEPENDENCY_MISSING @google-cloud/kms',
      graphql: 'ERR_DEPENDENCY_MISSING graphql',
      strip: 'x.',
      sbomJson: 'CycloneDX',
      sbomSpdx: 'SPDX-2.3',
      sbomXml: 'ERR_DEPENDENCY_MISSING xmlbuilder2',
    })
    for (const sub of SUBPATHS) {
      expect(result[sub]).toBeGreaterThan(0)
    }
  })
})
