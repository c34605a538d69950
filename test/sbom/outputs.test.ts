/**
 * Every output of every fixture is valid against its standard: CycloneDX 1.6
 * JSON against the official JSON schema (the library's strict validator),
 * CycloneDX 1.6 XML against the official XSD (xmllint, WebAssembly), SPDX
 * 2.3 JSON against our schema of the specification's required fields. And
 * the content survives the trip: the graph, hashes, licenses and scopes
 * read back from each document are the model's.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { type SBOM, SBOMGenerator, toCycloneDX, toSPDX } from '../../src/sbom/index.js'
import {
  cycloneDxJsonErrors,
  cycloneDxXmlErrors,
  materialize,
  PROJECT_FIXTURES,
  removeTempDirs,
  spdxErrors,
} from './helpers.js'

afterAll(removeTempDirs)

const EPOCH = 1_700_000_000

async function sbomOf(name: string, includeDev: boolean): Promise<SBOM> {
  return new SBOMGenerator({ includeDev, sourceDateEpoch: EPOCH }).generate(materialize(name))
}

interface CdxJson {
  serialNumber: string
  metadata: { timestamp: string; component: { 'bom-ref': string } }
  components: {
    'bom-ref': string
    name: string
    group?: string
    version?: string
    scope?: string
    purl: string
    hashes?: { alg: string; content: string }[]
    licenses?: ({ license: { id?: string; name?: string } } | { expression: string })[]
    properties?: { name: string; value: string }[]
  }[]
  dependencies: { ref: string; dependsOn?: string[] }[]
}

describe.each(PROJECT_FIXTURES)('outputs of the %s fixture', (name) => {
  describe.each([false, true])('includeDev %s', (includeDev) => {
    it('CycloneDX 1.6 JSON is valid against the official schema', async () => {
      const json = await toCycloneDX(await sbomOf(name, includeDev), 'json')
      expect(await cycloneDxJsonErrors(json)).toBeNull()
    })

    it('CycloneDX 1.6 XML is valid against the official XSD', async () => {
      const xml = await toCycloneDX(await sbomOf(name, includeDev), 'xml')
      expect(await cycloneDxXmlErrors(xml)).toEqual([])
    })

    it('SPDX 2.3 JSON is valid against the required-fields schema, ids resolve, expressions parse', async () => {
      expect(spdxErrors(toSPDX(await sbomOf(name, includeDev)))).toEqual([])
    })

    it('CycloneDX JSON carries every component, hash, license and edge of the model', async () => {
      const sbom = await sbomOf(name, includeDev)
      const doc = JSON.parse(await toCycloneDX(sbom)) as CdxJson
      expect(doc.components.map((c) => c.purl).sort()).toEqual(sbom.components.map((c) => c.purl))
      for (const c of sbom.components) {
        const out = doc.components.find((x) => x['bom-ref'] === c.bomRef)!
        expect(`${out.group === undefined ? '' : `${out.group}/`}${out.name}`).toBe(c.name)
        const hashes = (out.hashes ?? []).map((h) => `${h.alg}:${h.content}`).sort()
        expect(hashes).toEqual(c.hashes.map((h) => `${h.algorithm}:${h.value}`).sort())
        expect(out.scope).toBe(c.scope === 'dev' ? 'excluded' : c.scope)
        const dev = out.properties?.some((p) => p.name === 'cdx:npm:package:development')
        expect(dev === true).toBe(c.scope === 'dev')
        expect((out.licenses ?? []).length).toBe(c.licenses.length)
      }
      const edges = new Map(doc.dependencies.map((d) => [d.ref, [...(d.dependsOn ?? [])].sort()]))
      for (const d of sbom.dependencies) expect(edges.get(d.ref) ?? []).toEqual([...d.dependsOn])
    })

    it('SPDX JSON carries every package with its purl and checksums, and every edge as DEPENDS_ON', async () => {
      const sbom = await sbomOf(name, includeDev)
      const doc = JSON.parse(toSPDX(sbom)) as {
        packages: {
          SPDXID: string
          checksums?: { algorithm: string; checksumValue: string }[]
          externalRefs: { referenceLocator: string }[]
        }[]
        relationships: {
          spdxElementId: string
          relationshipType: string
          relatedSpdxElement: string
        }[]
      }
      const idOf = new Map(doc.packages.map((p) => [p.externalRefs[0]!.referenceLocator, p.SPDXID]))
      expect(doc.packages).toHaveLength(sbom.components.length + 1)
      for (const c of sbom.components) {
        const p = doc.packages.find((x) => x.SPDXID === idOf.get(c.purl))!
        expect(p.checksums ?? []).toEqual(
          c.hashes.map((h) => ({
            algorithm: h.algorithm.replace('-', ''),
            checksumValue: h.value,
          })),
        )
      }
      const dependsOn = doc.relationships
        .filter((r) => r.relationshipType === 'DEPENDS_ON')
        .map((r) => `${r.spdxElementId} ${r.relatedSpdxElement}`)
        .sort()
      const expected = sbom.dependencies
        .flatMap((d) => d.dependsOn.map((to) => `${idOf.get(d.ref)} ${idOf.get(to)}`))
        .sort()
      expect(dependsOn).toEqual(expected)
      expect(doc.relationships[0]).toEqual({
        spdxElementId: 'SPDXRef-DOCUMENT',
        relationshipType: 'DESCRIBES',
        relatedSpdxElement: idOf.get(sbom.metadata.component.purl),
      })
    })
  })
})

describe('license edge cases in each format', () => {
  it('named licenses become LicenseRef- with extracted text in SPDX, named licenses in CycloneDX', async () => {
    const sbom = await sbomOf('installed', false)
    const spdx = JSON.parse(toSPDX(sbom)) as {
      packages: { name: string; licenseDeclared: string }[]
      hasExtractedLicensingInfos: { licenseId: string; name: string }[]
    }
    expect(spdx.packages.find((p) => p.name === 'legacy-licenses')?.licenseDeclared).toBe(
      'LicenseRef-Public-Domain OR MIT',
    )
    expect(spdx.hasExtractedLicensingInfos).toEqual([
      expect.objectContaining({ licenseId: 'LicenseRef-Public-Domain', name: 'Public Domain' }),
    ])
    const cdx = JSON.parse(await toCycloneDX(sbom)) as CdxJson
    expect(cdx.components.find((c) => c.name === 'legacy-licenses')?.licenses).toEqual([
      { license: { name: 'Public Domain', url: 'https://example.org/pd.txt' } },
      { license: { id: 'MIT', url: 'https://example.org/mit.txt' } },
    ])
    expect(spdx.packages.find((p) => p.name === 'not-installed')?.licenseDeclared).toBe(
      'NOASSERTION',
    )
  })

  it('the small fixture’s free-text license is a LicenseRef- and its expression is kept whole', async () => {
    const sbom = await sbomOf('small', false)
    const spdx = JSON.parse(toSPDX(sbom)) as {
      packages: { name: string; licenseDeclared: string }[]
    }
    const declared = Object.fromEntries(spdx.packages.map((p) => [p.name, p.licenseDeclared]))
    expect(declared['@acme/util']).toBe('(MIT OR Apache-2.0)')
    expect(declared['left-pad']).toBe('WTFPL')
    const cdx = JSON.parse(await toCycloneDX(sbom)) as CdxJson
    expect(cdx.components.find((c) => c.name === 'util')?.licenses).toEqual([
      { expression: '(MIT OR Apache-2.0)' },
    ])
  })
})

describe('output options', () => {
  it('SPDX as XML is a configuration error naming outputFormat', async () => {
    const sbom = await sbomOf('v2', false)
    await expect(
      new SBOMGenerator().serialize(sbom, { format: 'spdx', outputFormat: 'xml' }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringContaining('`outputFormat`'),
    })
  })

  it('serialize defaults to CycloneDX JSON', async () => {
    const sbom = await sbomOf('v2', false)
    const text = await new SBOMGenerator().serialize(sbom)
    expect(JSON.parse(text)).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6' })
    expect(text.endsWith('}\n')).toBe(true)
  })
})
