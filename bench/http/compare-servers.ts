/**
 * The HTTP benches' servers (bench/http/server.ts) as a kind for the shared
 * per-process comparison in lib/compare-servers.ts: `GET /` on each variant,
 * checked for the headers its plugins send.
 */
import { fileURLToPath } from 'node:url'
import type { BenchContext } from '../lib/bench.js'
import {
  compareServers as compareKind,
  type ServerComparison,
  type ServerKind,
} from '../lib/compare-servers.js'
import { probe, type ServerHandle } from '../lib/http.js'
import { VARIANTS, type Variant } from './variants.js'

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url))

/** A header each variant must send, so a plugin that silently failed to register is caught. */
const EXPECTED_HEADER: Record<Variant, string | undefined> = {
  bare: undefined,
  ours: 'ratelimit-policy',
  'ours-rate-limit': 'ratelimit-policy',
  'fastify-rate-limit': 'x-ratelimit-limit',
  'ours-redis': 'ratelimit-policy',
  'ours-postgres': 'ratelimit-policy',
  'onrequest-headers': 'ratelimit-policy',
  'like-ours': 'ratelimit-policy',
}

async function checkVariant(variant: Variant, server: ServerHandle): Promise<void> {
  const { status, headers } = await probe(server.url)
  if (status !== 200) throw new Error(`${variant}: GET / answered ${status}`)
  const expected = EXPECTED_HEADER[variant]
  if (expected !== undefined && !headers.has(expected))
    throw new Error(`${variant}: no ${expected} header, is the plugin registered?`)
  if (expected === undefined && (headers.has('ratelimit') || headers.has('x-ratelimit-limit')))
    throw new Error(`${variant}: rate-limit headers on the bare server`)
}

const HTTP_SERVERS: ServerKind<Variant> = {
  entry: SERVER,
  check: checkVariant,
  describe: (v) => VARIANTS[v],
}

export function compareServers<R extends string>(
  ctx: BenchContext,
  spec: Omit<ServerComparison<R, Variant>, 'kind'>,
): Promise<string> {
  return compareKind(ctx, { ...spec, kind: HTTP_SERVERS })
}
