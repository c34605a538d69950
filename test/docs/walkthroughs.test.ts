/**
 * The walkthroughs in docs/guides/ are run, not only type-checked: their
 * ```ts file=<name> blocks are written out as the files a newcomer would
 * create, and each `*.test.ts` among them runs under node:test against the
 * built package (`npm run build` first), importing it by its published name.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { extractSnippets } from '../../scripts/check-doc-snippets.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const guides = join(root, 'docs', 'guides')
// Inside the package, so `fraiseql-security/...` resolves through its own exports.
const out = join(root, '.walkthroughs')
const run = promisify(execFile)

afterAll(() => rmSync(out, { recursive: true, force: true }))

describe('docs/guides walkthroughs run as written', () => {
  for (const page of readdirSync(guides).filter((f) => f.endsWith('.md'))) {
    it(`${page}: its files pass their own test under node:test`, { timeout: 120_000 }, async () => {
      const snippets = extractSnippets(page, readFileSync(join(guides, page), 'utf8')).filter(
        (s) => s.file !== undefined,
      )
      const dir = join(out, page.replace(/\.md$/, ''))
      mkdirSync(dir, { recursive: true })
      for (const s of snippets) writeFileSync(join(dir, s.file!), s.code)
      const tests = snippets.filter((s) => s.file!.endsWith('.test.ts')).map((s) => s.file!)
      expect(tests.length).toBeGreaterThan(0)
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', '--test', '--test-reporter=tap', ...tests.map((t) => join(dir, t))],
        { cwd: root, timeout: 110_000 },
      )
      const pass = Number(/^# pass (\d+)/m.exec(stdout)?.[1] ?? 0)
      expect(/^# fail (\d+)/m.exec(stdout)?.[1]).toBe('0')
      expect(pass).toBeGreaterThanOrEqual(5)
    })
  }
})
