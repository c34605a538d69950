/**
 * Finding the `.proto` files of `google.cloud.kms.v1` where the optional
 * peer `@google-cloud/kms` (and its google-gax) ship them; missing, a
 * `MissingDependencyError` names the package.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { MissingDependencyError } from '../../../internal/optional-import.js'

const FEATURE = 'startGcpKmsEmulator'

/** Where `@google-cloud/kms` and google-gax keep their `.proto` files. */
export function protoDirectories(): string[] {
  let kmsEntry: string
  try {
    kmsEntry = createRequire(import.meta.url).resolve('@google-cloud/kms')
  } catch {
    throw new MissingDependencyError('@google-cloud/kms', FEATURE)
  }
  // google-gax's exports map hides its package.json: derive from its entry,
  // resolved from the SDK's own location (it is the SDK's dependency).
  let gaxEntry: string
  try {
    gaxEntry = createRequire(kmsEntry).resolve('google-gax')
  } catch {
    throw new MissingDependencyError('google-gax', FEATURE)
  }
  return [join(dirname(kmsEntry), '..', 'protos'), join(dirname(gaxEntry), '..', 'protos')]
}
