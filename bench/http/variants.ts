/** The server variants of the HTTP benches, shared by the driver and bench/http/server.ts. */

/** Never reached during a run (10^7 is the schema's maximum), so every request is charged and allowed. */
export const HUGE_MAX = 10_000_000
export const WINDOW_MS = 60_000

export const VARIANTS = {
  bare: 'bare Fastify (no plugins)',
  ours: 'Fastify + our bodyLimit + rateLimit (memory store)',
  'ours-rate-limit': 'Fastify + our rateLimit (memory store)',
  'fastify-rate-limit': 'Fastify + @fastify/rate-limit (memory store)',
  'ours-redis': 'Fastify + our rateLimit (RedisStore), counting store calls',
  'ours-postgres': 'Fastify + our rateLimit (PostgresStore), counting store calls',
  'onrequest-headers': 'Fastify + one no-op onRequest hook setting our two rate-limit headers',
  'like-ours':
    'Fastify + two no-op onRequest hooks (one setting our two headers) + a no-op preParsing hook',
} as const

/** The two headers our rate limit sends, as the stand-in variants send them. */
export const STAND_IN_HEADERS = {
  'ratelimit-policy': '"default";q=10000000;w=60',
  ratelimit: '"default";r=9999999;t=60',
}

export type Variant = keyof typeof VARIANTS

export function isVariant(name: string | undefined): name is Variant {
  return name !== undefined && Object.hasOwn(VARIANTS, name)
}
