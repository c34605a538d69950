/**
 * `fraiseql-security profile show <name|module>`: a preset's (or a profile
 * module's) resolved settings as a table (or JSON), and what enforces each one.
 */
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError } from '../../errors.js'
import {
  PROFILES,
  ProfileEnforcer,
  parseProfile,
  type SecurityProfile,
} from '../../profiles/index.js'
import { type CliIO, type Command, EXIT, type ExitCode, UsageError } from '../command.js'
import { formatTable } from '../table.js'

const HELP = `Usage: fraiseql-security profile show <standard|regulated|restricted|module> [--json]

Prints every setting of a security profile, resolved, with the step of
ProfileEnforcer.applyTo() that enforces it: a preset by name, or the profile
a module exports (made with defineProfile), as its default export or as
\`profile\`. A module is a path: ./profiles/internal.js, /etc/app/profile.mjs.

Options:
      --json      Print the profile as JSON
  -h, --help      Show this help

Exit codes: 0 printed, 1 the module cannot be loaded or exports no valid
profile, 2 the command line is wrong (unknown profile).
`

/** The module form names a file: it has a path separator or an extension. */
function isModulePath(name: string): boolean {
  return /[\\/]/.test(name) || /\.[cm]?[jt]s$/.test(name)
}

/** A module's failure to give a profile: one line, exit code 1. */
class ProfileModuleError extends Error {
  override readonly name = 'ProfileModuleError'
}

async function profileFromModule(specifier: string, cwd: string): Promise<SecurityProfile> {
  const path = isAbsolute(specifier) ? specifier : resolve(cwd, specifier)
  let exports: Record<string, unknown>
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new ProfileModuleError(`cannot load ${specifier}: ${reason}`)
  }
  const value = exports.default ?? exports.profile
  if (value === undefined) {
    throw new ProfileModuleError(
      `${specifier} exports no profile: export it as the default export or as \`profile\` (made with defineProfile)`,
    )
  }
  try {
    return parseProfile(value)
  } catch (err) {
    const first = err instanceof ConfigError ? err.issues[0] : undefined
    const detail =
      first !== undefined
        ? `${first.field} ${first.problem}`
        : err instanceof Error
          ? err.message.split('\n')[0]
          : 'invalid'
    throw new ProfileModuleError(
      `${specifier} does not export a valid profile (use defineProfile): ${detail}`,
    )
  }
}

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
    if (action !== 'show') throw new UsageError('expected "profile show <name|module>"')
    const key = (name ?? '').toUpperCase() as keyof typeof PROFILES
    let profile: SecurityProfile | undefined = Object.hasOwn(PROFILES, key)
      ? PROFILES[key]
      : undefined
    if (profile === undefined && name !== undefined && isModulePath(name)) {
      profile = await profileFromModule(name, io.cwd)
    }
    if (profile === undefined) {
      throw new UsageError(
        `unknown profile "${name ?? ''}": one of ${Object.keys(PROFILES).join(', ').toLowerCase()}, or a module path (./my-profile.js)`,
      )
    }
    if (values.json === true) {
      io.stdout(`${JSON.stringify(profile, null, 2)}\n`)
      return EXIT.OK
    }
    // Only the stack is read: the options a profile needs at run time (a
    // manifest for persistedOperationsOnly, a development environment for
    // errorDetail 'full') are given so that any valid profile can be shown.
    const stack = new ProfileEnforcer(profile, {
      environment: 'development',
      ...(profile.persistedOperationsOnly ? { persistedOperations: {} } : {}),
    }).getMiddlewareStack()
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
