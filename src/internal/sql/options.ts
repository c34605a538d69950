/**
 * The "exactly one of a borrowed handle or a connection string" rules every
 * PostgreSQL and SQLite store on the SQL layer shares.
 */
import type { z } from 'zod'

/** An issue on `a` (or on `b` when `a` is given) unless exactly one of the two is. */
function exactlyOne<K extends string>(
  o: Partial<Record<K, unknown>>,
  a: K,
  b: K,
  ctx: z.RefinementCtx,
): void {
  if ((o[a] === undefined) === (o[b] === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [o[a] === undefined ? a : b],
      message: `give exactly one of ${a} or ${b}`,
    })
  }
}

/** PostgreSQL stores: exactly one of `pool` and `connectionString`. */
export function refinePgStoreOptions(
  o: { pool?: unknown; connectionString?: unknown },
  ctx: z.RefinementCtx,
): void {
  exactlyOne(o, 'pool', 'connectionString', ctx)
}

/** SQLite stores: exactly one of `database` and `filename`; `busyTimeoutMs` only with a filename. */
export function refineSqliteStoreOptions(
  o: { database?: unknown; filename?: unknown; busyTimeoutMs?: unknown },
  ctx: z.RefinementCtx,
): void {
  exactlyOne(o, 'database', 'filename', ctx)
  if (o.database !== undefined && o.busyTimeoutMs !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['busyTimeoutMs'],
      message: 'applies only to a filename (set the timeout on your own Database)',
    })
  }
}
