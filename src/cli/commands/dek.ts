/**
 * `fraiseql-security dek status|rotate`: the KeyManager's keyring of data
 * keys, in a database or through a running server's admin API.
 */
import { parseArgs } from 'node:util'
import type { DatabaseLocation } from '../../internal/sql/url.js'
import {
  KeyManager,
  type KeyringStore,
  kmsFromEnv,
  PostgresKeyringStore,
  SqliteKeyringStore,
} from '../../kms/index.js'
import { type CliIO, type Command, EXIT, type ExitCode, UsageError } from '../command.js'
import { formatTable } from '../table.js'
import {
  adminCall,
  contextPrefixOf,
  requireExistingDatabase,
  TARGET_HELP,
  TARGET_OPTIONS,
  targetOf,
} from '../target.js'

const HELP = `Usage: fraiseql-security dek <status|rotate> [target options]

  status   List the data keys of the keyring: id, status, creation time and
           encryptions reserved so far. No KMS call.
  rotate   Make a new data key active (one KMS call to wrap it); older keys
           stay decrypt-only, so existing ciphertexts still open.

${TARGET_HELP}
Exit codes: 0 done, 1 the work failed (message on stderr), 2 the command line is wrong.

Examples:
  fraiseql-security dek status --database-url .data/keyring.db
  fraiseql-security dek rotate --url http://127.0.0.1:3000 --api-key "$ADMIN_KEY"
`

/** One data key as printed. */
export interface DekRow {
  readonly id: string
  readonly status: string
  readonly createdAt: string
  readonly usesReserved: number
}

export function keyringStoreAt(
  location: DatabaseLocation,
): KeyringStore & { close?(): Promise<void> } {
  return location.dialect === 'postgres'
    ? new PostgresKeyringStore({ connectionString: location.connectionString })
    : new SqliteKeyringStore({ filename: location.filename })
}

function print(io: CliIO, rows: readonly DekRow[], json: boolean): void {
  if (json) {
    io.stdout(`${JSON.stringify(rows, null, 2)}\n`)
    return
  }
  io.stdout(
    formatTable(
      ['id', 'status', 'created', 'uses reserved'],
      rows.map((r) => [r.id, r.status, r.createdAt, String(r.usesReserved)]),
    ),
  )
}

/** A data key as printed, from the keyring's entry or KeyManager's view (time as a number or a Date). */
function dekRow(k: {
  id: string
  status: DekRow['status']
  createdAt: number | Date
  usesReserved: number
}): DekRow {
  return {
    id: k.id,
    status: k.status,
    createdAt: new Date(k.createdAt).toISOString(),
    usesReserved: k.usesReserved,
  }
}

export const dekCommand: Command = {
  name: 'dek',
  help: HELP,
  async run(args: readonly string[], io: CliIO): Promise<ExitCode> {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: TARGET_OPTIONS,
      allowPositionals: true,
    })
    const action = positionals[0]
    if (action !== 'status' && action !== 'rotate')
      throw new UsageError('expected "dek status" or "dek rotate"')
    const target = targetOf(values, io)
    if (target.kind === 'api') {
      const rows =
        action === 'status'
          ? await adminCall<DekRow[]>(target, 'GET', '/admin/dek')
          : await adminCall<DekRow[]>(target, 'POST', '/admin/dek/rotate', {})
      print(io, rows, values.json)
      return EXIT.OK
    }
    // Read-only: no file created at a mistyped path, no migration run.
    if (action === 'status') requireExistingDatabase(target.location)
    const store = keyringStoreAt(target.location)
    try {
      if (action === 'status') {
        print(io, (await store.list()).map(dekRow), values.json)
        return EXIT.OK
      }
      if (!values.json) io.stderr('rotating: unwrapping the active data key (one KMS call)…\n')
      const kms = kmsFromEnv(io.env)
      const keys = new KeyManager({
        ...kms.keyManagerOptions,
        ...contextPrefixOf(values, io),
        keyring: store,
      })
      try {
        await keys.initialize()
        await keys.rotateDataKey()
        print(io, (await keys.dataKeys()).map(dekRow), values.json)
      } finally {
        keys.dispose()
      }
      return EXIT.OK
    } finally {
      await store.close?.()
    }
  },
}
