/**
 * The SBOM model the generator builds and the serializers read. It carries
 * what CycloneDX 1.6 and SPDX 2.3 both need, in neither format's shape, so
 * one generation feeds every output byte-for-byte the same way.
 */
import type { License } from './license.js'

/** CycloneDX 1.6 component types (`component.type`). npm packages are libraries. */
export const ComponentType = {
  Application: 'application',
  Framework: 'framework',
  Library: 'library',
  Container: 'container',
  Platform: 'platform',
  OperatingSystem: 'operating-system',
  Device: 'device',
  DeviceDriver: 'device-driver',
  Firmware: 'firmware',
  File: 'file',
  MachineLearningModel: 'machine-learning-model',
  Data: 'data',
  CryptographicAsset: 'cryptographic-asset',
} as const

/** One of the {@link ComponentType} values. */
export type ComponentType = (typeof ComponentType)[keyof typeof ComponentType]

/**
 * Why a component is in the tree: needed at run time, optional at run time
 * (an `optionalDependencies` subtree, e.g. a platform binary), or only for
 * development. CycloneDX writes `dev` as scope `excluded` plus the
 * `cdx:npm:package:development` property (the CycloneDX npm taxonomy).
 */
export const ComponentScope = {
  Required: 'required',
  Optional: 'optional',
  Dev: 'dev',
} as const

/** One of the {@link ComponentScope} values. */
export type ComponentScope = (typeof ComponentScope)[keyof typeof ComponentScope]

/** Hash algorithms an npm `integrity` (Subresource Integrity) string can carry, CycloneDX names. */
export type HashAlgorithm = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512'

/** A digest of the package tarball, lowercase hex. */
export interface Hash {
  readonly algorithm: HashAlgorithm
  readonly value: string
}

/** External reference types we derive from a package.json (CycloneDX names). */
export type ExternalReferenceType = 'website' | 'vcs' | 'issue-tracker' | 'distribution'

export interface ExternalReference {
  readonly type: ExternalReferenceType
  readonly url: string
}

/** A person: an author or a contact. */
export interface SBOMContact {
  readonly name: string
  readonly email?: string
  readonly url?: string
}

/** An organization: the supplier of the software the SBOM describes. */
export interface SBOMOrganization {
  readonly name: string
  readonly url?: readonly string[]
}

/** A tool that produced the SBOM. */
export interface SBOMTool {
  readonly name: string
  readonly version: string
  readonly purl?: string
}

/** What {@link SBOMComponent} is built from. */
export interface SBOMComponentInit {
  readonly name: string
  readonly version: string
  readonly type?: ComponentType
  /** Package URL (purl); also the component's reference (`bom-ref`). */
  readonly purl: string
  readonly scope?: ComponentScope
  readonly licenses?: readonly License[]
  readonly hashes?: readonly Hash[]
  readonly author?: string
  readonly supplier?: SBOMOrganization
  readonly description?: string
  readonly externalReferences?: readonly ExternalReference[]
  /** Lockfile locations where it is installed (`node_modules/a/node_modules/b`). */
  readonly paths?: readonly string[]
  /** Shipped inside another package's tarball (`bundleDependencies`). */
  readonly bundled?: boolean
  /** purls of the components it depends on directly. */
  readonly dependsOn?: readonly string[]
}

/**
 * One package in the SBOM. Components are unique by purl: the same package
 * and version installed at several paths is one component listing every path.
 *
 * @example
 * ```ts
 * import { ComponentType, License, SBOMComponent } from 'fraiseql-security/sbom'
 *
 * const zod = new SBOMComponent({
 *   name: 'zod',
 *   version: '4.1.0',
 *   type: ComponentType.Library,
 *   purl: 'pkg:npm/zod@4.1.0',
 *   licenses: [License.fromString('MIT')],
 * })
 * zod.bomRef // 'pkg:npm/zod@4.1.0'
 * ```
 */
export class SBOMComponent {
  readonly name: string
  readonly version: string
  readonly type: ComponentType
  readonly purl: string
  readonly scope: ComponentScope
  readonly licenses: readonly License[]
  readonly hashes: readonly Hash[]
  readonly author: string | undefined
  readonly supplier: SBOMOrganization | undefined
  readonly description: string | undefined
  readonly externalReferences: readonly ExternalReference[]
  readonly paths: readonly string[]
  readonly bundled: boolean
  readonly dependsOn: readonly string[]

  constructor(init: SBOMComponentInit) {
    this.name = init.name
    this.version = init.version
    this.type = init.type ?? ComponentType.Library
    this.purl = init.purl
    this.scope = init.scope ?? ComponentScope.Required
    this.licenses = Object.freeze([...(init.licenses ?? [])])
    this.hashes = Object.freeze([...(init.hashes ?? [])])
    this.author = init.author
    this.supplier = init.supplier
    this.description = init.description
    this.externalReferences = Object.freeze([...(init.externalReferences ?? [])])
    this.paths = Object.freeze([...(init.paths ?? [])])
    this.bundled = init.bundled ?? false
    this.dependsOn = Object.freeze([...(init.dependsOn ?? [])])
    Object.freeze(this)
  }

  /** The reference other components and the dependency graph use: the purl. */
  get bomRef(): string {
    return this.purl
  }
}

/** What {@link SBOMMetadata} is built from. */
export interface SBOMMetadataInit {
  readonly timestamp: Date
  readonly tools: readonly SBOMTool[]
  /** The project the SBOM describes (the lockfile's root package). */
  readonly component: SBOMComponent
  readonly authors?: readonly SBOMContact[]
  readonly supplier?: SBOMOrganization
}

/**
 * Facts about the SBOM itself: when, by which tool, about what, by whom.
 *
 * @example
 * ```ts
 * import type { SBOM } from 'fraiseql-security/sbom'
 * declare const sbom: SBOM
 *
 * sbom.metadata.timestamp.toISOString()
 * sbom.metadata.component.name // the project's package name
 * ```
 */
export class SBOMMetadata {
  readonly timestamp: Date
  readonly tools: readonly SBOMTool[]
  readonly component: SBOMComponent
  readonly authors: readonly SBOMContact[]
  readonly supplier: SBOMOrganization | undefined

  constructor(init: SBOMMetadataInit) {
    this.timestamp = new Date(init.timestamp.getTime())
    this.tools = Object.freeze([...init.tools])
    this.component = init.component
    this.authors = Object.freeze([...(init.authors ?? [])])
    this.supplier = init.supplier
    Object.freeze(this)
  }
}

/** What {@link SBOM} is built from. */
export interface SBOMInit {
  /** `urn:uuid:…` (RFC 9562), fixed by `SOURCE_DATE_EPOCH` in reproducible mode. */
  readonly serialNumber: string
  readonly metadata: SBOMMetadata
  readonly components: readonly SBOMComponent[]
}

/** One dependency edge list: `ref` depends on each of `dependsOn` (purls). */
export interface SBOMDependency {
  readonly ref: string
  readonly dependsOn: readonly string[]
}

/**
 * A generated SBOM: metadata, components sorted by purl, and the dependency
 * graph (each component's `dependsOn`, the root's in `metadata.component`).
 * Serialize it with `toCycloneDX` or `toSPDX`.
 */
export class SBOM {
  readonly serialNumber: string
  /** Version of this SBOM for the same subject; a generator always writes 1. */
  readonly version = 1
  readonly metadata: SBOMMetadata
  readonly components: readonly SBOMComponent[]

  constructor(init: SBOMInit) {
    this.serialNumber = init.serialNumber
    this.metadata = init.metadata
    this.components = Object.freeze([...init.components])
    Object.freeze(this)
  }

  /** The root's edges first, then every component's, each list sorted. */
  get dependencies(): readonly SBOMDependency[] {
    const root = this.metadata.component
    return [root, ...this.components].map((c) => ({ ref: c.bomRef, dependsOn: c.dependsOn }))
  }
}
