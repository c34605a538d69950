/**
 * Capabilities meet only through public entries or `src/internal/`
 * (ARCHITECTURE.md, "Folders and entry points"): a file of one capability
 * may import another capability's `index.ts` or a subpath published in
 * package.json `exports`, never one of its private files.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import {
  findBoundaryViolations,
  isBoundaryViolation,
  moduleSpecifiers,
  publishedEntries,
  resolveSpecifier,
} from './boundaries.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const SRC = join(ROOT, 'src')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>
}
const ENTRIES = publishedEntries(pkg.exports)

/**
 * Private imports still crossing a boundary, each waiting on a design
 * decision (publish an integration API, or move the machinery into
 * `src/internal/`, or hand it over through a seam there, as
 * `internal/graphql-enforcement.ts` does). The list can only shrink: an entry
 * that no longer matches an import fails the test, so it cannot go stale.
 * Empty: no private file is imported across a boundary.
 */
const KNOWN_CROSSINGS: Readonly<Record<string, string>> = {}

describe('capability boundaries in src/', () => {
  it('no capability imports a private file of another, besides the listed crossings', () => {
    const found = findBoundaryViolations(SRC, ENTRIES)
    const unexpected = found
      .filter((v) => !Object.hasOwn(KNOWN_CROSSINGS, `${v.file} -> ${v.target}`))
      .map((v) => `${v.file} imports '${v.specifier}' (${v.target})`)
    expect(unexpected).toEqual([])
    const stale = Object.keys(KNOWN_CROSSINGS).filter(
      (crossing) => !found.some((v) => `${v.file} -> ${v.target}` === crossing),
    )
    expect(stale).toEqual([])
  })

  it('the entries are each index.ts and every subpath package.json publishes', () => {
    expect([...ENTRIES].sort()).toEqual([
      'api-keys/index.ts',
      'graphql/index.ts',
      'http/index.ts',
      'http/testing/index.ts',
      'index.ts',
      'kms/index.ts',
      'kms/testing/index.ts',
      'profiles/index.ts',
      'sbom/index.ts',
    ])
  })
})

describe('the boundary scanner', () => {
  it('reads static, type-only, re-export, multi-line and dynamic imports', () => {
    const source = `
import { a } from './a.js'
import type { B } from '../b/b.js'
import {
  c,
  type D,
} from '../c/c.js'
export { e } from './e.js'
export type { F } from './f.js'
import './side-effect.js'
const g = await import(
  '../g/g.js'
)
type H = import('../h/h.js').H
import fs from 'node:fs'
const notAnImport = "from '../x/x.js'"
`
    expect(moduleSpecifiers('x.ts', source)).toEqual([
      './a.js',
      '../b/b.js',
      '../c/c.js',
      './e.js',
      './f.js',
      './side-effect.js',
      '../g/g.js',
      '../h/h.js',
      'node:fs',
    ])
  })

  it('resolves .js specifiers to the .ts source, and ignores packages and files outside', () => {
    expect(resolveSpecifier('/r/src', 'profiles/steps/x.ts', '../../http/paths.js')).toBe(
      'http/paths.ts',
    )
    expect(resolveSpecifier('/r/src', 'cli/main.ts', '../sbom/index.js')).toBe('sbom/index.ts')
    expect(resolveSpecifier('/r/src', 'sbom/tool.ts', '../../package.json')).toBeUndefined()
    expect(resolveSpecifier('/r/src', 'http/index.ts', 'fastify')).toBeUndefined()
  })

  it.each([
    ['profiles/enforcer.ts', 'http/paths.ts', true],
    ['api-keys/manager.ts', 'kms/models.ts', true],
    ['cli/commands/sbom.ts', 'sbom/generator.ts', true],
    ['internal/x.ts', 'graphql/options.ts', true],
    ['profiles/enforcer.ts', 'http/index.ts', false],
    ['kms/key-manager/key-manager.ts', 'kms/models.ts', false],
    ['http/index.ts', 'internal/path-matcher.ts', false],
    ['api-keys/fastify.ts', 'errors.ts', false],
    ['examples.ts', 'kms/testing/index.ts', false],
    ['cli/main.ts', 'kms/testing/aws-emulator.ts', true],
  ])('%s -> %s is a violation: %s', (from, to, expected) => {
    expect(isBoundaryViolation(from, to, ENTRIES)).toBe(expected)
  })

  let fixture: string | undefined
  afterEach(() => {
    if (fixture !== undefined) rmSync(fixture, { recursive: true, force: true })
    fixture = undefined
  })

  it('names the file and the import of a bad import in a source tree', () => {
    fixture = mkdtempSync(join(tmpdir(), 'fsl-boundaries-'))
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(fixture!, path)), { recursive: true })
      writeFileSync(join(fixture!, path), text)
    }
    write('http/index.ts', "export { limiter } from './limiter.js'\n")
    write('http/limiter.ts', 'export const limiter = 1\n')
    write('internal/clock.ts', 'export const now = () => 0\n')
    write(
      'profiles/good.ts',
      "import { limiter } from '../http/index.js'\nimport { now } from '../internal/clock.js'\n",
    )
    write('profiles/bad.ts', "import {\n  limiter,\n} from '../http/limiter.js'\n")
    write('profiles/lazy.ts', "export const load = () => import('../http/limiter.js')\n")
    expect(findBoundaryViolations(fixture, new Set())).toEqual([
      { file: 'profiles/bad.ts', specifier: '../http/limiter.js', target: 'http/limiter.ts' },
      { file: 'profiles/lazy.ts', specifier: '../http/limiter.js', target: 'http/limiter.ts' },
    ])
  })
})
