/**
 * Fixtures and validators shared by the SBOM suites. CycloneDX JSON is checked
 * with the library's own strict validator (ajv, the official 1.6 schema),
 * CycloneDX XML with xmllint compiled to WebAssembly against the official
 * XSD, SPDX 2.3 JSON with our schema of the specification's required fields
 * plus the checks a schema cannot express (ids resolve, license expressions
 * parse).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Spec, Validation } from '@cyclonedx/cyclonedx-library'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import validateExpression from 'spdx-expression-validate'
import { validateXML } from 'xmllint-wasm'

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Path of a fixture directory (or of a file inside one). */
export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts)
}

/** The named fixtures that are valid projects, for suites that run every output over each. */
export const PROJECT_FIXTURES = [
  'small',
  'v2',
  'workspaces',
  'aliases',
  'bundled-optional',
  'installed',
  'shrinkwrap',
] as const

const created: string[] = []

/** A fresh temporary directory, removed by {@link removeTempDirs}. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  created.push(dir)
  return dir
}

/** Removes every directory {@link tempDir} made; suites call it in `afterAll`. */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/**
 * A copy of the fixture in a temporary directory, with the installed
 * package.json files of its `installed.json` (if any) written under
 * `node_modules`. Fixtures keep no `node_modules` in git.
 */
export function materialize(name: string): string {
  const dir = tempDir(`fsl-sbom-${name}-`)
  cpSync(fixture(name), dir, { recursive: true })
  let installed: Record<string, string> = {}
  try {
    installed = JSON.parse(readFileSync(fixture(name, 'installed.json'), 'utf8'))
  } catch {
    // no installed manifests for this fixture
  }
  for (const [path, text] of Object.entries(installed)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return dir
}

const jsonValidator = new Validation.JsonStrictValidator(Spec.Version.v1dot6)

/** null when `text` is a valid CycloneDX 1.6 JSON document, else the validator's errors. */
export async function cycloneDxJsonErrors(text: string): Promise<unknown> {
  return jsonValidator.validate(text)
}

const require = createRequire(import.meta.url)
const schemaDir = join(
  dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json')),
  'res',
  'schema',
)
const bomXsd = readFileSync(join(schemaDir, 'bom-1.6.SNAPSHOT.xsd'), 'utf8')
const spdxXsd = readFileSync(join(schemaDir, 'spdx.SNAPSHOT.xsd'), 'utf8')

/** [] when `text` is valid against the official CycloneDX 1.6 XSD, else xmllint's errors. */
export async function cycloneDxXmlErrors(text: string): Promise<string[]> {
  const result = await validateXML({
    xml: [{ fileName: 'bom.xml', contents: text }],
    schema: [{ fileName: 'bom-1.6.SNAPSHOT.xsd', contents: bomXsd }],
    // The 1.6 XSD imports the SPDX license list by this relative name.
    preload: [{ fileName: 'spdx.SNAPSHOT.xsd', contents: spdxXsd }],
  })
  return result.valid ? [] : result.errors.map((e) => e.rawMessage)
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
const ajv = addFormats(
  new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }),
)
const spdxSchema = JSON.parse(
  readFileSync(new URL('./schemas/spdx-2.3-required.schema.json', import.meta.url), 'utf8'),
)
const spdxValidate = ajv.compile(spdxSchema)

interface SpdxDocument {
  documentDescribes?: string[]
  packages?: { SPDXID: string; licenseDeclared?: string; licenseConcluded?: string }[]
  relationships?: { spdxElementId: string; relatedSpdxElement: string }[]
  hasExtractedLicensingInfos?: { licenseId: string }[]
}

/** [] when `text` is a valid SPDX 2.3 JSON document by our schema and cross-checks. */
export function spdxErrors(text: string): string[] {
  const doc = JSON.parse(text) as SpdxDocument
  const problems: string[] = []
  if (!spdxValidate(doc)) {
    for (const e of spdxValidate.errors ?? []) problems.push(`${e.instancePath} ${e.message}`)
  }
  const ids = new Set(['SPDXRef-DOCUMENT'])
  for (const p of doc.packages ?? []) {
    if (ids.has(p.SPDXID)) problems.push(`duplicate SPDXID ${p.SPDXID}`)
    ids.add(p.SPDXID)
  }
  for (const id of doc.documentDescribes ?? []) {
    if (!ids.has(id)) problems.push(`documentDescribes names unknown ${id}`)
  }
  for (const r of doc.relationships ?? []) {
    for (const id of [r.spdxElementId, r.relatedSpdxElement]) {
      if (!ids.has(id) && id !== 'NONE' && id !== 'NOASSERTION') {
        problems.push(`relationship names unknown ${id}`)
      }
    }
  }
  const extracted = new Set((doc.hasExtractedLicensingInfos ?? []).map((l) => l.licenseId))
  for (const p of doc.packages ?? []) {
    for (const value of [p.licenseDeclared, p.licenseConcluded]) {
      if (value === undefined || value === 'NOASSERTION' || value === 'NONE') continue
      if (!validateExpression(value)) problems.push(`${p.SPDXID}: invalid expression ${value}`)
      for (const ref of value.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) {
        if (!extracted.has(ref))
          problems.push(`${p.SPDXID}: ${ref} has no extracted licensing info`)
      }
    }
  }
  return problems
}
