/**
 * The "exactly one of a borrowed handle or a connection string" rules every
 * PostgreSQL and SQLite store on the SQL layer shares.
 */
import type { z } from 'zod'

/** PostgreSQL stores: exactly one of `pool` and `connectionString`. */
export function refinePgStoreOptions(
  o: { pool?: unknown; connectionString?: unknown },
  ctx: z.RefinementCtx,
): void {
  if ((o.pool === undefined) === (o.connectionString === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [o.pool === undefined ? 'pool' : 'connectionString'],
      message: 'give exactly one of pool or connectionString',
    })
  }
}

/** SQLite stores: exactly one of `database` and `filename`; `busyTimeoutMs` only with a filename. */
export function refineSqliteStoreOptions(
  o: { database?: unknown; filename?: unknown; busyTimeoutMs?: unknown },
  ctx: z.RefinementCtx,
): void {
  if ((o.database === undefined) === (o.filename === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [o.database === undefined ? 'database' : 'filename'],
      message: 'give exactly one of database or filename',
    })
  }
  if (o.database !== undefined && o.busyTimeoutMs !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['busyTimeoutMs'],
      message: 'applies only to a filename (set the timeout on your own Database)',
    })
  }
}
