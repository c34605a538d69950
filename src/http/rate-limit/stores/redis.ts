import { createHash } from 'node:crypto'
import { z } from 'zod'
import { parseOptions } from '../../../internal/options.js'
import type { PolicyState } from '../../errors.js'
import { type RateLimitPolicy, toPolicyState, type WindowCounters } from '../sliding-window.js'
import type { ConsumeRequest, RateLimitStore, RefundRequest } from '../store.js'

/**
 * The subset of an ioredis client the store uses. Configure the client so it
 * fails fast during an outage instead of queueing: `enableOfflineQueue: false`
 * and `maxRetriesPerRequest: 0`; otherwise a restarting Redis makes every
 * command hang and only `storeTimeoutMs` saves the request.
 */
export interface RedisClientLike {
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
}

/**
 * The charge scripts' first lines: the weight (ARGV[1]) and the time in
 * milliseconds, the caller's (ARGV[2]) or else Redis `TIME`.
 */
const LUA_WEIGHT_AND_NOW = `local weight = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

/**
 * One hash per (client, policy): `w` window index, `c` current count, `p`
 * previous count. All policies are checked first and charged only if every one
 * fits, in one atomic script, so the request is all or nothing. The first
 * charge of a window writes the hash and sets its expiry, `2w − elapsed`,
 * which is the end of the next window whatever the elapsed time; later
 * charges in the same window only increment `c` (one command instead of
 * two, and less work for Redis, where the store's cost lies). A hash never
 * moves back to an older window (a caller's clock behind the one that wrote
 * it): such a call counts at the start of the hash's window. Time comes
 * from Redis `TIME` unless the caller's clock is requested (ARGV[2] non-empty).
 * Integer comparisons mirror `fits()` in sliding-window.ts exactly.
 */
export const SLIDING_WINDOW_LUA = `
${LUA_WEIGHT_AND_NOW}local n = #KEYS
local idx, el, cur, prev, ok, same = {}, {}, {}, {}, {}, {}
local allowed = 1
for i = 1, n do
  local max = tonumber(ARGV[1 + 2 * i])
  local w = tonumber(ARGV[2 + 2 * i])
  local x = math.floor(now / w)
  local e = now - x * w
  local h = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local hw = tonumber(h[1])
  local c = tonumber(h[2]) or 0
  local p = tonumber(h[3]) or 0
  if hw ~= nil and hw > x then
    x = hw; e = 0
  end
  if hw == nil then
    c = 0; p = 0
  elseif hw == x - 1 then
    p = c; c = 0
  elseif hw ~= x then
    c = 0; p = 0
  end
  idx[i] = x; el[i] = e; cur[i] = c; prev[i] = p; same[i] = hw == x
  if p * (w - e) + (c + weight) * w <= max * w then ok[i] = 1 else ok[i] = 0; allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local w = tonumber(ARGV[2 + 2 * i])
  if allowed == 1 then
    cur[i] = cur[i] + weight
    if same[i] then
      redis.call('HINCRBY', KEYS[i], 'c', weight)
    else
      redis.call('HSET', KEYS[i], 'w', idx[i], 'c', cur[i], 'p', prev[i])
      redis.call('PEXPIRE', KEYS[i], 2 * w - el[i])
    end
  end
  out[#out + 1] = ok[i]
  out[#out + 1] = prev[i]
  out[#out + 1] = cur[i]
  out[#out + 1] = el[i]
  out[#out + 1] = idx[i]
end
return out
`

const SCRIPT_SHA = createHash('sha1').update(SLIDING_WINDOW_LUA).digest('hex')

/**
 * {@link SLIDING_WINDOW_LUA} for one policy, the common case, deciding
 * identically on the same hash: ARGV is weight, now (empty: Redis `TIME`),
 * max, windowMs, and `1` when the window index is wanted (a refundable
 * charge). Plain locals instead of per-policy tables, an early answer when
 * refused, and a reply of `{allowed, previous, current, elapsed[, window]}`:
 * the Lua around the commands, not the commands, was most of the script's
 * Redis CPU.
 */
export const SLIDING_WINDOW_ONE_POLICY_LUA = `
${LUA_WEIGHT_AND_NOW}local max = tonumber(ARGV[3])
local w = tonumber(ARGV[4])
local x = math.floor(now / w)
local e = now - x * w
local h = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local hw = tonumber(h[1])
local c, p = 0, 0
if hw ~= nil then
  if hw >= x then
    if hw > x then x = hw; e = 0 end
    c = tonumber(h[2]) or 0; p = tonumber(h[3]) or 0
  elseif hw == x - 1 then
    p = tonumber(h[2]) or 0
  end
end
local reply
if p * (w - e) + (c + weight) * w <= max * w then
  c = c + weight
  if hw == x then
    redis.call('HINCRBY', KEYS[1], 'c', weight)
  else
    redis.call('HSET', KEYS[1], 'w', x, 'c', c, 'p', p)
    redis.call('PEXPIRE', KEYS[1], 2 * w - e)
  end
  reply = {1, p, c, e}
else
  reply = {0, p, c, e}
end
if ARGV[5] == '1' then reply[5] = x end
return reply
`

const ONE_POLICY_SHA = createHash('sha1').update(SLIDING_WINDOW_ONE_POLICY_LUA).digest('hex')

/**
 * Takes back a charge of `weight` (ARGV[1]) from each policy's hash, in one
 * atomic script over the same keys (one hash tag, one cluster slot) as the
 * charge. ARGV[1 + i] is the window the charge of KEYS[i] went into: while
 * the hash is in that window the refund comes off `c`; once it has moved on
 * by one window, off `p` (where that window's count now is); otherwise the
 * charge no longer counts and nothing changes. Never below zero, never a new
 * hash (a missing one has expired), never another window or expiry.
 */
export const SLIDING_WINDOW_REFUND_LUA = `
local weight = tonumber(ARGV[1])
for i = 1, #KEYS do
  local x = tonumber(ARGV[1 + i])
  local hw = tonumber(redis.call('HGET', KEYS[i], 'w'))
  local field = nil
  if hw ~= nil and hw == x then field = 'c' elseif hw ~= nil and hw == x + 1 then field = 'p' end
  if field ~= nil then
    local r = math.min(weight, tonumber(redis.call('HGET', KEYS[i], field)) or 0)
    if r > 0 then redis.call('HINCRBY', KEYS[i], field, -r) end
  end
end
return 1
`

const REFUND_SHA = createHash('sha1').update(SLIDING_WINDOW_REFUND_LUA).digest('hex')

export const RedisStoreOptionsSchema = z
  .object({
    /** An ioredis client (or anything with `evalsha` and `eval`). Never closed by the store. */
    client: z.custom<RedisClientLike>(
      (v) =>
        typeof (v as Partial<RedisClientLike> | null)?.evalsha === 'function' &&
        typeof (v as Partial<RedisClientLike> | null)?.eval === 'function',
      { message: 'must be an ioredis client (evalsha and eval)' },
    ),
    /**
     * Prefix of every key. Keys are `<prefix>{<client>}:<policy>`; the hash tag
     * keeps one client's policies in one cluster slot, so the script's keys
     * never span slots. Braces would move the hash tag into the prefix (every
     * client in one slot), so the prefix has none.
     * @default 'fsrl:'
     */
    prefix: z
      .string()
      .max(128)
      .refine((p) => !/[{}]/.test(p), 'must not contain "{" or "}" (the hash tag is the client)')
      .default('fsrl:'),
    /**
     * `server` uses Redis `TIME`, so instances with skewed clocks agree;
     * `caller` uses the `now` passed in (tests with an injected clock).
     * @default 'server'
     */
    timeSource: z.enum(['server', 'caller']).default('server'),
  })
  .strict()

export type RedisStoreOptions = z.input<typeof RedisStoreOptionsSchema>

/**
 * Redis store: exactly one round trip per request (`EVALSHA`, falling back to
 * `EVAL` once when Redis answers `NOSCRIPT`, e.g. after a restart or
 * `SCRIPT FLUSH`); keys expire on their own after two windows. Takes an
 * ioredis `Redis` or `Cluster` client: one request's keys share the client's
 * hash tag, so a Redis Cluster runs the script on the one node that holds them.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { RedisStore, rateLimit } from 'fraiseql-security/http'
 * const client = new Redis({ host: '127.0.0.1', enableOfflineQueue: false, maxRetriesPerRequest: 0 })
 * await app.register(rateLimit, { store: new RedisStore({ client }) })
 * ```
 */
export class RedisStore implements RateLimitStore {
  readonly #client: RedisClientLike
  readonly #prefix: string
  readonly #callerTime: boolean

  constructor(options: RedisStoreOptions) {
    const o = parseOptions('RedisStore', RedisStoreOptionsSchema, options)
    this.#client = o.client
    this.#prefix = o.prefix
    this.#callerTime = o.timeSource === 'caller'
  }

  async consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]> {
    const { policies, weight } = request
    const n = policies.length
    const now = this.#callerTime ? request.now : ''
    if (n === 1) return this.#consumeOne(key, policies[0]!, weight, now, request.refundable)
    const args: Array<string | number> = new Array(n + 2 + 2 * n)
    const tagged = clientTag(this.#prefix, key)
    for (let i = 0; i < n; i++) args[i] = tagged + policies[i]!.name
    args[n] = weight
    args[n + 1] = now
    for (let i = 0; i < n; i++) {
      args[n + 2 + 2 * i] = policies[i]!.max
      args[n + 3 + 2 * i] = policies[i]!.windowMs
    }
    const reply = await this.#run(SCRIPT_SHA, SLIDING_WINDOW_LUA, n, args)
    return decodeReply(reply, request)
  }

  /** The one-policy script, with its arguments passed as they are (no array to build and spread). */
  async #consumeOne(
    key: string,
    policy: RateLimitPolicy,
    weight: number,
    now: number | '',
    refundable: boolean | undefined,
  ): Promise<PolicyState[]> {
    const redisKey = clientTag(this.#prefix, key) + policy.name
    const client = this.#client
    const { max, windowMs } = policy
    // Precondition: the window index whenever the charge may be refunded
    // (an absent `refundable` means it may).
    const withWindow = refundable !== false
    let reply: unknown
    try {
      reply = withWindow
        ? await client.evalsha(ONE_POLICY_SHA, 1, redisKey, weight, now, max, windowMs, 1)
        : await client.evalsha(ONE_POLICY_SHA, 1, redisKey, weight, now, max, windowMs)
    } catch (err) {
      if (!isNoScript(err)) throw err
      reply = withWindow
        ? await client.eval(
            SLIDING_WINDOW_ONE_POLICY_LUA,
            1,
            redisKey,
            weight,
            now,
            max,
            windowMs,
            1,
          )
        : await client.eval(SLIDING_WINDOW_ONE_POLICY_LUA, 1, redisKey, weight, now, max, windowMs)
    }
    // Postcondition: the reply the script builds, nothing else.
    if (!Array.isArray(reply) || reply.length !== (withWindow ? 5 : 4)) {
      throw new TypeError('unexpected reply from the rate-limit script')
    }
    const counters: WindowCounters = withWindow
      ? {
          previous: Number(reply[1]),
          current: Number(reply[2]),
          elapsedMs: Number(reply[3]),
          window: Number(reply[4]),
        }
      : { previous: Number(reply[1]), current: Number(reply[2]), elapsedMs: Number(reply[3]) }
    return [toPolicyState(policy, counters, Number(reply[0]) === 1, weight)]
  }

  /** One round trip (`EVALSHA`, or `EVAL` after `NOSCRIPT`) over the same keys as the charge. */
  async refund(key: string, request: RefundRequest): Promise<void> {
    const { policies, weight, windows } = request
    if (!(weight > 0)) return
    const n = policies.length
    if (windows.length !== n) throw new TypeError('refund needs one window per policy')
    const args: Array<string | number> = new Array(2 * n + 1)
    const tagged = clientTag(this.#prefix, key)
    for (let i = 0; i < n; i++) {
      args[i] = tagged + policies[i]!.name
      args[n + 1 + i] = windows[i]!
    }
    args[n] = weight
    await this.#run(REFUND_SHA, SLIDING_WINDOW_REFUND_LUA, n, args)
  }

  async #run(
    sha: string,
    script: string,
    numKeys: number,
    args: Array<string | number>,
  ): Promise<unknown> {
    try {
      return await this.#client.evalsha(sha, numKeys, ...args)
    } catch (err) {
      if (!isNoScript(err)) throw err
      return await this.#client.eval(script, numKeys, ...args)
    }
  }
}

/**
 * `<prefix>{<client>}:`: the part of a key before the policy name. An empty
 * client would make `{}`, which Redis Cluster does not take as a hash tag
 * (each policy's key would hash whole, to different slots: CROSSSLOT), so it
 * is `<prefix>{:}` instead; no other client's key can end in `}<name>`.
 */
function clientTag(prefix: string, key: string): string {
  return key === '' ? `${prefix}{:}` : `${prefix}{${key}}:`
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT')
}

function decodeReply(reply: unknown, request: ConsumeRequest): PolicyState[] {
  const { policies, weight } = request
  if (!Array.isArray(reply) || reply.length !== 1 + 5 * policies.length) {
    throw new TypeError('unexpected reply from the rate-limit script')
  }
  const states: PolicyState[] = new Array(policies.length)
  for (let i = 0; i < policies.length; i++) {
    const base = 1 + 5 * i
    states[i] = toPolicyState(
      policies[i]!,
      {
        previous: Number(reply[base + 1]),
        current: Number(reply[base + 2]),
        elapsedMs: Number(reply[base + 3]),
        window: Number(reply[base + 4]),
      },
      Number(reply[base]) === 1,
      weight,
    )
  }
  return states
}
