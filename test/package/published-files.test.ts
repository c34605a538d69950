/**
 * What someone who installed from the registry gets: source maps they can
 * read (sources inlined, since src/ is not shipped), package metadata that
 * points somewhere, and README links that resolve outside this repository.
 * Needs `npm run build` first.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as Record<string, unknown>

async function packedFiles(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json'], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  })
  const [report] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>
  return report!.files.map((f) => f.path)
}

describe('published package', () => {
  it('every shipped source map carries sourcesContent, and no map points at unshipped src/', async () => {
    const files = await packedFiles()
    const maps = files.filter((f) => f.endsWith('.map'))
    expect(maps.length).toBeGreaterThan(0)
    for (const f of maps) {
      // A declaration map can only point at src/*.ts, which is not in the tarball.
      expect(f.endsWith('.d.ts.map'), `${f} is a declaration map`).toBe(false)
      const map = JSON.parse(readFileSync(`${root}${f}`, 'utf8')) as {
        sources: string[]
        sourcesContent?: Array<string | null>
      }
      expect(map.sourcesContent?.length, f).toBe(map.sources.length)
      expect(
        map.sourcesContent!.every((s) => typeof s === 'string' && s.length > 0),
        f,
      ).toBe(true)
    }
    expect(files.some((f) => f.startsWith('src/'))).toBe(false)
  })

  it('package.json names the repository, homepage and issue tracker', () => {
    expect(pkg.repository).toMatchObject({
      type: 'git',
      url: expect.stringMatching(/^git\+https:\/\//),
    })
    expect(pkg.homepage).toMatch(/^https:\/\//)
    expect(pkg.bugs).toMatchObject({ url: expect.stringMatching(/^https:\/\//) })
  })

  it('README links are absolute unless they point into the tarball', async () => {
    const files = new Set(await packedFiles())
    const readme = readFileSync(`${root}README.md`, 'utf8')
    const relative = [...readme.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)]
      .map((m) => m[1]!)
      .filter((href) => !/^[a-z]+:/.test(href))
      .filter((href) => !files.has(href.replace(/^\.\//, '')))
    expect(relative).toEqual([])
  })

  it('README states the module format and opens with the install line and the contributor commands', () => {
    const head = readFileSync(`${root}README.md`, 'utf8').split('\n').slice(0, 20).join('\n')
    expect(head).toContain('npm install fraiseql-security')
    expect(head).toContain('npm install && npm start')
    expect(head).toContain('npm test')
    expect(head).toMatch(/ESM only/)
    expect(head).toMatch(/require\(esm\)/)
  })
})
