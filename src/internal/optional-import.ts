import { SecurityError } from '../errors.js'

/** An optional peer dependency a feature needs is not installed. */
export class MissingDependencyError extends SecurityError {
  static override readonly code = 'ERR_DEPENDENCY_MISSING'
  /** The npm package to install. */
  readonly packageName: string

  constructor(packageName: string, feature: string) {
    super(`${feature} needs the optional package "${packageName}": npm install ${packageName}`)
    this.packageName = packageName
  }
}

/**
 * Imports an optional peer dependency on first use, so importing a subpath
 * never requires SDKs the caller does not use.
 */
export async function importOptional<T>(packageName: string, feature: string): Promise<T> {
  try {
    return (await import(packageName)) as T
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new MissingDependencyError(packageName, feature)
    }
    throw err
  }
}
