/**
 * The hardened GraphQL server `npm start` boots: every capability of
 * fraiseql-security working together, on embedded defaults.
 *
 *   npm start                              STANDARD, plain HTTP on 127.0.0.1:3000
 *   npm start -- --profile regulated       HTTPS with a development certificate
 *   npm start -- --profile restricted      HTTPS + client certificates (mTLS)
 *
 * - Profile: `new ProfileEnforcer(profile).applyTo(app)` with the
 *   `serverOptions()` the profile needs.
 * - KMS: the local provider, its master key in <data>/master-keys.json (0600),
 *   or Vault / AWS / GCP through FRAISEQL_KMS_PROVIDER (see kmsFromEnv).
 * - KeyManager: one KMS call at start; resolvers encrypt the customer's tax id
 *   on write and decrypt it on read locally. The table holds ciphertext only.
 * - API keys: SQLite (or FRAISEQL_DATABASE_URL=postgres://…), admin routes,
 *   a demo key created and printed once on first start.
 * - Tracing: OTEL_TRACES_EXPORTER=console prints spans; nothing by default.
 * - Rate limits: in memory, or Redis with REDIS_URL.
 */
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import Fastify, { type FastifyServerOptions } from 'fastify'
import {
  ApiKeyManager,
  apiKeyAdminRoutes,
  apiKeyAuthenticator,
  PostgresApiKeyStore,
  requirePermission,
  SqliteApiKeyStore,
} from 'fraiseql-security/api-keys'
import { GraphQLTracer } from 'fraiseql-security/graphql'
import { RedisStore } from 'fraiseql-security/http'
import {
  KeyManager,
  kmsFromEnv,
  PostgresKeyringStore,
  SqliteKeyringStore,
} from 'fraiseql-security/kms'
import { PROFILES, ProfileEnforcer } from 'fraiseql-security/profiles'
import mercurius from 'mercurius'
import { devCertificates } from './certs.js'
import { CustomerStore, customerResolvers, schema } from './customers.js'
import { tracerProviderFromEnv } from './telemetry.js'

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string', default: process.env.FRAISEQL_PROFILE ?? 'standard' },
    port: { type: 'string', default: process.env.PORT ?? '3000' },
    host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
    data: { type: 'string', default: process.env.FRAISEQL_DATA_DIR ?? '.data' },
  },
})

const profileName = args.profile.toUpperCase() as keyof typeof PROFILES
const profile = PROFILES[profileName]
if (profile === undefined) {
  console.error(`unknown --profile "${args.profile}": standard, regulated or restricted`)
  process.exit(2)
}
const dataDir = resolve(args.data)
mkdirSync(dataDir, { recursive: true, mode: 0o700 })
const databaseUrl = process.env.FRAISEQL_DATABASE_URL
const onPostgres = databaseUrl !== undefined && /^postgres(ql)?:\/\//.test(databaseUrl)

// KMS and data keys: one KMS call here, none per request afterwards.
const CONTEXT_PREFIX = 'example'
const kms = kmsFromEnv(process.env, dataDir)
const keyManager = new KeyManager({
  ...kms.keyManagerOptions,
  contextPrefix: CONTEXT_PREFIX,
  keyring: onPostgres
    ? new PostgresKeyringStore({ connectionString: databaseUrl })
    : new SqliteKeyringStore({ filename: join(dataDir, 'keyring.db') }),
})
await keyManager.initialize()

// API keys: the pepper is unwrapped once, validation never calls the KMS.
const apiKeys = new ApiKeyManager({
  store: onPostgres
    ? new PostgresApiKeyStore({ connectionString: databaseUrl })
    : new SqliteApiKeyStore({ filename: join(dataDir, 'api-keys.db') }),
  keyManager,
})
await apiKeys.initialize()
const firstStart = (await apiKeys.list()).length === 0
const demo = firstStart
  ? await apiKeys.create({
      name: 'demo',
      region: 'local',
      tier: 'demo',
      permissions: ['customers:read', 'customers:write', 'api-keys:admin', 'dek:admin'],
    })
  : undefined

const customers = new CustomerStore(join(dataDir, 'customers.db'))

// Transport: plain HTTP for STANDARD; development certificates otherwise.
const redisUrl = process.env.REDIS_URL
const tracerProvider = await tracerProviderFromEnv(process.env)
const enforcer = new ProfileEnforcer(profile, {
  authenticate: apiKeyAuthenticator(apiKeys),
  publicPaths: ['/health'],
  tiers: { demo: { max: 1000 } },
  ...(redisUrl === undefined
    ? {}
    : {
        rateLimitStore: new RedisStore({ client: new (await import('ioredis')).Redis(redisUrl) }),
      }),
  ...(tracerProvider === undefined ? {} : { tracer: new GraphQLTracer({ tracerProvider }) }),
})
const tls = profile.tlsRequired ? await devCertificates(join(dataDir, 'certs')) : undefined
const options: FastifyServerOptions & { https?: object } = {
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  ...(tls === undefined
    ? {}
    : {
        https: {
          key: tls.serverKey,
          cert: tls.serverCert,
          ca: tls.ca,
          ...enforcer.serverOptions(),
        },
      }),
}
const app = Fastify(options)

await app.register(mercurius, {
  schema,
  resolvers: customerResolvers(customers, keyManager),
  ...enforcer.mercuriusOptions(),
})
await enforcer.applyTo(app)

app.get('/health', async () => ({ ok: true }))
await app.register(apiKeyAdminRoutes, { manager: apiKeys })
// The keyring, for `fraiseql-security dek status|rotate --url …`.
const dekRows = async () =>
  (await keyManager.dataKeys()).map((k) => ({
    id: k.id,
    status: k.status,
    createdAt: k.createdAt.toISOString(),
    usesReserved: k.usesReserved,
  }))
app.get('/admin/dek', { preHandler: requirePermission('dek:admin') }, dekRows)
app.post('/admin/dek/rotate', { preHandler: requirePermission('dek:admin') }, async () => {
  await keyManager.rotateDataKey()
  return dekRows()
})

const address = await app.listen({ host: args.host, port: Number(args.port) })
const base = address.replace('://127.0.0.1', tls === undefined ? '://127.0.0.1' : '://localhost')
console.log(`fraiseql-security example (${profile.name}) listening on ${base}`)
const curlTls =
  tls === undefined
    ? ''
    : ` --cacert ${tls.files.ca}${profile.mtlsRequired ? ` --cert ${tls.files.clientCert} --key ${tls.files.clientKey}` : ''}`
const query = `'{"query":"{ customers { id name taxId } }"}'`
if (demo !== undefined) {
  console.log('\nDemo API key (shown once, store it now):')
  console.log(`  FRAISEQL_DEMO_KEY=${demo.key}`)
  console.log('\nTry:')
  console.log(
    `  curl${curlTls} -H "Authorization: Bearer ${demo.key}" -H 'content-type: application/json' -d ${query} ${base}/graphql`,
  )
} else {
  console.log(
    `\nTry: curl${curlTls} -H "Authorization: Bearer $FRAISEQL_DEMO_KEY" -H 'content-type: application/json' -d ${query} ${base}/graphql`,
  )
}
if (profile.mtlsRequired) console.log('  (mTLS: the client certificate above is required)')
// The direct-database CLI needs this server's contextPrefix, or every unwrap
// fails with ERR_KMS_DECRYPTION_FAILED: print the exact line.
const cliDatabase = (file: string) =>
  onPostgres ? '"$FRAISEQL_DATABASE_URL"' : join(dataDir, file)
const cliKms =
  (process.env.FRAISEQL_KMS_PROVIDER ?? 'local') === 'local' &&
  process.env.FRAISEQL_LOCAL_KEY_FILE === undefined
    ? `FRAISEQL_LOCAL_KEY_FILE=${join(dataDir, 'master-keys.json')} `
    : ''
console.log("\nCLI against this server's own files:")
console.log(`  fraiseql-security keys list --database-url ${cliDatabase('api-keys.db')}`)
// The CLI takes curl's TLS flags, so the same ones reach an HTTPS or mTLS server.
console.log(`  fraiseql-security dek status --url ${base} --api-key "$FRAISEQL_DEMO_KEY"${curlTls}`)
console.log(
  `  ${cliKms}fraiseql-security dek rotate --database-url ${cliDatabase('keyring.db')} --context-prefix ${CONTEXT_PREFIX}`,
)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (async () => {
      await app.close()
      await apiKeys.close()
      await keyManager.dispose()
      customers.close()
      await tracerProvider?.shutdown()
      process.exit(0)
    })()
  })
}
// The last line, printed after everything above: scripts (and the end-to-end
// test) wait for it instead of guessing which of the lines before came last.
console.log(`fraiseql-security example ready on ${base}`)
