/**
 * The published surface: every subpath in package.json resolves to built
 * files, every subpath the README documents is exported, and the root entry
 * exports only the error base and shared types.
 */
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const root = new URL('../../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>
}

describe('package exports', () => {
  const subpaths = Object.entries(pkg.exports).filter(([k]) => k !== './package.json')

  it.each(subpaths)(
    '%s lists types first, then default, and both files exist after the build',
    (_, target) => {
      expect(typeof target).toBe('object')
      const t = target as { types: string; default: string }
      expect(Object.keys(t)).toEqual(['types', 'default'])
      expect(existsSync(new URL(t.types, root))).toBe(true)
      expect(existsSync(new URL(t.default, root))).toBe(true)
    },
  )

  it('every subpath the README documents is exported and importable by name', async () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8')
    const documented = [...readme.matchAll(/`(fraiseql-security(?:\/[a-z-]+)*)`/g)].map(
      (m) => m[1]!,
    )
    expect(documented.length).toBeGreaterThan(0)
    for (const name of new Set(documented)) {
      const subpath =
        name === 'fraiseql-security' ? '.' : `.${name.slice('fraiseql-security'.length)}`
      expect(pkg.exports, `${name} is documented but not exported`).toHaveProperty([subpath])
      const mod = await import(name)
      expect(Object.keys(mod).length).toBeGreaterThan(0)
    }
  })

  it('the root entry exports the error base class and nothing from the capabilities', async () => {
    const mod = await import('fraiseql-security')
    expect(Object.keys(mod).sort()).toEqual([
      'ConfigError',
      'SECURITY_ERROR_CODES',
      'SeamError',
      'SecurityError',
    ])
  })
})
