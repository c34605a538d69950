/**
 * What the generator reads from each fixture lockfile: the component set per
 * scope, de-duplication by purl, aliases, links and workspaces, bundled and
 * optional packages, hashes, licenses, and the dependency graph.
 */
import { createHash } from 'node:crypto'
import { PackageURL } from 'packageurl-js'
import { afterAll, describe, expect, it } from 'vitest'
import {
  ComponentScope,
  ComponentType,
  License,
  type SBOM,
  SBOMComponent,
  SBOMGenerator,
  SBOMMetadata,
} from '../../src/sbom/index.js'
import { fixture, materialize, removeTempDirs } from './helpers.js'

afterAll(removeTempDirs)

const FIXED_EPOCH = 1_700_000_000

function generate(name: string, options: ConstructorParameters<typeof SBOMGenerator>[0] = {}) {
  return new SBOMGenerator({ sourceDateEpoch: FIXED_EPOCH, ...options }).generate(fixture(name))
}

/** `name@version` of every component, sorted. */
function ids(sbom: SBOM): string[] {
  return sbom.components.map((c) => `${c.name}@${c.version}`).sort()
}

function byId(sbom: SBOM, id: string): SBOMComponent {
  const c = sbom.components.find((x) => `${x.name}@${x.version}` === id)
  if (c === undefined) throw new Error(`no component ${id}`)
  return c
}

/** The `name@version` of each ref in a dependsOn list. */
function depIds(sbom: SBOM, refs: readonly string[]): string[] {
  const all = [sbom.metadata.component, ...sbom.components]
  return refs.map((r) => {
    const c = all.find((x) => x.bomRef === r)
    return c === undefined ? `?${r}` : `${c.name}@${c.version}`
  })
}

function sri(id: string, alg: 'sha512' | 'sha1' = 'sha512'): string {
  return createHash(alg).update(id).digest('hex')
}

describe('SBOMGenerator on a small lockfile (v3)', () => {
  it('lists the production packages only by default, nested copies as their own component', async () => {
    const sbom = await generate('small')
    expect(ids(sbom)).toEqual([
      '@acme/core@1.4.0',
      '@acme/core@2.0.1',
      '@acme/util@2.1.0',
      'gitdep@0.0.1',
      'left-pad@1.3.0',
      'tarball-dep@0.1.0',
    ])
    expect(sbom.components.every((c) => c.scope === ComponentScope.Required)).toBe(true)
    expect(sbom.components.every((c) => c.type === ComponentType.Library)).toBe(true)
  })

  it('includes the dev-only packages with includeDev, scoped dev', async () => {
    const sbom = await generate('small', { includeDev: true })
    expect(ids(sbom)).toContain('tester@1.0.0')
    expect(byId(sbom, 'tester@1.0.0').scope).toBe('dev')
    // Shared by a production and a dev package: still required (lockfile flags, not reachability).
    expect(byId(sbom, '@acme/core@1.4.0').scope).toBe('required')
  })

  it('turns every integrity into hex hashes, both algorithms when the SRI string has two', async () => {
    const sbom = await generate('small')
    expect(byId(sbom, 'left-pad@1.3.0').hashes).toEqual([
      { algorithm: 'SHA-512', value: sri('left-pad@1.3.0') },
    ])
    expect(byId(sbom, '@acme/util@2.1.0').hashes).toEqual([
      { algorithm: 'SHA-512', value: sri('@acme/util@2.1.0') },
      { algorithm: 'SHA-1', value: sri('@acme/util@2.1.0', 'sha1') },
    ])
    // A git dependency has no integrity in a lockfile: no hash rather than a made-up one.
    expect(byId(sbom, 'gitdep@0.0.1').hashes).toEqual([])
  })

  it('builds purls with the scope encoded, and says where non-registry packages come from', async () => {
    const sbom = await generate('small')
    expect(byId(sbom, '@acme/util@2.1.0').purl).toBe('pkg:npm/%40acme/util@2.1.0')
    expect(byId(sbom, 'left-pad@1.3.0').purl).toBe('pkg:npm/left-pad@1.3.0')
    expect(byId(sbom, 'gitdep@0.0.1').purl).toMatch(/^pkg:npm\/gitdep@0\.0\.1\?vcs_url=git%2Bssh/)
    expect(PackageURL.fromString(byId(sbom, 'tarball-dep@0.1.0').purl).qualifiers).toEqual({
      download_url: 'https://downloads.example.org/tarball-dep-0.1.0.tgz',
    })
    for (const c of sbom.components) expect(c.bomRef).toBe(c.purl)
  })

  it('classifies licenses: SPDX id, SPDX expression, free text', async () => {
    const sbom = await generate('small')
    expect(byId(sbom, 'left-pad@1.3.0').licenses.map((l) => l.toJSON())).toEqual([{ id: 'WTFPL' }])
    expect(byId(sbom, '@acme/util@2.1.0').licenses.map((l) => l.toJSON())).toEqual([
      { expression: '(MIT OR Apache-2.0)' },
    ])
    expect(byId(sbom, '@acme/core@1.4.0').licenses.map((l) => l.toJSON())).toEqual([
      { name: 'SEE LICENSE IN LICENSE.md' },
    ])
  })

  it('keeps the dependency graph, resolving names the way Node does (nearest node_modules first)', async () => {
    const sbom = await generate('small', { includeDev: true })
    const root = sbom.metadata.component
    expect(depIds(sbom, root.dependsOn).sort()).toEqual([
      '@acme/util@2.1.0',
      'gitdep@0.0.1',
      'left-pad@1.3.0',
      'tarball-dep@0.1.0',
      'tester@1.0.0',
    ])
    expect(depIds(sbom, byId(sbom, '@acme/util@2.1.0').dependsOn)).toEqual(['@acme/core@2.0.1'])
    expect(depIds(sbom, byId(sbom, 'left-pad@1.3.0').dependsOn)).toEqual(['@acme/core@1.4.0'])
    expect(depIds(sbom, byId(sbom, 'tester@1.0.0').dependsOn)).toEqual(['@acme/core@1.4.0'])
  })

  it('drops the edges to dev packages with them', async () => {
    const sbom = await generate('small')
    const refs = new Set(sbom.components.map((c) => c.bomRef))
    for (const c of [sbom.metadata.component, ...sbom.components]) {
      for (const d of c.dependsOn) expect(refs.has(d)).toBe(true)
    }
  })

  it('describes the root from package.json: type, license, author, description', async () => {
    const sbom = await generate('small')
    const root = sbom.metadata.component
    expect(root).toBeInstanceOf(SBOMComponent)
    expect(root).toMatchObject({
      name: 'small-app',
      version: '1.2.3',
      type: 'application',
      purl: 'pkg:npm/small-app@1.2.3',
      author: 'Ada Lovelace <ada@example.org>',
      description: 'A small fixture project',
    })
    expect(root.licenses.map(String)).toEqual(['Apache-2.0'])
    expect(sbom.metadata).toBeInstanceOf(SBOMMetadata)
    expect(sbom.metadata.authors).toEqual([
      { name: 'Ada Lovelace', email: 'ada@example.org', url: 'https://example.org/ada' },
    ])
    expect(sbom.metadata.tools).toEqual([
      expect.objectContaining({
        name: 'fraiseql-security',
        purl: expect.stringMatching(/^pkg:npm\/fraiseql-security@/),
      }),
    ])
  })

  it('sorts components by purl, so the order never depends on the lockfile', async () => {
    const sbom = await generate('small', { includeDev: true })
    const purls = sbom.components.map((c) => c.purl)
    expect(purls).toEqual([...purls].sort())
  })
})

describe('SBOMGenerator on other lockfile shapes', () => {
  it('reads a v2 lockfile from its packages map (the legacy section is ignored)', async () => {
    const sbom = await generate('v2')
    expect(ids(sbom)).toEqual(['alpha@1.0.0', 'beta@2.0.0'])
    expect(depIds(sbom, byId(sbom, 'alpha@1.0.0').dependsOn)).toEqual(['beta@2.0.0'])
    expect(byId(sbom, 'beta@2.0.0').licenses.map(String)).toEqual(['BSD-3-Clause'])
  })

  it('follows workspace links: members are components, the root depends on each', async () => {
    const sbom = await generate('workspaces')
    expect(ids(sbom)).toEqual([
      '@mono/app@1.0.0',
      '@mono/lib@1.0.0',
      'shared@1.0.0',
      'shared@2.0.0',
    ])
    const root = sbom.metadata.component
    expect(depIds(sbom, root.dependsOn).sort()).toEqual(['@mono/app@1.0.0', '@mono/lib@1.0.0'])
    expect(depIds(sbom, byId(sbom, '@mono/app@1.0.0').dependsOn)).toEqual([
      '@mono/lib@1.0.0',
      'shared@1.0.0',
    ])
    // packages/lib/node_modules/shared is nearer to packages/lib than the root's copy.
    expect(depIds(sbom, byId(sbom, '@mono/lib@1.0.0').dependsOn)).toEqual(['shared@2.0.0'])
    expect(byId(sbom, '@mono/app@1.0.0').paths).toEqual(['packages/app'])
  })

  it('includes a workspace member’s dev dependencies with includeDev', async () => {
    const sbom = await generate('workspaces', { includeDev: true })
    expect(ids(sbom)).toEqual(expect.arrayContaining(['app-test-helper@1.0.0', 'lint-tool@1.0.0']))
    expect(depIds(sbom, byId(sbom, '@mono/app@1.0.0').dependsOn)).toContain('app-test-helper@1.0.0')
    expect(depIds(sbom, sbom.metadata.component.dependsOn)).toContain('lint-tool@1.0.0')
  })

  it('resolves npm: aliases to the real package and merges copies of one purl', async () => {
    const sbom = await generate('aliases')
    expect(ids(sbom)).toEqual(['lodash@4.17.21', 'string-width@4.2.3', 'string-width@5.1.2'])
    expect(byId(sbom, 'lodash@4.17.21').paths).toEqual([
      'node_modules/lodash',
      'node_modules/lodash-alias',
    ])
    expect(byId(sbom, 'string-width@4.2.3').purl).toBe('pkg:npm/string-width@4.2.3')
    expect(depIds(sbom, sbom.metadata.component.dependsOn).sort()).toEqual([
      'lodash@4.17.21',
      'string-width@4.2.3',
      'string-width@5.1.2',
    ])
  })

  it('marks bundled packages and scopes optional ones, platform binaries included', async () => {
    const sbom = await generate('bundled-optional')
    expect(ids(sbom)).toEqual([
      'bundler@1.0.0',
      'dev-opt@1.0.0',
      'inner@1.0.0',
      'native-x-darwin-arm64@1.0.0',
      'native-x-linux-x64@1.0.0',
      'native-x@1.0.0',
    ])
    const inner = byId(sbom, 'inner@1.0.0')
    expect(inner.bundled).toBe(true)
    expect(inner.hashes).toEqual([])
    expect(byId(sbom, 'bundler@1.0.0').bundled).toBe(false)
    expect(byId(sbom, 'native-x@1.0.0').scope).toBe('optional')
    expect(byId(sbom, 'native-x-linux-x64@1.0.0').scope).toBe('optional')
    // devOptional: a dev package, and an optional one of a production package.
    expect(byId(sbom, 'dev-opt@1.0.0').scope).toBe('optional')
    expect(depIds(sbom, byId(sbom, 'bundler@1.0.0').dependsOn)).toEqual([
      'dev-opt@1.0.0',
      'inner@1.0.0',
    ])
  })

  it('keeps devOptional packages optional with includeDev too, and scopes dev ones dev', async () => {
    const sbom = await generate('bundled-optional', { includeDev: true })
    expect(byId(sbom, 'dev-opt@1.0.0').scope).toBe('optional')
    expect(byId(sbom, 'devtool@1.0.0').scope).toBe('dev')
  })

  it('prefers npm-shrinkwrap.json to package-lock.json, as npm does', async () => {
    const sbom = await generate('shrinkwrap')
    expect(ids(sbom)).toEqual(['chosen@1.0.0'])
  })

  it('accepts the path of a lockfile as well as a directory', async () => {
    const sbom = await new SBOMGenerator().generate(fixture('shrinkwrap', 'package-lock.json'))
    expect(ids(sbom)).toEqual(['ignored@1.0.0'])
  })
})

describe('SBOMGenerator and installed packages', () => {
  it('takes licenses, authors, descriptions and links from installed package.json files', async () => {
    const sbom = await new SBOMGenerator().generate(materialize('installed'))
    const documented = byId(sbom, 'documented@1.0.0')
    expect(documented.licenses.map(String)).toEqual(['BSD-3-Clause'])
    expect(documented.author).toBe('Grace Hopper <grace@example.org>')
    expect(documented.description).toBe('Has every field')
    expect(documented.externalReferences).toEqual([
      { type: 'website', url: 'https://example.org/documented' },
      { type: 'vcs', url: 'git+https://example.org/documented.git' },
      { type: 'issue-tracker', url: 'https://example.org/documented/issues' },
    ])
    const legacy = byId(sbom, 'legacy-licenses@1.0.0')
    expect(legacy.licenses.map((l) => l.toJSON())).toEqual([
      { name: 'Public Domain', url: 'https://example.org/pd.txt' },
      { id: 'MIT', url: 'https://example.org/mit.txt' },
    ])
    expect(legacy.author).toBe('Alan Turing <alan@example.org>')
  })

  it('describes a package that is not installed, or whose package.json is broken, from the lockfile alone', async () => {
    const sbom = await new SBOMGenerator().generate(materialize('installed'))
    for (const id of ['not-installed@1.0.0', 'broken@1.0.0']) {
      const c = byId(sbom, id)
      expect(c.licenses).toEqual([])
      expect(c.author).toBeUndefined()
      expect(c.hashes).toHaveLength(1)
    }
  })

  it('reads nothing under node_modules with readInstalled: false', async () => {
    const sbom = await new SBOMGenerator({ readInstalled: false }).generate(
      materialize('installed'),
    )
    expect(byId(sbom, 'documented@1.0.0').licenses).toEqual([])
    expect(byId(sbom, 'documented@1.0.0').author).toBeUndefined()
  })
})

describe('SBOMGenerator metadata', () => {
  it('uses the supplier and authors given as options', async () => {
    const sbom = await generate('small', {
      supplier: { name: 'Example Org', url: ['https://example.org'] },
      authors: [{ name: 'Build Bot', email: 'bot@example.org' }],
    })
    expect(sbom.metadata.supplier).toEqual({ name: 'Example Org', url: ['https://example.org'] })
    expect(sbom.metadata.authors).toEqual([{ name: 'Build Bot', email: 'bot@example.org' }])
  })

  it('takes the root component type as an option', async () => {
    const sbom = await generate('small', { rootComponentType: ComponentType.Library })
    expect(sbom.metadata.component.type).toBe('library')
  })

  it('exposes the graph as one dependency list per component, the root first', async () => {
    const sbom = await generate('v2')
    expect(sbom.dependencies.map((d) => d.ref)).toEqual([
      'pkg:npm/v2-app@0.1.0',
      'pkg:npm/alpha@1.0.0',
      'pkg:npm/beta@2.0.0',
    ])
    expect(sbom.version).toBe(1)
  })
})

describe('License', () => {
  it('refuses an id or an expression that is not SPDX', () => {
    expect(() => new License({ id: 'Not-A-License' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
    expect(() => new License({ expression: 'MIT OR' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
    expect(() => new License({ name: ' ' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
  })

  it('treats LicenseRef- and WITH exceptions as expressions, not list ids', () => {
    expect(License.fromString('LicenseRef-Proprietary').kind).toBe('expression')
    expect(License.fromString('Apache-2.0 WITH LLVM-exception').kind).toBe('expression')
    expect(License.fromString('GPL-2.0+').kind).toBe('expression')
    expect(License.fromString('0BSD').kind).toBe('spdx')
  })
})
