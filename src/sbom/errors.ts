/**
 * Errors of the SBOM generator. Each names the file it could not use and
 * says what is wrong with it, so a CI log line is enough to fix the input.
 */
import { SecurityError, type SecurityErrorOptions } from '../errors.js'

/** Base of every SBOM input error; `file` is the path the generator was reading. */
export class SBOMError extends SecurityError {
  static override readonly code: SecurityError['code'] = 'ERR_SBOM_ERROR'
  /** The file (or directory) the problem is in. */
  readonly file: string

  constructor(file: string, message: string, options?: SecurityErrorOptions) {
    super(message, options)
    this.file = file
  }
}

/** Neither `npm-shrinkwrap.json` nor `package-lock.json` exists where the generator looked. */
export class LockfileNotFoundError extends SBOMError {
  static override readonly code = 'ERR_SBOM_LOCKFILE_NOT_FOUND'

  constructor(file: string, problem?: string, options?: SecurityErrorOptions) {
    super(
      file,
      `${file}: ${problem ?? 'no npm lockfile here (looked for npm-shrinkwrap.json and package-lock.json); `npm install --package-lock-only` writes one'}`,
      options,
    )
  }
}

/** The lockfile's `lockfileVersion` is missing or not 2 or 3. */
export class UnsupportedLockfileError extends SBOMError {
  static override readonly code = 'ERR_SBOM_LOCKFILE_UNSUPPORTED'
  /** The version found, `undefined` when the field is missing. */
  readonly lockfileVersion: unknown

  constructor(file: string, lockfileVersion: unknown, options?: SecurityErrorOptions) {
    const found =
      lockfileVersion === undefined
        ? 'has no lockfileVersion'
        : `has lockfileVersion ${JSON.stringify(lockfileVersion)}`
    // Version 1 lockfiles have no `packages` map: paths, links and workspaces are
    // not recorded, so a faithful dependency graph cannot be rebuilt from them.
    super(
      file,
      `${file}: ${found}; only lockfile versions 2 and 3 (npm 7 and later) are supported: regenerate it with \`npm install --package-lock-only --lockfile-version 3\``,
      options,
    )
    this.lockfileVersion = lockfileVersion
  }
}

/** The lockfile is not JSON, or its structure is not an npm lockfile's. */
export class MalformedLockfileError extends SBOMError {
  static override readonly code = 'ERR_SBOM_LOCKFILE_MALFORMED'

  constructor(file: string, problem: string, options?: SecurityErrorOptions) {
    super(file, `${file}: ${problem}`, options)
  }
}

/** The root `package.json` exists but is not a JSON object. */
export class MalformedManifestError extends SBOMError {
  static override readonly code = 'ERR_SBOM_MANIFEST_MALFORMED'

  constructor(file: string, problem: string, options?: SecurityErrorOptions) {
    super(file, `${file}: ${problem}`, options)
  }
}
