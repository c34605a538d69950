/**
 * Cross-check against npm's own `npm sbom` (npm 10 and later) reading the
 * same lockfile (`--package-lock-only`, `--offline`): the same components
 * (name and version), the same SHA-512 digests and the same dependency
 * edges, for this repository's lockfile and for every fixture npm can read.
 * Only where `npm sbom` is available; the generator itself never runs npm.
 */
import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { type SBOM, SBOMGenerator, toSPDX } from '../../src/sbom/index.js'
import { fixture, REPO_ROOT } from './helpers.js'

const npmSbomAvailable =
  spawnSync('npm', ['sbom', '--help'], { stdio: 'ignore', timeout: 30_000 }).status === 0

interface NpmCdx {
  components: {
    'bom-ref': string
    name: string
    version: string
    hashes?: { alg: string; content: string }[]
  }[]
  dependencies: { ref: string; dependsOn?: string[] }[]
}

async function npmSbom(cwd: string, format: 'cyclonedx' | 'spdx'): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    'npm',
    ['sbom', '--sbom-format', format, '--package-lock-only', '--offline'],
    { cwd, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
  )
  return JSON.parse(stdout)
}

const key = (c: { name: string; version: string }) => `${c.name}@${c.version}`

/** Every edge as `from -> to` in name@version terms. */
function ourEdges(sbom: SBOM): string[] {
  const all = [sbom.metadata.component, ...sbom.components]
  const idOf = new Map(all.map((c) => [c.bomRef, key(c)]))
  return all.flatMap((c) => c.dependsOn.map((d) => `${key(c)} -> ${idOf.get(d)}`)).sort()
}

function npmEdges(doc: NpmCdx): string[] {
  return doc.dependencies
    .flatMap((d) => (d.dependsOn ?? []).map((to) => `${d.ref} -> ${to}`))
    .sort()
}

async function compareWithNpm(dir: string): Promise<void> {
  const ours = await new SBOMGenerator({ includeDev: true, readInstalled: false }).generate(dir)
  const theirs = (await npmSbom(dir, 'cyclonedx')) as NpmCdx

  // npm's `name` is the install name (an alias's, or a workspace folder's), its
  // bom-ref the real name@version: compare with the bom-ref.
  expect(ours.components.map(key).sort()).toEqual(theirs.components.map((c) => c['bom-ref']).sort())

  const theirSha512 = new Map(
    theirs.components.map((c) => [
      c['bom-ref'],
      c.hashes?.find((h) => h.alg === 'SHA-512')?.content,
    ]),
  )
  for (const c of ours.components) {
    expect(c.hashes.find((h) => h.algorithm === 'SHA-512')?.value, key(c)).toBe(
      theirSha512.get(key(c)),
    )
  }
  expect(ourEdges(ours)).toEqual(npmEdges(theirs))
}

describe.skipIf(!npmSbomAvailable)('against npm sbom (needs npm 10 or later on PATH)', () => {
  it('this repository’s lockfile: same components, SHA-512 digests and edges', {
    timeout: 120_000,
  }, async () => {
    await compareWithNpm(REPO_ROOT)
  })

  it('this repository’s lockfile in SPDX: the same packages', { timeout: 120_000 }, async () => {
    const ours = JSON.parse(
      toSPDX(
        await new SBOMGenerator({ includeDev: true, readInstalled: false }).generate(REPO_ROOT),
      ),
    ) as { packages: { name: string; versionInfo: string }[] }
    const theirs = (await npmSbom(REPO_ROOT, 'spdx')) as typeof ours
    const names = (doc: typeof ours) => doc.packages.map((p) => `${p.name}@${p.versionInfo}`).sort()
    expect(names(ours)).toEqual(names(theirs))
  })

  it.each(['small', 'v2', 'workspaces', 'aliases', 'bundled-optional', 'shrinkwrap'])(
    'the %s fixture: same components, SHA-512 digests and edges',
    { timeout: 60_000 },
    async (name) => {
      await compareWithNpm(fixture(name))
    },
  )
})
