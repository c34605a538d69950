/**
 * `fraiseql-security profile show <module>`: the profile a module exports
 * (made with defineProfile), as its default export or as `profile`, printed
 * as the same table as a preset's. Run as users run it, in a child process.
 */
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cli } from './run.js'

const root = resolve(import.meta.dirname, '../..')

function bin(...args: string[]) {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', join('src/cli/index.ts'), 'profile', 'show', ...args],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  )
  return { code: run.status, stdout: run.stdout, stderr: run.stderr }
}

function join(...parts: string[]): string {
  return resolve(root, ...parts)
}

/** The table without its title line: the same rows, whatever the profile's name. */
function rows(table: string): string {
  return table.split('\n').slice(1).join('\n')
}

describe('profile show <module>', () => {
  it('a named export `profile`: the same table as for a preset, with its overrides', async () => {
    const r = bin('./test/cli/fixtures/internal-profile.ts')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^INTERNAL$/m)
    expect(r.stdout).toMatch(/^maxQueryDepth\s+12\s+graphqlGuards/m)
    expect(r.stdout).toMatch(/^tlsRequired\s+true\s+tlsGate \(onRequest\)$/m)
    // Everything else is REGULATED's, row for row.
    const regulated = await cli(['profile', 'show', 'regulated'])
    const differing = rows(r.stdout)
      .split('\n')
      .filter((line) => !rows(regulated.stdout).split('\n').includes(line))
    expect(differing.map((l) => l.split(/\s+/)[0])).toEqual(['maxQueryDepth'])
  })

  it('a default export, by absolute path, and --json', () => {
    const r = bin(join('test/cli/fixtures/default-profile.ts'), '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'PARTNER', maxAliases: 5 })
  })

  it('an export that is not a valid profile: one line, exit 1, no stack trace', () => {
    const r = bin('./test/cli/fixtures/not-a-profile.mjs')
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    const lines = r.stderr.trimEnd().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^fraiseql-security profile: \.\/test\/cli\/fixtures\/not-a-profile\.mjs does not export a valid profile/,
    )
    expect(r.stderr).not.toMatch(/\s+at /)
  })

  it('a module that does not exist: one line, exit 1', () => {
    const r = bin('./test/cli/fixtures/missing.js')
    expect(r.code).toBe(1)
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/cannot load \.\/test\/cli\/fixtures\/missing\.js/)
  })

  it('a module exporting no profile names the two forms it accepts', () => {
    const r = bin('./test/cli/fixtures/../run.ts')
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/exports no profile: export it as the default export or as `profile`/)
  })
})
