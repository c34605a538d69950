/**
 * SBOMGenerator: an npm lockfile (versions 2 and 3) and the root
 * package.json in, an {@link SBOM} out. npm is never spawned and the network
 * is never used: everything comes from the lockfile, plus the installed
 * packages' package.json files when they are there (licenses the lockfile
 * lacks, authors, links).
 */
import { createHash } from 'node:crypto'
import { basename, join } from 'node:path'
import { z } from 'zod'
import { type Clock, systemClock } from '../internal/clock.js'
import { ClockOptionSchema, parseOptions, RandomBytesOptionSchema } from '../internal/options.js'
import { type RandomBytes, secureRandomBytes } from '../internal/random.js'
import { MAX_EPOCH_SECONDS, sourceDateEpochFrom } from '../internal/source-date-epoch.js'
import { MalformedManifestError } from './errors.js'
import { isJsonObject, readJsonFile } from './json-file.js'
import type { License } from './license.js'
import {
  findLockfile,
  type Lockfile,
  type LockfileEntry,
  readLockfile,
  resolveDependency,
} from './lockfile.js'
import {
  type ComponentScope,
  ComponentType,
  type ExternalReference,
  SBOM,
  SBOMComponent,
  type SBOMContact,
  SBOMMetadata,
  type SBOMOrganization,
} from './models.js'
import {
  distributionFrom,
  integrityToHashes,
  licensesFrom,
  npmPurl,
  personFrom,
  referencesFrom,
} from './npm.js'
import { uuidV4, uuidV5 } from './reproducible.js'
import { type SBOMOutputOptions, serializeSBOM } from './serialize.js'
import { sbomTool } from './tool.js'

const ContactSchema = z
  .object({
    name: z.string().min(1),
    email: z.string().min(1).optional(),
    url: z.string().min(1).optional(),
  })
  .strict()

/**
 * Options of {@link SBOMGenerator}.
 *
 * @example
 * ```ts
 * import { SBOMGeneratorOptionsSchema } from 'fraiseql-security/sbom'
 *
 * const options = SBOMGeneratorOptionsSchema.parse({ includeDev: true })
 * ```
 */
export const SBOMGeneratorOptionsSchema = z
  .object({
    /**
     * Include packages needed only for development (lockfile `dev: true`).
     * @default false
     */
    includeDev: z.boolean().default(false),
    /**
     * Read each installed package's package.json (under `node_modules`) for
     * licenses the lockfile lacks, authors, descriptions and links. Packages
     * not installed are described from the lockfile alone.
     * @default true
     */
    readInstalled: z.boolean().default(true),
    /**
     * Seconds since the epoch that fix the timestamp and the serial number
     * (reproducible mode).
     * @default the SOURCE_DATE_EPOCH environment variable, when set
     */
    sourceDateEpoch: z.number().int().min(0).max(MAX_EPOCH_SECONDS).optional(),
    /**
     * Type of the root component (the project the lockfile belongs to).
     * @default 'application'
     */
    rootComponentType: z
      .enum(Object.values(ComponentType) as [ComponentType, ...ComponentType[]])
      .default(ComponentType.Application),
    /**
     * Who wrote the SBOM (`metadata.authors`).
     * @default the root package.json `author`, when it has one
     */
    authors: z.array(ContactSchema).optional(),
    /**
     * Who supplies the software the SBOM describes (`metadata.supplier`).
     * @default none
     */
    supplier: z
      .object({ name: z.string().min(1), url: z.array(z.url()).optional() })
      .strict()
      .optional(),
    /**
     * Milliseconds since the epoch, for the timestamp outside reproducible mode.
     * @default Date.now
     */
    clock: ClockOptionSchema.optional(),
    /**
     * Randomness for the serial number outside reproducible mode.
     * @default node:crypto randomBytes
     */
    randomBytes: RandomBytesOptionSchema.optional(),
  })
  .strict()

export type SBOMGeneratorOptions = z.input<typeof SBOMGeneratorOptionsSchema>

const SCOPE_RANK: Readonly<Record<ComponentScope, number>> = { required: 2, optional: 1, dev: 0 }
const SCOPES: readonly ComponentScope[] = ['dev', 'optional', 'required']

/** Scope of one lockfile entry from its flags (see lockfile.ts). */
function scopeOf(flags: Pick<LockfileEntry, 'dev' | 'optional' | 'devOptional'>): ComponentScope {
  if (flags.dev) return 'dev'
  if (flags.optional || flags.devOptional) return 'optional'
  return 'required'
}

/** One component being assembled from every location it is installed at. */
interface Node {
  readonly name: string
  readonly version: string
  readonly purl: string
  readonly entries: LockfileEntry[]
  scopeRank: number
  bundled: boolean
  readonly dependsOn: Set<string>
}

interface ManifestFacts {
  readonly licenses: License[]
  readonly author: SBOMContact | undefined
  readonly description: string | undefined
  readonly references: ExternalReference[]
}

const NO_FACTS: ManifestFacts = {
  licenses: [],
  author: undefined,
  description: undefined,
  references: [],
}

function factsFrom(manifest: Record<string, unknown>): ManifestFacts {
  return {
    licenses: licensesFrom(manifest.license ?? manifest.licenses),
    author: personFrom(manifest.author),
    description:
      typeof manifest.description === 'string' && manifest.description.trim() !== ''
        ? manifest.description.trim()
        : undefined,
    references: referencesFrom(manifest),
  }
}

function contactText(c: SBOMContact | undefined): string | undefined {
  if (c === undefined) return undefined
  return c.email === undefined ? c.name : `${c.name} <${c.email}>`
}

/**
 * Builds SBOMs from npm lockfiles.
 *
 * @example
 * ```ts
 * import { SBOMGenerator } from 'fraiseql-security/sbom'
 *
 * const generator = new SBOMGenerator({ includeDev: false })
 * const sbom = await generator.generate('.')
 * const json = await generator.serialize(sbom, { format: 'cyclonedx', outputFormat: 'json' })
 * ```
 */
export class SBOMGenerator {
  readonly #includeDev: boolean
  readonly #readInstalled: boolean
  readonly #epoch: number | undefined
  readonly #rootType: ComponentType
  readonly #authors: readonly SBOMContact[] | undefined
  readonly #supplier: SBOMOrganization | undefined
  readonly #clock: Clock
  readonly #random: RandomBytes

  /** @throws ConfigError (`ERR_CONFIG_INVALID`) for a bad option or a malformed SOURCE_DATE_EPOCH. */
  constructor(options?: SBOMGeneratorOptions) {
    const o = parseOptions('SBOMGenerator', SBOMGeneratorOptionsSchema, options)
    this.#includeDev = o.includeDev
    this.#readInstalled = o.readInstalled
    this.#epoch = o.sourceDateEpoch ?? sourceDateEpochFrom(process.env.SOURCE_DATE_EPOCH)
    this.#rootType = o.rootComponentType
    this.#authors = o.authors as readonly SBOMContact[] | undefined
    this.#supplier = o.supplier as SBOMOrganization | undefined
    this.#clock = o.clock ?? systemClock
    this.#random = o.randomBytes ?? secureRandomBytes
  }

  /** Whether timestamp and serial number are fixed (`sourceDateEpoch` or SOURCE_DATE_EPOCH). */
  get reproducible(): boolean {
    return this.#epoch !== undefined
  }

  /**
   * Reads the lockfile at `path` (a lockfile, or a directory holding
   * `npm-shrinkwrap.json` or `package-lock.json`) and the package.json beside it.
   *
   * @throws LockfileNotFoundError, UnsupportedLockfileError,
   *   MalformedLockfileError, MalformedManifestError: each names the file.
   */
  async generate(path = '.'): Promise<SBOM> {
    const lockfile = readLockfile(findLockfile(path))
    return this.#fromLockfile(lockfile)
  }

  /** Serializes `sbom` (CycloneDX 1.6 JSON by default); see {@link SBOMOutputOptions}. */
  serialize(sbom: SBOM, output?: SBOMOutputOptions): Promise<string> {
    return serializeSBOM(sbom, output)
  }

  #fromLockfile(lockfile: Lockfile): SBOM {
    const manifestFile = join(lockfile.dir, 'package.json')
    const rootManifest = this.#rootManifest(manifestFile)

    const { nodes, nodeOf } = this.#collect(lockfile)
    const rootEdges = this.#link(lockfile, nodes, nodeOf)

    const components: SBOMComponent[] = []
    for (const node of [...nodes.values()].sort((a, b) => compare(a.purl, b.purl))) {
      components.push(this.#component(lockfile, node))
    }

    const rootFacts = rootManifest === undefined ? NO_FACTS : factsFrom(rootManifest)
    const name = stringField(rootManifest, 'name') ?? lockfileRootName(lockfile)
    const version = stringField(rootManifest, 'version') ?? lockfile.root.version ?? ''
    const rootLicenses =
      rootFacts.licenses.length > 0 ? rootFacts.licenses : licensesFrom(lockfile.root.license)
    const root = new SBOMComponent({
      name,
      version,
      type: this.#rootType,
      purl: npmPurl(name, version),
      scope: 'required',
      licenses: rootLicenses,
      ...(rootFacts.author === undefined ? {} : { author: contactText(rootFacts.author)! }),
      ...(rootFacts.description === undefined ? {} : { description: rootFacts.description }),
      externalReferences: rootFacts.references,
      paths: [''],
      dependsOn: [...rootEdges].sort(compare),
    })

    const authors = this.#authors ?? (rootFacts.author === undefined ? [] : [rootFacts.author])
    const timestamp =
      this.#epoch === undefined ? new Date(this.#clock()) : new Date(this.#epoch * 1000)
    const serialNumber = `urn:uuid:${
      this.#epoch === undefined
        ? uuidV4(this.#random)
        : uuidV5(
            `${sbomTool().purl}#sbom:${this.#epoch}:${contentDigest(root, components, this.#includeDev)}`,
          )
    }`
    const metadata = new SBOMMetadata({
      timestamp,
      tools: [sbomTool()],
      component: root,
      authors,
      ...(this.#supplier === undefined ? {} : { supplier: this.#supplier }),
    })
    return new SBOM({ serialNumber, metadata, components })
  }

  /** The root package.json: missing is fine (the lockfile names the root), malformed is not. */
  #rootManifest(file: string): Record<string, unknown> | undefined {
    const read = readJsonFile(file)
    if (!read.ok) {
      if (read.reason === 'missing') return undefined
      throw new MalformedManifestError(file, read.problem)
    }
    if (!isJsonObject(read.value)) throw new MalformedManifestError(file, 'is not a JSON object')
    return read.value
  }

  /** One node per purl from every entry kept (no links, no extraneous, dev only if asked). */
  #collect(lockfile: Lockfile): {
    nodes: Map<string, Node>
    nodeOf: Map<string, Node>
  } {
    // A workspace folder or `file:` target takes the flags of the links to it.
    const linkScope = new Map<string, number>()
    for (const entry of lockfile.entries.values()) {
      if (!entry.link || entry.resolved === undefined) continue
      const rank = SCOPE_RANK[scopeOf(entry)]
      linkScope.set(entry.resolved, Math.max(linkScope.get(entry.resolved) ?? -1, rank))
    }
    const nodes = new Map<string, Node>()
    const nodeOf = new Map<string, Node>()
    for (const entry of lockfile.entries.values()) {
      if (entry.link || entry.extraneous) continue
      const rank = linkScope.get(entry.location) ?? SCOPE_RANK[scopeOf(entry)]
      if (rank === SCOPE_RANK.dev && !this.#includeDev) continue
      const version = entry.version ?? ''
      const purl = npmPurl(entry.name, version, entry.resolved)
      let node = nodes.get(purl)
      if (node === undefined) {
        node = {
          name: entry.name,
          version,
          purl,
          entries: [],
          scopeRank: rank,
          bundled: entry.inBundle,
          dependsOn: new Set(),
        }
        nodes.set(purl, node)
      } else {
        node.scopeRank = Math.max(node.scopeRank, rank)
        node.bundled &&= entry.inBundle
      }
      node.entries.push(entry)
      nodeOf.set(entry.location, node)
    }
    return { nodes, nodeOf }
  }

  /** Fills every node's `dependsOn` and returns the root's edges. */
  #link(lockfile: Lockfile, nodes: Map<string, Node>, nodeOf: Map<string, Node>): Set<string> {
    const { entries } = lockfile
    const target = (from: string, name: string): Node | undefined => {
      const at = resolveDependency(entries, from, name)
      if (at === undefined) return undefined
      const entry = entries.get(at)!
      return nodeOf.get(entry.link ? entry.resolved! : at)
    }
    const edgesOf = (entry: LockfileEntry, withDev: boolean, into: Set<string>, self?: string) => {
      for (const name of Object.keys(entry.dependencies)) {
        const dep = target(entry.location, name)
        if (dep !== undefined && dep.purl !== self) into.add(dep.purl)
      }
      if (!withDev) return
      for (const name of Object.keys(entry.devDependencies)) {
        const dep = target(entry.location, name)
        if (dep !== undefined && dep.purl !== self) into.add(dep.purl)
      }
    }
    for (const node of nodes.values()) {
      for (const entry of node.entries) {
        // Only the root and workspace folders record devDependencies.
        edgesOf(entry, this.#includeDev, node.dependsOn, node.purl)
      }
    }
    const rootEdges = new Set<string>()
    edgesOf(lockfile.root, this.#includeDev, rootEdges)
    // Workspaces: links in the root's node_modules to folders of the project.
    for (const entry of entries.values()) {
      if (!entry.link || entry.resolved === undefined) continue
      if (entry.location !== `node_modules/${entry.installName}`) continue
      if (entry.resolved.startsWith('..') || entry.resolved.includes('node_modules/')) continue
      const ws = nodeOf.get(entry.resolved)
      if (ws !== undefined) rootEdges.add(ws.purl)
    }
    return rootEdges
  }

  #component(lockfile: Lockfile, node: Node): SBOMComponent {
    const first = node.entries[0]!
    let facts = NO_FACTS
    if (this.#readInstalled) {
      for (const entry of node.entries) {
        // Plain concatenation: path.join's normalization was a visible share of a run
        // over hundreds of packages, and lockfile locations are already normalized.
        const read = readJsonFile(`${lockfile.dir}/${entry.location}/package.json`)
        // An installed copy that is unreadable is ignored: the lockfile is the input of record.
        if (read.ok && isJsonObject(read.value)) {
          facts = factsFrom(read.value)
          break
        }
      }
    }
    let licenses: License[] = []
    for (const entry of node.entries) {
      licenses = licensesFrom(entry.license)
      if (licenses.length > 0) break
    }
    if (licenses.length === 0) licenses = facts.licenses
    let hashes = integrityToHashes(first.integrity)
    for (const entry of node.entries) {
      if (hashes.length > 0) break
      hashes = integrityToHashes(entry.integrity)
    }
    const author = contactText(facts.author)
    return new SBOMComponent({
      name: node.name,
      version: node.version,
      type: ComponentType.Library,
      purl: node.purl,
      scope: SCOPES[node.scopeRank]!,
      licenses,
      hashes,
      ...(author === undefined ? {} : { author }),
      ...(facts.description === undefined ? {} : { description: facts.description }),
      externalReferences: [...facts.references, ...distributionFrom(first.resolved)],
      paths: node.entries.map((e) => e.location),
      bundled: node.bundled,
      dependsOn: [...node.dependsOn].sort(compare),
    })
  }
}

/** Code-unit order: the same on every machine and locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function stringField(obj: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = obj?.[key]
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined
}

function lockfileRootName(lockfile: Lockfile): string {
  const named = lockfile.root.name
  return named !== '' ? named : basename(lockfile.dir)
}

/** What the reproducible serial number is derived from: everything the output says. */
function contentDigest(
  root: SBOMComponent,
  components: readonly SBOMComponent[],
  includeDev: boolean,
): string {
  return createHash('sha256').update(JSON.stringify({ includeDev, root, components })).digest('hex')
}
