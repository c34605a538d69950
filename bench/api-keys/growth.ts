/**
 * "Cost as the work grows" (issue 19), the second part of
 * `npm run bench -- api-keys`:
 *
 * - `miss-<n>`: cache-miss `ApiKeyManager.validate()` (`cache.ttlMs: 0`)
 *   against a PostgreSQL store whose `api_keys` table holds n rows, one
 *   dedicated schema per size. A few hundred keys are issued through
 *   `create()`; the rest are filler rows written by one
 *   `INSERT ... SELECT generate_series` in the store's own table (distinct
 *   random-looking 12-character ids, 32-byte hashes and MACs, so the primary
 *   key has its real size), then `ANALYZE`. The timed calls cycle through
 *   the issued keys. `miss-<smallest>-aa` is a second manager on the
 *   smallest schema: the A/A control.
 * - `warm-1` and `warm-<n>`: `validate()` with every key cached, cycling
 *   through one key or n distinct keys. The n keys are made by `create()`
 *   with the store's `insertKey` captured (so hash and row MAC are the real
 *   API's) and written in bulk: issuing 1e5 keys one transaction at a time
 *   takes minutes. Their `created` audit rows are not written.
 *
 * Every schema is dropped in `close()`.
 */
import { randomBytes } from 'node:crypto'
import { ApiKeyManager, type ApiKeyStore, PostgresApiKeyStore } from 'fraiseql-security/api-keys'
import { KeyManager, LocalKmsProvider } from 'fraiseql-security/kms'
import pg from 'pg'

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface GrowthSizes {
  /** Rows of `api_keys` per cache-miss schema, ascending. */
  readonly rows: readonly number[]
  /** Distinct keys cycled through by `warm-<n>`. */
  readonly warmKeys: number
  /** Keys issued through `create()` per schema, the ones `miss-<n>` validates. */
  readonly issued: number
}

export const FULL_SIZES: GrowthSizes = { rows: [1e3, 1e5, 1e6], warmKeys: 1e5, issued: 300 }
/** `--quick`: the same wiring at a tenth of the seeding. */
export const QUICK_SIZES: GrowthSizes = { rows: [1e3, 1e4, 1e5], warmKeys: 1e4, issued: 100 }

/** `1000` → `1e3`, as the variant names and tables spell sizes. */
export function sizeLabel(n: number): string {
  const e = Math.log10(n)
  return Number.isInteger(e) ? `1e${e}` : String(n)
}

export type Op = () => Promise<unknown>

/** What a flush carried, summed over the flushes of one manager. */
export interface FlushCounters {
  flushes: number
  lastUsed: number
  audit: number
  /** Wall time spent inside `store.flush`, ms. */
  ms: number
}

export interface GrowthVariant {
  readonly name: string
  readonly description: string
  readonly op: Op
  readonly manager: ApiKeyManager
  readonly reads: () => number
  readonly flush: FlushCounters
}

export interface SizeFacts {
  readonly rows: number
  readonly seedMs: number
  readonly tableBytes: number
  readonly indexBytes: number
  /** `EXPLAIN` of the store's own `getKey` statement, generic plan (what a prepared statement settles on). */
  readonly genericPlan: string
  /** The same with the key id as a literal (the custom plan). */
  readonly customPlan: string
}

export interface GrowthSetup {
  readonly variants: readonly GrowthVariant[]
  readonly sizes: readonly SizeFacts[]
  readonly warm: { readonly keys: number; readonly issueMs: number; readonly cacheMs: number }
  readonly checks: readonly string[]
  close(): Promise<void>
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`api-keys growth sanity check failed: ${what}`)
}

/** Store reads and flush contents of one manager, counted outside its code. */
function instrumented(
  store: ApiKeyStore,
  counters: { reads: number },
  flush: FlushCounters,
  captureInserts?: (row: Parameters<ApiKeyStore['insertKey']>[0]) => void,
): ApiKeyStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      if (prop === 'insertKey' && captureInserts !== undefined) {
        return async (row: Parameters<ApiKeyStore['insertKey']>[0]) => {
          captureInserts(row)
          return true
        }
      }
      if (prop === 'getKey') {
        return (keyId: string) => {
          counters.reads++
          return target.getKey(keyId)
        }
      }
      if (prop === 'flush') {
        return async (batch: Parameters<ApiKeyStore['flush']>[0]) => {
          const t0 = performance.now()
          try {
            return await target.flush(batch)
          } finally {
            flush.flushes++
            flush.lastUsed += batch.lastUsed.size
            flush.audit += batch.audit.length
            flush.ms += performance.now() - t0
          }
        }
      }
      return (value as (...a: unknown[]) => unknown).bind(target)
    },
  })
}

const newFlush = (): FlushCounters => ({ flushes: 0, lastUsed: 0, audit: 0, ms: 0 })

/** One plan node as `Index Scan using api_keys_pkey` (plus any children). */
function describePlan(plan: Record<string, unknown>): string {
  const node = String(plan['Node Type'])
  const index = plan['Index Name'] === undefined ? '' : ` using ${String(plan['Index Name'])}`
  const cond = plan['Index Cond'] === undefined ? '' : ` (${String(plan['Index Cond'])})`
  const children = (plan.Plans as Record<string, unknown>[] | undefined) ?? []
  const inner = children.length === 0 ? '' : ` → ${children.map(describePlan).join(', ')}`
  return `${node}${index}${cond}${inner}`
}

const planNodes = (plan: Record<string, unknown>): Record<string, unknown>[] => [
  plan,
  ...((plan.Plans as Record<string, unknown>[] | undefined) ?? []).flatMap(planNodes),
]

export async function setupGrowth(deps: {
  sizes: GrowthSizes
  log: (line: string) => void
}): Promise<GrowthSetup> {
  const { sizes, log } = deps
  const keyManager = new KeyManager({
    providers: { local: new LocalKmsProvider({ keys: { app: randomBytes(32) } }) },
    defaultProvider: 'local',
    defaultKeyId: 'app',
  })
  // Every store holds one pooled connection in LISTEN (seven stores here):
  // room for those plus the queries.
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 12 })
  pool.on('error', () => {})
  const run = randomBytes(4).toString('hex')
  const schemas: string[] = []
  const managers: ApiKeyManager[] = []
  const stores: PostgresApiKeyStore[] = []
  const variants: GrowthVariant[] = []
  const facts: SizeFacts[] = []
  const checks: string[] = []

  /** The exact text the store sends for a cache miss, seen on the pool. */
  const getKeyTexts = new Map<string, string>()
  const watchedPool = new Proxy(pool, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (prop !== 'query' || typeof value !== 'function') return value
      return (config: unknown, ...rest: unknown[]) => {
        if (typeof config === 'object' && config !== null && 'name' in config) {
          const c = config as { name?: string; text?: string }
          if (c.name?.startsWith('fraiseql_api_key_get_') && c.text !== undefined)
            getKeyTexts.set(c.name, c.text)
        }
        return (value as (...a: unknown[]) => unknown).call(target, config, ...rest)
      }
    },
  }) as pg.Pool

  const newManager = (
    schema: string,
    options: { ttlMs?: number; capture?: (row: Parameters<ApiKeyStore['insertKey']>[0]) => void },
  ) => {
    const store = new PostgresApiKeyStore({ pool: watchedPool, schema })
    const counters = { reads: 0 }
    const flush = newFlush()
    const manager = new ApiKeyManager({
      store: instrumented(store, counters, flush, options.capture),
      keyManager,
      failedAttempts: false,
      ...(options.ttlMs === undefined ? {} : { cache: { ttlMs: options.ttlMs } }),
    })
    stores.push(store)
    managers.push(manager)
    return { manager, counters, flush }
  }
  const issue = async (manager: ApiKeyManager, n: number, name: string) => {
    const keys: string[] = []
    for (let i = 0; i < n; i++) {
      const { key } = await manager.create({
        name: `${name}-${i}`,
        region: 'eu_west_1',
        tier: 'pro',
        permissions: ['orders:read'],
      })
      keys.push(key)
    }
    return keys
  }
  /** An op that cycles through `keys`. */
  const cycling = (manager: ApiKeyManager, keys: readonly string[]): Op => {
    let i = 0
    return () => {
      const key = keys[i]!
      i = i + 1 === keys.length ? 0 : i + 1
      return manager.validate(key)
    }
  }

  try {
    const smallest = sizes.rows[0]!
    for (const rows of sizes.rows) {
      const label = sizeLabel(rows)
      const schema = `bench_api_keys_g${label}_${run}`
      schemas.push(schema)
      const { manager, counters, flush } = newManager(schema, { ttlMs: 0 })
      await manager.initialize()
      const t0 = performance.now()
      const keys = await issue(manager, sizes.issued, `miss-${label}`)
      const filler = rows - sizes.issued
      // Ids: 12 base62 characters taken from a SHA-256 (base64 without its
      // three other symbols), scattered over the key space like real ids.
      // A collision (about 1e-10 at 1e6 rows) is skipped and shows in the count.
      await pool.query(
        `insert into "${schema}".api_keys
           (key_id, hash, pepper_version, name, prefix, region, start, tier, permissions,
            created_at, expires_at, row_mac)
         select k.id, sha256(('hash' || i || $2)::bytea), 1, 'filler-' || i, 'fraiseql_live',
                'eu_west_1', 'fraiseql_live_eu_west_1_' || k.id || '_' || left(md5(i::text), 4),
                'pro', '["orders:read"]', $3::bigint, $3::bigint + 7776000000,
                sha256(('mac' || i || $2)::bytea)
           from generate_series(1, $1::int) as i,
                lateral (select left(translate(encode(sha256(('id' || i || $2)::bytea), 'base64'),
                                               '+/=', ''), 12) as id) as k
         on conflict do nothing`,
        [filler, run, Date.now()],
      )
      await pool.query(`analyze "${schema}".api_keys`)
      const seedMs = performance.now() - t0
      const count = Number(
        (await pool.query(`select count(*)::int as n from "${schema}".api_keys`)).rows[0].n,
      )
      check(count >= rows - 1 && count <= rows, `${schema} holds ${count} rows, expected ${rows}`)
      // One validation per issued key: the sanity check, and the store's
      // statement is prepared on the pool's connections.
      for (const key of keys) await manager.validate(key)
      check(counters.reads === keys.length, `miss-${label}: one read per validation`)
      const text = [...getKeyTexts.values()].find((t) => t.includes(`"${schema}"`))
      check(text !== undefined, `the getKey statement of ${schema} was seen`)
      const keyId = keys[0]!.slice(-51, -39)
      const client = await pool.connect()
      let genericPlan: Record<string, unknown>
      let customPlan: Record<string, unknown>
      try {
        const explain = async (sql: string, values: unknown[] = []) =>
          (await client.query(sql, values)).rows[0]['QUERY PLAN'][0].Plan as Record<string, unknown>
        customPlan = await explain(`explain (format json) ${text!}`, [keyId])
        await client.query(`prepare bench_get_key as ${text!}`)
        await client.query(`set plan_cache_mode = force_generic_plan`)
        genericPlan = await explain(`explain (format json) execute bench_get_key('${keyId}')`)
        await client.query(`deallocate bench_get_key`)
        await client.query(`reset plan_cache_mode`)
      } finally {
        client.release()
      }
      for (const p of [genericPlan, customPlan]) {
        const seq = planNodes(p).some((n) => String(n['Node Type']).includes('Seq Scan'))
        check(!seq, `the getKey plan of ${schema} has no sequential scan: ${describePlan(p)}`)
      }
      const sizeRow = (
        await pool.query(
          `select pg_total_relation_size($1::regclass)::bigint as t, pg_relation_size($2::regclass)::bigint as i`,
          [`"${schema}".api_keys`, `"${schema}".api_keys_pkey`],
        )
      ).rows[0]
      facts.push({
        rows: count,
        seedMs,
        tableBytes: Number(sizeRow.t),
        indexBytes: Number(sizeRow.i),
        genericPlan: describePlan(genericPlan),
        customPlan: describePlan(customPlan),
      })
      log(
        `api-keys growth: ${schema} seeded, ${count} rows in ${Math.round(seedMs)} ms; plan ${describePlan(genericPlan)}`,
      )
      variants.push({
        name: `miss-${label}`,
        description: `\`miss-${label}\`: cache-miss \`validate()\` (\`cache.ttlMs: 0\`), ${count.toLocaleString('en-US')} rows in \`api_keys\`, cycling through ${keys.length} issued keys`,
        op: cycling(manager, keys),
        manager,
        reads: () => counters.reads,
        flush,
      })
      if (rows === smallest) {
        const aa = newManager(schema, { ttlMs: 0 })
        await aa.manager.initialize()
        for (const key of keys) await aa.manager.validate(key)
        variants.push({
          name: `miss-${label}-aa`,
          description: `\`miss-${label}-aa\`: a second manager on the same ${label} schema (A/A control)`,
          op: cycling(aa.manager, keys),
          manager: aa.manager,
          reads: () => aa.counters.reads,
          flush: aa.flush,
        })
      }
    }

    // Warm: one schema, one key issued normally, n keys issued with their rows captured.
    const warmSchema = `bench_api_keys_gwarm_${run}`
    schemas.push(warmSchema)
    const one = newManager(warmSchema, {})
    await one.manager.initialize()
    const [oneKey] = await issue(one.manager, 1, 'warm-1')
    const captured: Parameters<ApiKeyStore['insertKey']>[0][] = []
    const issuer = newManager(warmSchema, { capture: (row) => captured.push(row) })
    await issuer.manager.initialize()
    const t0 = performance.now()
    const warmKeys: string[] = []
    for (let i = 0; i < sizes.warmKeys; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, sizes.warmKeys - i) }, (_, j) =>
          issuer.manager.create({
            name: `warm-${i + j}`,
            region: 'eu_west_1',
            tier: 'pro',
            permissions: ['orders:read'],
          }),
        ),
      )
      for (const b of batch) warmKeys.push(b.key)
    }
    const nullable = (x: number | null) => (x === null ? null : String(x))
    for (let i = 0; i < captured.length; i += 10_000) {
      const chunk = captured.slice(i, i + 10_000)
      await pool.query(
        `insert into "${warmSchema}".api_keys
           (key_id, hash, pepper_version, name, prefix, region, start, tier, permissions,
            allowed_ips, created_at, expires_at, rotated_at, grace_until, replaced_by,
            revoked_at, revoked_reason, last_used_at, created_by, encrypted_key, row_mac)
         select * from unnest($1::text[], $2::bytea[], $3::int[], $4::text[], $5::text[],
           $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[],
           $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], $16::bigint[], $17::text[],
           $18::bigint[], $19::text[], $20::text[], $21::bytea[])`,
        [
          chunk.map((r) => r.keyId),
          chunk.map((r) => Buffer.from(r.hash)),
          chunk.map((r) => r.pepperVersion),
          chunk.map((r) => r.name),
          chunk.map((r) => r.prefix),
          chunk.map((r) => r.region),
          chunk.map((r) => r.start),
          chunk.map((r) => r.tier),
          chunk.map((r) => JSON.stringify(r.permissions)),
          chunk.map((r) => (r.allowedIps === null ? null : JSON.stringify(r.allowedIps))),
          chunk.map((r) => String(r.createdAt)),
          chunk.map((r) => String(r.expiresAt)),
          chunk.map((r) => nullable(r.rotatedAt)),
          chunk.map((r) => nullable(r.graceUntil)),
          chunk.map((r) => r.replacedBy),
          chunk.map((r) => nullable(r.revokedAt)),
          chunk.map((r) => r.revokedReason),
          chunk.map((r) => nullable(r.lastUsedAt)),
          chunk.map((r) => r.createdBy),
          chunk.map((r) => r.encryptedKey),
          chunk.map((r) => (r.rowMac == null ? null : Buffer.from(r.rowMac))),
        ],
      )
    }
    await pool.query(`analyze "${warmSchema}".api_keys`)
    const issueMs = performance.now() - t0
    check(captured.length === sizes.warmKeys, 'every warm key was issued')

    // The n-key manager keeps the default cache (maxEntries 100,000): its
    // cache is filled by validating each key once, a few at a time.
    const many = newManager(warmSchema, {})
    await many.manager.initialize()
    const t1 = performance.now()
    for (let i = 0; i < warmKeys.length; i += 16) {
      await Promise.all(warmKeys.slice(i, i + 16).map((k) => many.manager.validate(k)))
    }
    const cacheMs = performance.now() - t1
    check(many.counters.reads === warmKeys.length, 'warm-n: one read per key to fill the cache')
    await one.manager.validate(oneKey!)
    const before = { one: one.counters.reads, many: many.counters.reads }
    for (const k of warmKeys) await many.manager.validate(k)
    for (let i = 0; i < 1000; i++) await one.manager.validate(oneKey!)
    check(
      many.counters.reads === before.many && one.counters.reads === before.one,
      `warm: a full cycle reads nothing (warm-n read ${many.counters.reads - before.many} times)`,
    )
    checks.push(
      `Growth: every \`miss-<n>\` manager made exactly one store read per validation of its ${sizes.issued} issued keys; after filling, a full cycle through the ${sizes.warmKeys.toLocaleString('en-US')} warm keys made 0 store reads (they all fit the default \`cache.maxEntries\`, 100,000), and so did 1,000 validations of \`warm-1\`'s key.`,
      'Growth: no `getKey` plan (generic or custom) contains a sequential scan at any size.',
    )
    await issuer.manager.close()
    log(
      `api-keys growth: ${warmKeys.length} warm keys issued in ${Math.round(issueMs)} ms, cached in ${Math.round(cacheMs)} ms`,
    )
    variants.push(
      {
        name: 'warm-1',
        description: '`warm-1`: warm `validate()`, one key',
        op: () => one.manager.validate(oneKey!),
        manager: one.manager,
        reads: () => one.counters.reads,
        flush: one.flush,
      },
      {
        name: `warm-${sizeLabel(sizes.warmKeys)}`,
        description: `\`warm-${sizeLabel(sizes.warmKeys)}\`: warm \`validate()\`, cycling through ${sizes.warmKeys.toLocaleString('en-US')} distinct cached keys`,
        op: cycling(many.manager, warmKeys),
        manager: many.manager,
        reads: () => many.counters.reads,
        flush: many.flush,
      },
    )
    return {
      variants,
      sizes: facts,
      warm: { keys: warmKeys.length, issueMs, cacheMs },
      checks,
      close,
    }
  } catch (err) {
    await close().catch(() => {})
    throw err
  }

  async function close(): Promise<void> {
    for (const m of managers) await m.close().catch(() => {})
    for (const s of stores) await s.close().catch(() => {})
    for (const schema of schemas) await pool.query(`drop schema if exists "${schema}" cascade`)
    await pool.end()
  }
}
