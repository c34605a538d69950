/**
 * @module fraiseql-security/sbom
 *
 * Software bills of materials from npm lockfiles (versions 2 and 3), without
 * spawning npm and without the network: CycloneDX 1.6 (JSON, XML) through
 * @cyclonedx/cyclonedx-library, and SPDX 2.3 (JSON). Every lockfile
 * `integrity` becomes a hash; the dependency graph is kept; SOURCE_DATE_EPOCH
 * makes the output byte-for-byte reproducible.
 */

export { MissingDependencyError } from '../internal/optional-import.js'
export {
  LockfileNotFoundError,
  MalformedLockfileError,
  MalformedManifestError,
  SBOMError,
  UnsupportedLockfileError,
} from './errors.js'
export type { SBOMGeneratorOptions } from './generator.js'
export { SBOMGenerator, SBOMGeneratorOptionsSchema } from './generator.js'
export type { LicenseInit, LicenseKind } from './license.js'
export { License } from './license.js'
export type {
  ExternalReference,
  ExternalReferenceType,
  Hash,
  HashAlgorithm,
  SBOMComponentInit,
  SBOMContact,
  SBOMDependency,
  SBOMInit,
  SBOMMetadataInit,
  SBOMOrganization,
  SBOMTool,
} from './models.js'
export { ComponentScope, ComponentType, SBOM, SBOMComponent, SBOMMetadata } from './models.js'
export type { SBOMFormat, SBOMOutputFormat, SBOMOutputOptions } from './serialize.js'
export {
  SBOM_FORMATS,
  SBOM_OUTPUT_FORMATS,
  SBOMOutputOptionsSchema,
  toCycloneDX,
  toSPDX,
} from './serialize.js'
