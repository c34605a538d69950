/**
 * The command registry. Commands load on first use, so `fraiseql-security
 * sbom` never imports what `keys` or `profile` would need. To add one: a file
 * beside this one exporting a {@link Command}, and a line here.
 */
import type { Command } from '../command.js'

export interface CommandEntry {
  readonly summary: string
  readonly load: () => Promise<Command>
}

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  dek: {
    summary: "Show or rotate the KeyManager's data keys (keyring)",
    load: async () => (await import('./dek.js')).dekCommand,
  },
  keys: {
    summary: 'Create, list, rotate or revoke API keys',
    load: async () => (await import('./keys.js')).keysCommand,
  },
  profile: {
    summary: 'Show a security profile preset, resolved, and what enforces each setting',
    load: async () => (await import('./profile.js')).profileCommand,
  },
  sbom: {
    summary: 'Write a CycloneDX or SPDX SBOM of an npm project from its lockfile',
    load: async () => (await import('./sbom.js')).sbomCommand,
  },
}
