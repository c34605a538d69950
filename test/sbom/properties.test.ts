/**
 * Properties over generated input: integrity strings decode to the digest
 * bytes, license classification agrees with the SPDX grammar and round-trips,
 * purls round-trip through packageurl-js, and any well-formed lockfile gives
 * an SBOM whose components are unique, whose graph is closed, whose every
 * integrity is a hash, and whose CycloneDX JSON is schema-valid and
 * reproducible.
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { PackageURL } from 'packageurl-js'
import validateExpression from 'spdx-expression-validate'
import { afterAll, describe, expect, it } from 'vitest'
import { License, SBOMGenerator, toCycloneDX } from '../../src/sbom/index.js'
import { integrityToHashes, npmPurl } from '../../src/sbom/npm.js'
import { cycloneDxJsonErrors, removeTempDirs, tempDir } from './helpers.js'

afterAll(removeTempDirs)

const DIGEST = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 } as const
const CDX_NAME = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' } as const
type Alg = keyof typeof DIGEST

describe('integrityToHashes', () => {
  it('decodes every SRI token to the hex of its digest bytes, first of each algorithm kept', () => {
    const token = fc
      .constantFrom<Alg>('sha1', 'sha256', 'sha384', 'sha512')
      .chain((alg) =>
        fc
          .uint8Array({ minLength: DIGEST[alg], maxLength: DIGEST[alg] })
          .map((bytes) => ({ alg, bytes })),
      )
    fc.assert(
      fc.property(fc.array(token, { minLength: 1, maxLength: 4 }), (tokens) => {
        const sri = tokens
          .map((t) => `${t.alg}-${Buffer.from(t.bytes).toString('base64')}`)
          .join(' ')
        const seen = new Set<Alg>()
        const expected = tokens.filter((t) => !seen.has(t.alg) && seen.add(t.alg))
        expect(integrityToHashes(sri)).toEqual(
          expected.map((t) => ({
            algorithm: CDX_NAME[t.alg],
            value: Buffer.from(t.bytes).toString('hex'),
          })),
        )
      }),
    )
  })

  it('never throws, and never reports a digest of the wrong length', () => {
    fc.assert(
      fc.property(fc.string(), (junk) => {
        for (const h of integrityToHashes(junk)) {
          expect(h.value.length / 2).toBe(DIGEST[h.algorithm.replace('-', '').toLowerCase() as Alg])
        }
      }),
    )
  })
})

const SPDX_IDS = [
  'MIT',
  'Apache-2.0',
  'ISC',
  'BSD-3-Clause',
  'GPL-3.0-only',
  'GPL-2.0-or-later',
  '0BSD',
  'MPL-2.0',
]
const { expr } = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(...SPDX_IDS),
    fc.constantFrom('LicenseRef-Custom', 'Apache-2.0 WITH LLVM-exception', 'LGPL-2.1+'),
    fc
      .tuple(tie('expr'), fc.constantFrom('AND', 'OR'), tie('expr'))
      .map(([a, op, b]) => `(${a} ${op} ${b})`),
  ),
}))

describe('License.fromString', () => {
  it('classifies any SPDX expression as an id or an expression, and round-trips it', () => {
    fc.assert(
      fc.property(expr, (text) => {
        const license = License.fromString(text)
        expect(license.kind).toBe(SPDX_IDS.includes(text) ? 'spdx' : 'expression')
        expect(license.toString()).toBe(text)
        expect(validateExpression(license.spdxExpression!)).toBe(true)
        expect(License.fromString(license.toString()).toJSON()).toEqual(license.toJSON())
      }),
    )
  })

  it('calls anything the SPDX grammar rejects a named license, and never throws on non-blank text', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }).filter((s) => s.trim() !== ''),
        (text) => {
          const license = License.fromString(text)
          expect(license.kind === 'named').toBe(!validateExpression(text.trim()))
        },
      ),
    )
  })
})

const segment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/)
const npmName = fc.oneof(
  segment,
  fc.tuple(segment, segment).map(([s, n]) => `@${s}/${n}`),
)
const version = fc
  .tuple(
    fc.nat(99),
    fc.nat(99),
    fc.nat(99),
    fc.option(fc.stringMatching(/^[a-z][a-z0-9.]{0,8}$/), { nil: undefined }),
  )
  .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre === undefined ? '' : `-${pre}`}`)

describe('npmPurl', () => {
  it('round-trips name and version through packageurl-js', () => {
    fc.assert(
      fc.property(npmName, version, (name, v) => {
        const purl = PackageURL.fromString(npmPurl(name, v))
        expect(purl.type).toBe('npm')
        expect(purl.namespace === undefined ? purl.name : `${purl.namespace}/${purl.name}`).toBe(
          name,
        )
        expect(purl.version).toBe(v)
      }),
    )
  })
})

/** A random lockfile: top-level packages, some nested copies, random edges and flags. */
const lockfileArb = fc
  .record({
    count: fc.integer({ min: 1, max: 12 }),
    seed: fc.array(
      fc.record({
        version: version,
        dev: fc.boolean(),
        optional: fc.boolean(),
        hashed: fc.boolean(),
        deps: fc.uniqueArray(fc.nat(11), { maxLength: 4 }),
        nested: fc.option(fc.record({ dep: fc.nat(11), version }), { nil: undefined }),
      }),
      { minLength: 12, maxLength: 12 },
    ),
    rootDeps: fc.uniqueArray(fc.nat(11), { maxLength: 6 }),
  })
  .map(({ count, seed, rootDeps }) => {
    const name = (i: number) => (i % 3 === 0 ? `@s/p${i % count}` : `p${i % count}`)
    const packages: Record<string, Record<string, unknown>> = {
      '': {
        name: 'root',
        version: '1.0.0',
        dependencies: Object.fromEntries(rootDeps.map((i) => [name(i), '*'])),
      },
    }
    for (let i = 0; i < count; i++) {
      const s = seed[i]!
      const entry: Record<string, unknown> = {
        version: s.version,
        dependencies: Object.fromEntries(s.deps.map((d) => [name(d), '*'])),
      }
      if (s.dev) entry.dev = true
      else if (s.optional) entry.optional = true
      if (s.hashed)
        entry.integrity = `sha512-${createHash('sha512')
          .update(`${name(i)}@${s.version}`)
          .digest('base64')}`
      packages[`node_modules/${name(i)}`] = entry
      if (s.nested !== undefined && name(s.nested.dep) !== name(i)) {
        packages[`node_modules/${name(i)}/node_modules/${name(s.nested.dep)}`] = {
          version: s.nested.version,
          integrity: `sha512-${createHash('sha512')
            .update(`${name(s.nested.dep)}@${s.nested.version}`)
            .digest('base64')}`,
          ...(s.dev ? { dev: true } : {}),
        }
      }
    }
    return { lockfileVersion: 3, name: 'root', version: '1.0.0', packages }
  })

function writeLock(lock: unknown): string {
  const dir = tempDir('fsl-sbom-prop-')
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock))
  return dir
}

describe('SBOMGenerator over generated lockfiles', () => {
  it('components unique by purl, one per distinct name@version, graph closed, every integrity a hash', async () => {
    await fc.assert(
      fc.asyncProperty(lockfileArb, fc.boolean(), async (lock, includeDev) => {
        const sbom = await new SBOMGenerator({ includeDev, sourceDateEpoch: 0 }).generate(
          writeLock(lock),
        )
        const purls = sbom.components.map((c) => c.purl)
        expect(new Set(purls).size).toBe(purls.length)
        const kept = Object.entries(lock.packages).filter(
          ([k, v]) => k !== '' && (includeDev || v.dev !== true),
        )
        const distinct = new Set(
          kept.map(
            ([k, v]) => `${k.slice(k.lastIndexOf('node_modules/') + 13)}@${String(v.version)}`,
          ),
        )
        expect(sbom.components.length).toBe(distinct.size)
        const refs = new Set(purls)
        for (const c of [sbom.metadata.component, ...sbom.components]) {
          for (const d of c.dependsOn) expect(refs.has(d)).toBe(true)
        }
        for (const [k, v] of kept) {
          if (v.integrity === undefined) continue
          const name = k.slice(k.lastIndexOf('node_modules/') + 13)
          const c = sbom.components.find((x) => x.name === name && x.version === v.version)!
          expect(c.hashes.length).toBeGreaterThan(0)
        }
      }),
      { numRuns: 60 },
    )
  })

  it('CycloneDX JSON of any such lockfile is schema-valid and byte-identical across runs', async () => {
    await fc.assert(
      fc.asyncProperty(lockfileArb, async (lock) => {
        const dir = writeLock(lock)
        const render = async () =>
          toCycloneDX(
            await new SBOMGenerator({ includeDev: true, sourceDateEpoch: 1 }).generate(dir),
          )
        const a = await render()
        expect(await render()).toBe(a)
        expect(await cycloneDxJsonErrors(a)).toBeNull()
      }),
      { numRuns: 25 },
    )
  })
})
