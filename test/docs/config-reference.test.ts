/**
 * The configuration references in docs/ are checked against the zod schemas
 * the code parses options with: every option a schema accepts is documented
 * (as `` `name` `` in the page), so a new option cannot ship undocumented.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import * as apiKeys from '../../src/api-keys/index.js'
import * as graphql from '../../src/graphql/index.js'
import * as http from '../../src/http/index.js'
import * as kms from '../../src/kms/index.js'
import * as kmsTesting from '../../src/kms/testing/index.js'
import * as profiles from '../../src/profiles/index.js'
import * as sbom from '../../src/sbom/index.js'

const doc = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../docs/${name}`, import.meta.url)), 'utf8')

/** The top-level keys of an object schema (through pipes, defaults and effects). */
function keysOf(schema: z.ZodType): string[] {
  let s = schema as unknown as {
    shape?: Record<string, unknown>
    def?: { in?: unknown; innerType?: unknown; schema?: unknown }
  }
  for (let i = 0; i < 10 && s.shape === undefined; i++) {
    const next = s.def?.in ?? s.def?.innerType ?? s.def?.schema
    if (next === undefined) break
    s = next as typeof s
  }
  return Object.keys(s.shape ?? {})
}

/** Every schema a public entry exports, the page that documents its options. */
const REFERENCES: ReadonlyArray<readonly [string, z.ZodType, string]> = [
  ['bodyLimit', http.BodySizeConfigSchema, 'http.md'],
  ['rateLimit', http.RateLimitConfigSchema, 'http.md'],
  ['rate-limit policy', http.RateLimitPolicySchema, 'http.md'],
  ['MemoryStore', http.MemoryStoreOptionsSchema, 'http.md'],
  ['RedisStore', http.RedisStoreOptionsSchema, 'http.md'],
  ['PostgresStore', http.PostgresStoreOptionsSchema, 'http.md'],
  ['security profile', profiles.SecurityProfileSchema, 'profiles.md'],
  ['profile quota', profiles.QuotaSchema, 'profiles.md'],
  ['ProfileEnforcer', profiles.ProfileEnforcerOptionsSchema, 'profiles.md'],
  ['GraphQL guards', graphql.GraphqlGuardOptionsSchema, 'graphql.md'],
  ['GraphQL cost model', graphql.ComplexityOptionsSchema, 'graphql.md'],
  ['tracing', graphql.TracingConfigSchema, 'graphql.md'],
  ['BaseKmsProvider', kms.BaseKmsProviderOptionsSchema, 'kms.md'],
  ['LocalKmsProvider', kms.LocalKmsProviderOptionsSchema, 'kms.md'],
  ['VaultKmsProvider', kms.VaultKmsProviderOptionsSchema, 'kms.md'],
  ['AwsKmsProvider', kms.AwsKmsProviderOptionsSchema, 'kms.md'],
  ['GcpKmsProvider', kms.GcpKmsProviderOptionsSchema, 'kms.md'],
  ['startGcpKmsEmulator', kmsTesting.GcpKmsEmulatorOptionsSchema, 'kms.md'],
  ['KeyManager', kms.KeyManagerOptionsSchema, 'key-manager.md'],
  ['KeyManager limits', kms.KeyManagerLimitsSchema, 'key-manager.md'],
  ['FileKeyringStore', kms.FileKeyringStoreOptionsSchema, 'key-manager.md'],
  ['SqliteKeyringStore', kms.SqliteKeyringStoreOptionsSchema, 'key-manager.md'],
  ['PostgresKeyringStore', kms.PostgresKeyringStoreOptionsSchema, 'key-manager.md'],
  ['ApiKeyManager', apiKeys.ApiKeyManagerOptionsSchema, 'api-keys.md'],
  ['ApiKeyManager.create', apiKeys.CreateApiKeySchema, 'api-keys.md'],
  ['ApiKeyManager.rotate', apiKeys.RotateApiKeySchema, 'api-keys.md'],
  ['apiKeyAuth', apiKeys.ApiKeyAuthOptionsSchema, 'api-keys.md'],
  ['apiKeyAdminRoutes', apiKeys.ApiKeyAdminRoutesOptionsSchema, 'api-keys.md'],
  ['githubSecretScanning', apiKeys.SecretScanningOptionsSchema, 'api-keys.md'],
  ['PostgresApiKeyStore', apiKeys.PostgresApiKeyStoreOptionsSchema, 'api-keys.md'],
  ['SqliteApiKeyStore', apiKeys.SqliteApiKeyStoreOptionsSchema, 'api-keys.md'],
  ['SBOMGenerator', sbom.SBOMGeneratorOptionsSchema, 'sbom.md'],
  ['SBOM output', sbom.SBOMOutputOptionsSchema, 'sbom.md'],
]

const ENTRIES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'fraiseql-security/api-keys': apiKeys,
  'fraiseql-security/graphql': graphql,
  'fraiseql-security/http': http,
  'fraiseql-security/kms': kms,
  'fraiseql-security/kms/testing': kmsTesting,
  'fraiseql-security/profiles': profiles,
  'fraiseql-security/sbom': sbom,
}

describe('configuration references match the schemas', () => {
  for (const [what, schema, page] of REFERENCES) {
    it(`docs/${page} documents every ${what} option`, () => {
      const keys = keysOf(schema)
      expect(keys.length).toBeGreaterThan(0)
      const text = doc(page)
      const missing = keys.filter((k) => !text.includes(`\`${k}\``))
      expect(missing, `undocumented ${what} options in docs/${page}`).toEqual([])
    })
  }

  // A schema exported without a row above would skip the check: each options
  // schema a public entry exports (`XOptionsSchema` and the other zod object
  // schemas) has one.
  it('every options schema a public entry exports is listed here', () => {
    const listed = new Set<unknown>(REFERENCES.map(([, schema]) => schema))
    const unlisted = Object.entries(ENTRIES).flatMap(([entry, exports]) =>
      Object.entries(exports)
        .filter(([name, value]) => name.endsWith('Schema') && keysOf(value as z.ZodType).length > 0)
        .filter(([, value]) => !listed.has(value))
        .map(([name]) => `${entry}: ${name}`),
    )
    expect(unlisted).toEqual([])
  })
})
