/**
 * `fraiseql-security profile show <name>`: a preset's resolved settings as a
 * table (or JSON), and what enforces each one.
 */
import { parseArgs } from 'node:util'
import { PROFILES, ProfileEnforcer, type SecurityProfile } from '../../profiles/index.js'
import { type CliIO, type Command, EXIT, type ExitCode, UsageError } from '../command.js'
import { formatTable } from '../table.js'

const HELP = `Usage: fraiseql-security profile show <standard|regulated|restricted> [--json]

Prints every setting of a security profile preset, resolved, with the step
of ProfileEnforcer.applyTo() that enforces it.

Options:
      --json      Print the profile as JSON
  -h, --help      Show this help

Exit codes: 0 printed, 2 the command line is wrong (unknown profile).
`

function displayValue(value: SecurityProfile[keyof SecurityProfile]): string {
  if (typeof value === 'object') return `${value.max} / ${value.windowMs / 1000}s`
  return String(value)
}

export const profileCommand: Command = {
  name: 'profile',
  help: HELP,
  async run(args: readonly string[], io: CliIO): Promise<ExitCode> {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: { json: { type: 'boolean', default: false } },
      allowPositionals: true,
    })
    const [action, name] = positionals
    if (action !== 'show') throw new UsageError('expected "profile show <name>"')
    const key = (name ?? '').toUpperCase() as keyof typeof PROFILES
    const profile = PROFILES[key]
    if (profile === undefined) {
      throw new UsageError(
        `unknown profile "${name ?? ''}": one of ${Object.keys(PROFILES).join(', ').toLowerCase()}`,
      )
    }
    if (values.json === true) {
      io.stdout(`${JSON.stringify(profile, null, 2)}\n`)
      return EXIT.OK
    }
    const stack = new ProfileEnforcer(profile).getMiddlewareStack()
    const enforcer = (setting: string) =>
      stack
        .filter((s) => s.enforces.includes(setting))
        .map((s) => `${s.name} (${s.phase})`)
        .join(', ')
    const rows = Object.entries(profile)
      .filter(([k]) => k !== 'name')
      .map(([k, v]) => [k, displayValue(v as SecurityProfile[keyof SecurityProfile]), enforcer(k)])
    io.stdout(`${profile.name}\n\n${formatTable(['setting', 'value', 'enforced by'], rows)}`)
    return EXIT.OK
  },
}
