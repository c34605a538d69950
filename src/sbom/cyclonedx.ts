/**
 * CycloneDX 1.6, JSON and XML, through @cyclonedx/cyclonedx-library's models
 * and serializers (loaded on first use: importing `fraiseql-security/sbom`
 * costs nothing until something is serialized). XML needs the optional peer
 * xmlbuilder2.
 *
 * npm facts use the CycloneDX npm property taxonomy
 * (cyclonedx-property-taxonomy, `cdx:npm:package:*`).
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { importOptional } from '../internal/optional-import.js'
import { cycloneDxLicenses } from './licenses.js'
import type { SBOM, SBOMComponent, SBOMOrganization } from './models.js'

type Serialize = typeof import('@cyclonedx/cyclonedx-library/Serialize')

type Library = {
  Models: typeof import('@cyclonedx/cyclonedx-library/Models')
  Enums: typeof import('@cyclonedx/cyclonedx-library/Enums')
  Spec: typeof import('@cyclonedx/cyclonedx-library/Spec')
  SPDX: typeof import('@cyclonedx/cyclonedx-library/SPDX')
}

/** What JSON output needs of the library's serializers. */
type JsonSerialize = Pick<Serialize, 'JsonSerializer' | 'JSON'>

const require = createRequire(import.meta.url)
let library: Library | undefined
let jsonSerialize: JsonSerialize | undefined

/** The library's CommonJS modules, required once (only the parts we use). */
function cdx(): Library {
  library ??= {
    Models: require('@cyclonedx/cyclonedx-library/Models'),
    Enums: require('@cyclonedx/cyclonedx-library/Enums'),
    Spec: require('@cyclonedx/cyclonedx-library/Spec'),
    SPDX: require('@cyclonedx/cyclonedx-library/SPDX'),
  }
  return library
}

/**
 * The library's files that hold its JSON serializer, inside its package.
 * The `Serialize` subpath also requires its XML serializer, which requires
 * xmlbuilder2 and its DOM at once (some 130 modules, most of a CLI run's
 * start-up) even when only JSON is written; no published subpath has the
 * JSON serializer alone.
 */
export const CYCLONEDX_JSON_FILES = {
  serializer: 'dist.node/serialize/jsonSerializer.js',
  normalize: 'dist.node/serialize/json/index.js',
} as const

/**
 * The JSON serializer, from its own files when the installed library has
 * them where {@link CYCLONEDX_JSON_FILES} says, else from the `Serialize`
 * subpath: the same classes either way (one module cache), only the cost
 * of loading differs.
 */
function cdxJson(): JsonSerialize {
  if (jsonSerialize === undefined) {
    let own: JsonSerialize | undefined
    try {
      const base = dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json'))
      const { JsonSerializer } = require(join(base, CYCLONEDX_JSON_FILES.serializer))
      const normalize = require(join(base, CYCLONEDX_JSON_FILES.normalize))
      if (
        typeof JsonSerializer === 'function' &&
        typeof normalize?.Normalize?.Factory === 'function'
      ) {
        own = { JsonSerializer, JSON: normalize }
      }
    } catch {
      // A release that moved these files: the published subpath still has them.
    }
    jsonSerialize = own ?? (require('@cyclonedx/cyclonedx-library/Serialize') as Serialize)
  }
  return jsonSerialize
}

type CdxComponent = InstanceType<Library['Models']['Component']>

function splitName(name: string): { group: string | undefined; name: string } {
  if (!name.startsWith('@')) return { group: undefined, name }
  const slash = name.indexOf('/')
  return slash === -1
    ? { group: undefined, name }
    : { group: name.slice(0, slash), name: name.slice(slash + 1) }
}

function organization(lib: Library, org: SBOMOrganization) {
  return new lib.Models.OrganizationalEntity({ name: org.name, url: new Set(org.url ?? []) })
}

function toComponent(lib: Library, c: SBOMComponent, isRoot: boolean): CdxComponent {
  const { Models, Enums, SPDX } = lib
  const { group, name } = splitName(c.name)
  const component = new Models.Component(c.type as never, name, {
    bomRef: c.bomRef,
    purl: c.purl,
    ...(group === undefined ? {} : { group }),
    ...(c.version === '' ? {} : { version: c.version }),
    ...(c.author === undefined ? {} : { author: c.author }),
    ...(c.description === undefined ? {} : { description: c.description }),
  })
  if (!isRoot) {
    component.scope =
      c.scope === 'required'
        ? Enums.ComponentScope.Required
        : c.scope === 'optional'
          ? Enums.ComponentScope.Optional
          : Enums.ComponentScope.Excluded
  }
  if (c.supplier !== undefined) {
    component.supplier = organization(lib, c.supplier)
  }
  for (const h of c.hashes) component.hashes.set(h.algorithm as never, h.value)
  for (const l of cycloneDxLicenses(c.licenses)) {
    const url = l.url === undefined ? {} : { url: l.url }
    if (l.id !== undefined) {
      // A list id newer than the library's copy of the SPDX list is still a valid expression.
      component.licenses.add(
        SPDX.isSupportedSpdxId(l.id)
          ? new Models.SpdxLicense(l.id, url)
          : new Models.LicenseExpression(l.id),
      )
    } else if (l.expression !== undefined) {
      component.licenses.add(new Models.LicenseExpression(l.expression))
    } else {
      component.licenses.add(new Models.NamedLicense(l.toString(), url))
    }
  }
  for (const ref of c.externalReferences) {
    component.externalReferences.add(new Models.ExternalReference(ref.url, ref.type as never))
  }
  if (c.scope === 'dev' && !isRoot) {
    component.properties.add(new Models.Property('cdx:npm:package:development', 'true'))
  }
  if (c.bundled) component.properties.add(new Models.Property('cdx:npm:package:bundled', 'true'))
  for (const path of c.paths) {
    if (path !== '') component.properties.add(new Models.Property('cdx:npm:package:path', path))
  }
  return component
}

function toBom(lib: Library, sbom: SBOM) {
  const { Models, Enums } = lib
  const bom = new Models.Bom({ serialNumber: sbom.serialNumber, version: sbom.version })
  const meta = sbom.metadata
  bom.metadata.timestamp = meta.timestamp
  // Built from the lockfile and the installed tree before anything is built from them.
  bom.metadata.lifecycles.add(Enums.LifecyclePhase.PreBuild)
  for (const tool of meta.tools) {
    // No bom-ref: the tool may be the very package the SBOM describes.
    bom.metadata.tools.components.add(
      new Models.Component(Enums.ComponentType.Application, tool.name, {
        version: tool.version,
        ...(tool.purl === undefined ? {} : { purl: tool.purl }),
      }),
    )
  }
  for (const a of meta.authors) {
    bom.metadata.authors.add(
      new Models.OrganizationalContact({
        name: a.name,
        ...(a.email === undefined ? {} : { email: a.email }),
      }),
    )
  }
  if (meta.supplier !== undefined) {
    bom.metadata.supplier = organization(lib, meta.supplier)
  }
  const root = toComponent(lib, meta.component, true)
  bom.metadata.component = root
  const byRef = new Map<string, CdxComponent>([[meta.component.bomRef, root]])
  for (const c of sbom.components) {
    const component = toComponent(lib, c, false)
    byRef.set(c.bomRef, component)
    bom.components.add(component)
  }
  // The graph: the library writes `dependencies` from each component's BomRef set.
  for (const c of [meta.component, ...sbom.components]) {
    const from = byRef.get(c.bomRef)!
    for (const ref of c.dependsOn) {
      const to = byRef.get(ref)
      if (to !== undefined) from.dependencies.add(to.bomRef)
    }
  }
  return bom
}

/** CycloneDX 1.6 JSON, two-space indented, lists sorted, with a final newline. */
export function toCycloneDXJson(sbom: SBOM): string {
  const lib = cdx()
  const json = cdxJson()
  const serializer = new json.JsonSerializer(new json.JSON.Normalize.Factory(lib.Spec.Spec1dot6))
  return `${serializer.serialize(toBom(lib, sbom), { sortLists: true, space: 2 })}\n`
}

/** CycloneDX 1.6 XML; needs the optional peer xmlbuilder2. */
export async function toCycloneDXXml(sbom: SBOM): Promise<string> {
  // The library looks for xmlbuilder2 itself; asking first gives our error and its install hint.
  await importOptional('xmlbuilder2', 'CycloneDX XML output')
  const lib = cdx()
  const Serialize = require('@cyclonedx/cyclonedx-library/Serialize') as Serialize
  const serializer = new Serialize.XmlSerializer(
    new Serialize.XML.Normalize.Factory(lib.Spec.Spec1dot6),
  )
  return `${serializer.serialize(toBom(lib, sbom), { sortLists: true, space: 2 })}\n`
}
