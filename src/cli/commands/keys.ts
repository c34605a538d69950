/**
 * `fraiseql-security keys create|list|rotate|revoke`: API keys, in a database
 * (with the KMS the environment selects, for the pepper) or through a running
 * server's admin API.
 */
import { parseArgs } from 'node:util'
import { ApiKeyManager, PostgresApiKeyStore, SqliteApiKeyStore } from '../../api-keys/index.js'
import { apiKeyStatus } from '../../internal/api-key-status.js'
import { systemClock } from '../../internal/clock.js'
import type { DatabaseLocation } from '../../internal/sql/url.js'
import { KeyManager, kmsFromEnv } from '../../kms/index.js'
import { type CliIO, type Command, EXIT, type ExitCode, UsageError } from '../command.js'
import { formatTable } from '../table.js'
import {
  adminCall,
  contextPrefixOf,
  requireExistingDatabase,
  TARGET_HELP,
  TARGET_OPTIONS,
  type Target,
  targetOf,
} from '../target.js'

const HELP = `Usage: fraiseql-security keys <create|list|rotate|revoke> [options] [target options]

  create --name <name> [--region <r>] [--tier <t>] [--permission <p>]... [--expires-in-days <n>]
           Issue a key. The key is printed once; only its HMAC is stored.
  list   [--include-revoked]
           Every key's id, name, status, tier, expiry and last use. Never a key.
  rotate <keyId> [--grace-minutes <n>]
           Issue a replacement; the old key stays valid until the grace ends.
  revoke <keyId> [--reason <text>]
           Revoke now, in every process sharing the database.

${TARGET_HELP}
Exit codes: 0 done, 1 the work failed (message on stderr), 2 the command line is wrong.

Examples:
  fraiseql-security keys create --name billing --region eu_west_1 --permission orders:read --database-url .data/api-keys.db
  fraiseql-security keys list --url http://127.0.0.1:3000 --api-key "$ADMIN_KEY"
`

const OPTIONS = {
  ...TARGET_OPTIONS,
  name: { type: 'string' },
  region: { type: 'string' },
  tier: { type: 'string' },
  permission: { type: 'string', multiple: true },
  'expires-in-days': { type: 'string' },
  'grace-minutes': { type: 'string' },
  reason: { type: 'string' },
  'include-revoked': { type: 'boolean', default: false },
} as const

interface KeyRow {
  keyId: string
  name: string
  status: string
  tier: string
  expiresAt: string | Date
  lastUsedAt: string | Date | null
  start?: string
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d{1,6}$/.test(value)) throw new UsageError(`${flag} must be a whole number`)
  return Number(value)
}

function printRows(io: CliIO, rows: readonly KeyRow[], json: boolean): void {
  if (json) {
    io.stdout(`${JSON.stringify(rows, null, 2)}\n`)
    return
  }
  const date = (d: string | Date | null) =>
    d === null ? '-' : new Date(d).toISOString().slice(0, 19)
  io.stdout(
    formatTable(
      ['key id', 'name', 'status', 'tier', 'expires', 'last used'],
      rows.map((r) => [r.keyId, r.name, r.status, r.tier, date(r.expiresAt), date(r.lastUsedAt)]),
    ),
  )
}

function storeAt(location: DatabaseLocation) {
  return location.dialect === 'postgres'
    ? new PostgresApiKeyStore({ connectionString: location.connectionString })
    : new SqliteApiKeyStore({ filename: location.filename })
}

/**
 * `keys list` on a database: the rows as stored, with no KMS call (listing
 * needs no pepper) and no migration (a read-only command changes nothing).
 */
async function listAt(location: DatabaseLocation, includeRevoked: boolean, now: number) {
  requireExistingDatabase(location)
  const store = storeAt(location)
  try {
    const rows = await store.listKeys({ includeRevoked })
    return rows.map(
      (row): KeyRow => ({
        keyId: row.keyId,
        name: row.name,
        status: apiKeyStatus(row, now),
        tier: row.tier,
        expiresAt: new Date(row.expiresAt),
        lastUsedAt: row.lastUsedAt === null ? null : new Date(row.lastUsedAt),
        start: row.start,
      }),
    )
  } finally {
    await store.close()
  }
}

/** Opens the manager on a database: one KMS call, to unwrap the pepper. */
async function managerAt(location: DatabaseLocation, values: Record<string, unknown>, io: CliIO) {
  const keyManager = new KeyManager({
    ...kmsFromEnv(io.env).keyManagerOptions,
    ...contextPrefixOf(values as { 'context-prefix'?: string }, io),
  })
  const store = storeAt(location)
  const manager = new ApiKeyManager({ store, keyManager })
  await manager.initialize()
  return {
    manager,
    close: async () => {
      await manager.close()
      // The manager closes only a store it made itself.
      await store.close()
      keyManager.dispose()
    },
  }
}

async function run(
  action: string,
  id: string | undefined,
  values: Record<string, unknown>,
  target: Target,
  io: CliIO,
) {
  const json = values.json === true
  // The command line is checked whole before any KMS call or request.
  const needId = () => {
    if (id === undefined || id === '') throw new UsageError(`keys ${action} needs a key id`)
    return id
  }
  const createInput = () => {
    const name = values.name as string | undefined
    if (name === undefined) throw new UsageError('keys create needs --name')
    const days = integer('--expires-in-days', values['expires-in-days'] as string | undefined)
    return {
      name,
      ...(values.region === undefined ? {} : { region: values.region as string }),
      ...(values.tier === undefined ? {} : { tier: values.tier as string }),
      ...(values.permission === undefined ? {} : { permissions: values.permission as string[] }),
      ...(days === undefined ? {} : { expiresInDays: days }),
    }
  }
  const input = action === 'create' ? createInput() : undefined
  const keyId = action === 'rotate' || action === 'revoke' ? needId() : ''
  const grace = integer('--grace-minutes', values['grace-minutes'] as string | undefined)
  const reason = (values.reason as string | undefined) ?? 'revoked with the CLI'

  if (target.kind === 'api') {
    const base = '/admin/api-keys'
    switch (action) {
      case 'create':
        return shown(
          io,
          await adminCall<KeyRow & { key: string }>(target, 'POST', base, input),
          json,
        )
      case 'list': {
        const q = values['include-revoked'] === true ? '' : '?includeRevoked=false'
        return printRows(
          io,
          (await adminCall<{ keys: KeyRow[] }>(target, 'GET', `${base}${q}`)).keys,
          json,
        )
      }
      case 'rotate':
        return shown(
          io,
          await adminCall<KeyRow & { key: string }>(
            target,
            'POST',
            `${base}/${encodeURIComponent(keyId)}/rotate`,
            {
              ...(grace === undefined ? {} : { graceMinutes: grace }),
            },
          ),
          json,
        )
      default:
        return printRows(
          io,
          [
            await adminCall<KeyRow>(target, 'DELETE', `${base}/${encodeURIComponent(keyId)}`, {
              reason,
            }),
          ],
          json,
        )
    }
  }
  if (action === 'list')
    return printRows(
      io,
      await listAt(target.location, values['include-revoked'] === true, systemClock()),
      json,
    )
  const { manager, close } = await managerAt(target.location, values, io)
  try {
    switch (action) {
      case 'create': {
        const created = await manager.create(input!, { actor: 'cli' })
        return shown(io, { key: created.key, ...created.record }, json)
      }
      case 'rotate': {
        const rotated = await manager.rotate(
          keyId,
          grace === undefined ? {} : { graceMinutes: grace },
          {
            actor: 'cli',
          },
        )
        return shown(io, { key: rotated.key, ...rotated.record }, json)
      }
      default:
        return printRows(io, [await manager.revoke(keyId, reason, { actor: 'cli' })], json)
    }
  } finally {
    await close()
  }
}

/** A new key: printed once, with a warning on stderr that it cannot be shown again. */
function shown(io: CliIO, created: KeyRow & { key: string }, json: boolean): void {
  if (json) {
    io.stdout(`${JSON.stringify(created, null, 2)}\n`)
    return
  }
  io.stdout(`${created.key}\n`)
  io.stderr(`key id ${created.keyId} (${created.name}): store the key now, it is not shown again\n`)
}

export const keysCommand: Command = {
  name: 'keys',
  help: HELP,
  async run(args: readonly string[], io: CliIO): Promise<ExitCode> {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: OPTIONS,
      allowPositionals: true,
    })
    const [action, id] = positionals
    if (action === undefined || !['create', 'list', 'rotate', 'revoke'].includes(action)) {
      throw new UsageError('expected "keys create|list|rotate|revoke"')
    }
    await run(action, id, values, targetOf(values, io), io)
    return EXIT.OK
  },
}
