/**
 * This package as the tool that wrote an SBOM (`metadata.tools`).
 */
import { ownManifest } from '../internal/own-manifest.js'
import type { SBOMTool } from './models.js'

let tool: SBOMTool | undefined

/** This package as an SBOM tool; read once, on first use. */
export function sbomTool(): SBOMTool {
  if (tool === undefined) {
    const own = ownManifest()
    tool = Object.freeze({
      name: own.name,
      version: own.version,
      purl: `pkg:npm/${own.name}@${own.version}`,
    })
  }
  return tool
}
