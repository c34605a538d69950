/**
 * This package's own name and version, read from its package.json: one
 * directory above this module's folder in both `src/` and `dist/`. The SBOM
 * names us as its tool with them; the CLI prints the version.
 */
import { readFileSync } from 'node:fs'

export interface OwnManifest {
  readonly name: string
  readonly version: string
}

let manifest: OwnManifest | undefined

/** Our package.json's `name` and `version`; read once, on first use. */
export function ownManifest(): OwnManifest {
  if (manifest === undefined) {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      name: string
      version: string
    }
    manifest = Object.freeze({ name: pkg.name, version: pkg.version })
  }
  return manifest
}
