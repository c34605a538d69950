/**
 * The `apiKeyAdminRoutes` plugin: create, list, read, rotate and revoke keys
 * over HTTP, behind an admin permission. Bodies are validated with zod; a
 * created or rotated key is in the answer once, with `Cache-Control: no-store`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { parseOptions } from '../internal/options.js'
import { ensureErrorReply } from '../internal/reply/fastify.js'
import { ApiKeyNotFoundError, ApiKeyRequestError } from './errors.js'
import { requirePermission } from './fastify.js'
import { ApiKeyManager } from './manager.js'
import { CreateApiKeySchema, RotateApiKeySchema } from './manager-options.js'
import type { ApiKeyActionContext } from './manager-types.js'

export const ApiKeyAdminRoutesOptionsSchema = z
  .object({
    manager: z.instanceof(ApiKeyManager),
    /** Base path of the routes. @default '/admin/api-keys' */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9_./-]*[^/]$/, 'must start with / and not end with /')
      .default('/admin/api-keys'),
    /** Permission every route requires (of `request.apiKey` or `request.auth`). @default 'api-keys:admin' */
    permission: z.string().min(1).max(200).default('api-keys:admin'),
  })
  .strict()

export type ApiKeyAdminRoutesOptions = z.input<typeof ApiKeyAdminRoutesOptionsSchema>

const ListQuerySchema = z
  .object({
    includeRevoked: z.enum(['true', 'false']).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    offset: z.coerce.number().int().min(0).max(1_000_000).optional(),
  })
  .strict()

const RevokeSchema = z.object({ reason: z.string().min(1).max(500).optional() }).strict()

const KeyIdSchema = z.string().regex(/^[0-9A-Za-z]{12}$/, 'must be a 12-character key id')

/** Parses a body or query, or throws a 400 naming the first bad field (never its value). */
function parseBody<S extends z.ZodType>(what: string, schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {})
  if (result.success) return result.data
  const config = new ConfigError(what, result.error.issues)
  const first = config.issues[0]
  throw new ApiKeyRequestError(
    first === undefined
      ? 'Invalid request'
      : `Invalid ${what}: \`${first.field}\` ${first.problem}`,
  )
}

function keyIdOf(request: FastifyRequest): string {
  const id = (request.params as { id?: unknown }).id
  if (!KeyIdSchema.safeParse(id).success) throw new ApiKeyNotFoundError()
  return id as string
}

function contextOf(request: FastifyRequest): ApiKeyActionContext {
  const actor = request.apiKey?.keyId ?? request.auth?.principal
  return actor === undefined ? { ip: request.ip } : { actor, ip: request.ip }
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store')
}

async function adminRoutesPlugin(
  app: FastifyInstance,
  options: ApiKeyAdminRoutesOptions,
): Promise<void> {
  const o = parseOptions('apiKeyAdminRoutes', ApiKeyAdminRoutesOptionsSchema, options)
  const { manager, path } = o
  await ensureErrorReply(app)
  if (!app.hasRequestDecorator('apiKey')) app.decorateRequest('apiKey', null)
  if (!app.hasRequestDecorator('auth')) app.decorateRequest('auth', null)
  const guard = requirePermission(o.permission)

  app.post(path, { preHandler: guard }, async (request, reply) => {
    const input = parseBody('body', CreateApiKeySchema, request.body)
    const created = await manager.create(input, contextOf(request))
    return noStore(reply.code(201)).send({ key: created.key, ...created.record })
  })

  app.get(path, { preHandler: guard }, async (request) => {
    const q = parseBody('query', ListQuerySchema, request.query)
    const keys = await manager.list({
      includeRevoked: q.includeRevoked !== 'false',
      ...(q.limit === undefined ? {} : { limit: q.limit }),
      ...(q.offset === undefined ? {} : { offset: q.offset }),
    })
    return { keys }
  })

  app.get(`${path}/:id`, { preHandler: guard }, async (request) => {
    const record = await manager.get(keyIdOf(request))
    if (record === undefined) throw new ApiKeyNotFoundError()
    return record
  })

  app.post(`${path}/:id/rotate`, { preHandler: guard }, async (request, reply) => {
    const id = keyIdOf(request)
    const input = parseBody('body', RotateApiKeySchema, request.body)
    const rotated = await manager.rotate(id, input, contextOf(request))
    return noStore(reply.code(201)).send({
      key: rotated.key,
      ...rotated.record,
      previous: rotated.previous,
    })
  })

  app.delete(`${path}/:id`, { preHandler: guard }, async (request) => {
    const id = keyIdOf(request)
    const body = parseBody('body', RevokeSchema, request.body)
    const query = parseBody('query', RevokeSchema, request.query)
    const record = await manager.revoke(
      id,
      body.reason ?? query.reason ?? 'revoked by an administrator',
      contextOf(request),
    )
    return record
  })
}

/**
 * Admin routes, each behind `permission` (default `api-keys:admin`, read
 * from `request.apiKey` set by `apiKeyAuth`, or `request.auth` set by a
 * `ProfileEnforcer`):
 *
 * - `POST /admin/api-keys` `{ name, region?, tier?, permissions?, expiresInDays?, prefix?, allowedIps? }` → 201 `{ key, ...record }` (the key, once)
 * - `GET /admin/api-keys?includeRevoked=&limit=&offset=` → `{ keys: [record] }`
 * - `GET /admin/api-keys/:id` → record
 * - `POST /admin/api-keys/:id/rotate` `{ graceMinutes?, expiresInDays? }` → 201 `{ key, ...record, previous }`
 * - `DELETE /admin/api-keys/:id` `{ reason? }` (or `?reason=`) → the revoked record
 *
 * @example
 * ```ts
 * await app.register(apiKeyAuth, { manager: keys })
 * await app.register(apiKeyAdminRoutes, { manager: keys })
 * ```
 */
export const apiKeyAdminRoutes = fp(adminRoutesPlugin, {
  name: 'fraiseql-security/api-key-admin-routes',
  fastify: '5.x',
  encapsulate: true,
})
