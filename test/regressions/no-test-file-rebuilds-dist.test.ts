/**
 * Regression: test/package/types-without-fastify.test.ts ran `npm run build`
 * in its beforeAll. The build empties dist/ first (prebuild), so with two
 * files running at once, a file importing the built package could find it
 * half gone, and this one could copy a half-written dist/ (seen: tsc errors
 * on Node 24 in CI). The build happens once, before any file runs: npm
 * test's pretest, or test/helpers/global-setup.ts when dist/ is missing.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const TEST_ROOT = join(import.meta.dirname, '..')
const GLOBAL_SETUP = join(TEST_ROOT, 'helpers', 'global-setup.ts')
/** `npm run build` as a command line or as an argument list. */
const BUILD = /['"]npm run build['"]|\[\s*['"]run['"]\s*,\s*['"]build['"]/

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : files(path)
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : []
  })
}

describe('the build the suites share', () => {
  it('no test file runs the build; only the global set-up may', () => {
    const builders = files(TEST_ROOT)
      .filter((path) => path !== GLOBAL_SETUP && path !== import.meta.filename)
      .filter((path) => BUILD.test(readFileSync(path, 'utf8')))
      .map((path) => relative(TEST_ROOT, path))
    expect(builders).toEqual([])
  })

  it('the scanner sees both spellings of a build', () => {
    expect(BUILD.test("execFileSync('npm', ['run', 'build'], { cwd })")).toBe(true)
    expect(BUILD.test("execSync('npm run build')")).toBe(true)
    expect(BUILD.test("spawnSync('npm', ['sbom'])")).toBe(false)
  })
})
