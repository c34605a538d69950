/**
 * The SOURCE_DATE_EPOCH environment variable (reproducible-builds.org
 * specification), read by the SBOM generator and checked up front by the
 * `sbom` command of the CLI.
 */
import { ConfigError } from '../errors.js'

/** 9999-12-31T23:59:59Z. */
export const MAX_EPOCH_SECONDS = 253_402_300_799

/**
 * SOURCE_DATE_EPOCH as seconds, `undefined` when unset or empty. The
 * specification asks tools to fail on a malformed value rather than guess.
 */
export function sourceDateEpochFrom(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined
  // Year 9999 at most: later instants have no RFC 3339 form (CycloneDX and SPDX need one).
  if (!/^\d+$/.test(raw) || Number(raw) > MAX_EPOCH_SECONDS) {
    throw new ConfigError('SBOMGenerator', [
      {
        path: ['SOURCE_DATE_EPOCH'],
        message: 'must be a non-negative integer count of seconds since 1970-01-01T00:00:00Z',
      },
    ])
  }
  return Number(raw)
}
