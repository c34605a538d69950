/**
 * SPDX 2.3 JSON (SPDX specification v2.3: §6 document creation information,
 * §7 packages, §10 other licensing information, §11 relationships). Every
 * package carries its purl as a PACKAGE-MANAGER external reference, its
 * tarball digests as checksums, and every dependency edge is a DEPENDS_ON
 * relationship.
 */
import { createHash } from 'node:crypto'
import { idstring, spdxExpression } from './licenses.js'
import type { ComponentType, HashAlgorithm, SBOM, SBOMComponent } from './models.js'
import { personFrom } from './npm.js'

const CHECKSUM_ALGORITHMS: Readonly<Record<HashAlgorithm, string>> = {
  'SHA-1': 'SHA1',
  'SHA-256': 'SHA256',
  'SHA-384': 'SHA384',
  'SHA-512': 'SHA512',
}

/** §7.24 primary package purpose, from the CycloneDX component type. */
const PURPOSES: Partial<Record<ComponentType, string>> = {
  application: 'APPLICATION',
  framework: 'FRAMEWORK',
  library: 'LIBRARY',
  container: 'CONTAINER',
  'operating-system': 'OPERATING-SYSTEM',
  device: 'DEVICE',
  firmware: 'FIRMWARE',
  file: 'FILE',
}

/** §6.6: seconds precision, UTC. */
function spdxDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** `Person: name (email)` (§7.6), or undefined. */
function originator(author: string | undefined): string | undefined {
  const p = personFrom(author)
  if (p === undefined) return undefined
  return p.email === undefined ? `Person: ${p.name}` : `Person: ${p.name} (${p.email})`
}

/** Deterministic, unique SPDX ids, readable where they do not collide. */
function assignIds(components: readonly SBOMComponent[]): Map<string, string> {
  const ids = new Map<string, string>()
  const used = new Set<string>()
  for (const c of components) {
    let id = `SPDXRef-Package-npm-${idstring(c.name)}${c.version === '' ? '' : `-${idstring(c.version)}`}`
    if (used.has(id)) {
      id = `${id}-${createHash('sha256').update(c.purl).digest('hex').slice(0, 8)}`
    }
    used.add(id)
    ids.set(c.bomRef, id)
  }
  return ids
}

function spdxPackage(
  c: SBOMComponent,
  id: string,
  refs: Map<string, string>,
  supplier: string | undefined,
): Record<string, unknown> {
  const distribution = c.externalReferences.find((r) => r.type === 'distribution')
  const homepage = c.externalReferences.find((r) => r.type === 'website')
  const origin = originator(c.author)
  return {
    name: c.name,
    SPDXID: id,
    ...(c.version === '' ? {} : { versionInfo: c.version }),
    supplier: supplier ?? 'NOASSERTION',
    ...(origin === undefined ? {} : { originator: origin }),
    downloadLocation: distribution?.url ?? 'NOASSERTION',
    filesAnalyzed: false,
    ...(c.hashes.length === 0
      ? {}
      : {
          checksums: c.hashes.map((h) => ({
            algorithm: CHECKSUM_ALGORITHMS[h.algorithm],
            checksumValue: h.value,
          })),
        }),
    ...(homepage === undefined ? {} : { homepage: homepage.url }),
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: spdxExpression(c.licenses, refs),
    copyrightText: 'NOASSERTION',
    ...(c.description === undefined ? {} : { description: c.description }),
    externalRefs: [
      { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: c.purl },
    ],
    primaryPackagePurpose: PURPOSES[c.type] ?? 'OTHER',
  }
}

/** SPDX 2.3 JSON, two-space indented, with a final newline. */
export function toSPDXJson(sbom: SBOM): string {
  const meta = sbom.metadata
  const root = meta.component
  const all = [root, ...sbom.components]
  const ids = assignIds(all)
  const refs = new Map<string, string>()
  const uuid = sbom.serialNumber.replace(/^urn:uuid:/, '')
  const docName = root.version === '' ? root.name : `${root.name}@${root.version}`
  const supplier = meta.supplier === undefined ? undefined : `Organization: ${meta.supplier.name}`

  const packages = all.map((c) =>
    spdxPackage(c, ids.get(c.bomRef)!, refs, c === root ? supplier : undefined),
  )
  const relationships: Record<string, string>[] = [
    {
      spdxElementId: 'SPDXRef-DOCUMENT',
      relationshipType: 'DESCRIBES',
      relatedSpdxElement: ids.get(root.bomRef)!,
    },
  ]
  for (const c of all) {
    for (const ref of c.dependsOn) {
      const to = ids.get(ref)
      if (to === undefined) continue
      relationships.push({
        spdxElementId: ids.get(c.bomRef)!,
        relationshipType: 'DEPENDS_ON',
        relatedSpdxElement: to,
      })
    }
  }
  const creators = [
    ...meta.tools.map((t) => `Tool: ${t.name}-${t.version}`),
    ...(supplier === undefined ? [] : [supplier]),
    ...meta.authors.map((a) =>
      a.email === undefined ? `Person: ${a.name}` : `Person: ${a.name} (${a.email})`,
    ),
  ]
  const document = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: docName,
    documentNamespace: `https://spdx.org/spdxdocs/${idstring(docName)}-${uuid}`,
    creationInfo: { created: spdxDate(meta.timestamp), creators },
    documentDescribes: [ids.get(root.bomRef)!],
    packages,
    relationships,
    ...(refs.size === 0
      ? {}
      : {
          hasExtractedLicensingInfos: [...refs].map(([licenseId, text]) => ({
            licenseId,
            extractedText: `The package declares its license as "${text}".`,
            name: text,
          })),
        }),
  }
  return `${JSON.stringify(document, null, 2)}\n`
}
