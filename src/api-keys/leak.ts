/**
 * The leak endpoint of GitHub's secret-scanning partner program: GitHub
 * POSTs `[{ token, type, url, source }]` for every match of our pattern it
 * finds in a public place, signed with ECDSA P-256 over the exact raw body
 * (`Github-Public-Key-Identifier`, `Github-Public-Key-Signature`, base64
 * DER). Every token that is exactly one of our keys is revoked; the answer
 * labels each one `true_positive` or `false_positive` by the SHA-256 of the
 * token (the token itself is never echoed).
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { type Clock, systemClock } from '../internal/clock.js'
import { describeError } from '../internal/logger.js'
import { ClockOptionSchema, parseOptions } from '../internal/options.js'
import { ensureErrorReply } from '../internal/reply/fastify.js'
import { ApiKeyRequestError, LeakSignatureError } from './errors.js'
import { ApiKeyManager } from './manager.js'

/** One verification key, in GitHub's `/meta/public_keys/secret_scanning` shape. */
export interface SecretScanningPublicKey {
  readonly key_identifier: string
  /** PEM (`-----BEGIN PUBLIC KEY-----`). */
  readonly key: string
  readonly is_current?: boolean
}

/** Returns the current keys: fetch GitHub's endpoint with your own client, or read a file. */
export type SecretScanningKeySource = () => Promise<
  readonly SecretScanningPublicKey[] | { readonly public_keys: readonly SecretScanningPublicKey[] }
>

const PublicKeySchema = z.object({
  key_identifier: z.string().min(1).max(200),
  key: z.string().min(1).max(10_000),
  is_current: z.boolean().optional(),
})

export const SecretScanningOptionsSchema = z
  .object({
    manager: z.instanceof(ApiKeyManager),
    /** Route path. @default '/api-keys/secret-scanning' */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9_./-]*$/)
      .default('/api-keys/secret-scanning'),
    /**
     * The verification keys, or a function returning them (called at start,
     * then again when a report names an unknown key identifier, at most
     * once per `refreshIntervalMs`).
     */
    publicKeys: z.union([
      z.array(PublicKeySchema).min(1),
      z.custom<SecretScanningKeySource>((v) => typeof v === 'function', {
        message: 'must be a list of keys or a function returning them',
      }),
    ]),
    /** @default 60000 */
    refreshIntervalMs: z.number().int().min(0).max(86_400_000).default(60_000),
    /** Largest body accepted, bytes. @default 1048576 */
    bodyLimit: z
      .number()
      .int()
      .min(1)
      .max(16 * 1024 * 1024)
      .default(1024 * 1024),
    /** Most tokens handled per report. @default 1000 */
    maxTokens: z.number().int().min(1).max(100_000).default(1000),
    /** @default Date.now */
    clock: ClockOptionSchema.optional(),
  })
  .strict()

export type SecretScanningOptions = z.input<typeof SecretScanningOptionsSchema>

const ReportSchema = z
  .array(
    z.object({
      token: z.string().min(1).max(1000),
      type: z.string().max(200).optional(),
      url: z.string().max(2000).optional(),
      source: z.string().max(200).optional(),
    }),
  )
  .min(1)

function compile(keys: readonly SecretScanningPublicKey[]): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>()
  for (const k of keys) {
    const parsed = PublicKeySchema.safeParse(k)
    if (!parsed.success) continue
    try {
      const key = createPublicKey(parsed.data.key)
      // GitHub signs with ECDSA over NIST P-256; refuse any other key type.
      if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
        out.set(parsed.data.key_identifier, key)
      }
    } catch {
      // An unparsable key verifies nothing.
    }
  }
  return out
}

/** Keeps the verification keys, refreshing them from a source when a report names a new one. */
class KeyRing {
  #keys = new Map<string, KeyObject>()
  #lastFetch = Number.NEGATIVE_INFINITY
  #fetching: Promise<void> | undefined
  readonly #source: SecretScanningKeySource | undefined
  readonly #interval: number
  readonly #clock: Clock

  constructor(o: z.output<typeof SecretScanningOptionsSchema>) {
    this.#clock = o.clock ?? systemClock
    this.#interval = o.refreshIntervalMs
    if (typeof o.publicKeys === 'function') {
      this.#source = o.publicKeys
    } else {
      this.#source = undefined
      this.#keys = compile(o.publicKeys as readonly SecretScanningPublicKey[])
    }
  }

  async get(id: string): Promise<KeyObject | undefined> {
    const known = this.#keys.get(id)
    if (known !== undefined || this.#source === undefined) return known
    if (this.#clock() - this.#lastFetch >= this.#interval) await this.refresh()
    return this.#keys.get(id)
  }

  refresh(): Promise<void> {
    const source = this.#source
    if (source === undefined) return Promise.resolve()
    this.#fetching ??= (async () => {
      this.#lastFetch = this.#clock()
      const got = await source()
      const list = Array.isArray(got)
        ? (got as readonly SecretScanningPublicKey[])
        : (got as { public_keys: readonly SecretScanningPublicKey[] }).public_keys
      if (Array.isArray(list)) this.#keys = compile(list)
    })().finally(() => {
      this.#fetching = undefined
    })
    return this.#fetching
  }
}

const kRawBody = Symbol('fraiseql-security.rawBody')

async function secretScanningPlugin(
  app: FastifyInstance,
  options: SecretScanningOptions,
): Promise<void> {
  const o = parseOptions('githubSecretScanning', SecretScanningOptionsSchema, options)
  const keys = new KeyRing(o)
  await ensureErrorReply(app)
  app.addHook('onReady', async () => {
    await o.manager.initialize()
    await keys
      .refresh()
      .catch((err: unknown) =>
        app.log.warn(
          { err: describeError(err) },
          'secret-scanning public keys could not be loaded',
        ),
      )
  })
  // The signature covers the exact bytes GitHub sent: keep them, and parse
  // JSON ourselves only after verifying. Encapsulated: other routes keep
  // their parsers.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.bodyLimit }, (_req, body, done) =>
    done(null, { [kRawBody]: body }),
  )

  app.post(o.path, { config: { apiKey: false, rateLimit: false } }, async (request, reply) => {
    const raw = (request.body as { [kRawBody]?: Buffer } | undefined)?.[kRawBody]
    await checkSignature(request, raw, keys)
    let parsed: unknown
    try {
      parsed = JSON.parse(raw!.toString('utf8'))
    } catch {
      throw new ApiKeyRequestError('Invalid report: not JSON')
    }
    const report = ReportSchema.safeParse(parsed)
    if (!report.success)
      throw new ApiKeyRequestError('Invalid report: expected [{ token, type, url, source }]')
    if (report.data.length > o.maxTokens)
      throw new ApiKeyRequestError('Invalid report: too many tokens')
    const context = { actor: 'github-secret-scanning', ip: request.ip }
    const answer = []
    for (const item of report.data) {
      const details: { source?: string; url?: string } = {}
      if (item.source !== undefined) details.source = `github:${item.source}`
      if (item.url !== undefined) details.url = item.url
      const leaked = await o.manager.reportLeak(item.token, details, context)
      answer.push({
        token_hash: createHash('sha256').update(item.token).digest('hex'),
        token_type: item.type ?? null,
        label: leaked ? 'true_positive' : 'false_positive',
      })
    }
    return reply.code(200).send(answer)
  })
}

async function checkSignature(
  request: FastifyRequest,
  raw: Buffer | undefined,
  keys: KeyRing,
): Promise<void> {
  const id = request.headers['github-public-key-identifier']
  const signature = request.headers['github-public-key-signature']
  // Precondition: both headers, a body, a known key, then the signature itself.
  if (typeof id !== 'string' || typeof signature !== 'string' || raw === undefined) {
    throw new LeakSignatureError()
  }
  const key = await keys.get(id).catch(() => undefined)
  if (key === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) throw new LeakSignatureError()
  let ok = false
  try {
    ok = verify('sha256', raw, { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'))
  } catch {
    ok = false
  }
  if (!ok) throw new LeakSignatureError()
}

/**
 * GitHub secret-scanning partner endpoint: verifies the report's ECDSA P-256
 * signature over the raw body with the keys you supply (or fetch), revokes
 * every reported token that is exactly one of our keys, and answers
 * `[{ token_hash, token_type, label }]`. Marked `apiKey: false` and
 * `rateLimit: false`; with a `ProfileEnforcer`, add its path to `publicPaths`.
 *
 * @example
 * ```ts
 * await app.register(githubSecretScanning, {
 *   manager: keys,
 *   publicKeys: async () => (await fetch('https://api.github.com/meta/public_keys/secret_scanning')).json(),
 * })
 * ```
 */
export const githubSecretScanning = fp(secretScanningPlugin, {
  name: 'fraiseql-security/github-secret-scanning',
  fastify: '5.x',
  encapsulate: true,
})
