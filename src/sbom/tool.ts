/**
 * This package as the tool that wrote an SBOM (`metadata.tools`). The
 * version is read from our own package.json, one directory above this
 * module in both `src/` and `dist/`.
 */
import { readFileSync } from 'node:fs'
import type { SBOMTool } from './models.js'

function ownManifest(): { name: string; version: string } {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    name: string
    version: string
  }
  return { name: pkg.name, version: pkg.version }
}

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
