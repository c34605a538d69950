/**
 * Loading the optional peer `@google-cloud/kms`, lazily: importing
 * `fraiseql-security/kms` never requires it, and a provider that needs it and
 * cannot find it raises `MissingDependencyError` naming the package.
 */
import { createRequire } from 'node:module'
// Type-only: never part of an exported declaration, so users without the SDK
// still get working .d.ts files.
import type { KeyManagementServiceClient } from '@google-cloud/kms'
import { importOptional, MissingDependencyError } from '../../../internal/optional-import.js'
import type { GcpKmsClient } from './client.js'

const SDK_PACKAGE = '@google-cloud/kms'
const FEATURE = 'GcpKmsProvider'

/** Finds an installed package's entry file, as seen from this module. */
type Resolver = (packageName: string) => string

const defaultResolver: Resolver = (name) => createRequire(import.meta.url).resolve(name)
let resolver: Resolver = defaultResolver

/**
 * @internal Test seam: replaces how `@google-cloud/kms` is located, so a test
 * can simulate it missing. Pass nothing to restore. Not exported from the
 * package entry.
 *
 * @example
 * ```ts
 * setGcpSdkResolver(() => { throw Object.assign(new Error(), { code: 'MODULE_NOT_FOUND' }) })
 * ```
 */
export function setGcpSdkResolver(replacement?: Resolver): void {
  resolver = replacement ?? defaultResolver
}

/** The SDK's entry file, or MissingDependencyError naming the package. */
export function locateSdk(): string {
  try {
    return resolver(SDK_PACKAGE)
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND')
      throw new MissingDependencyError(SDK_PACKAGE, FEATURE)
    throw err
  }
}

interface GaxModule {
  grpc: { credentials: { createInsecure(): unknown } }
}

/**
 * google-gax as the SDK itself loads it: its `grpc` must be the very
 * @grpc/grpc-js copy the client uses (it checks `instanceof
 * ChannelCredentials`). Resolved from the SDK's own location because
 * google-gax is its dependency, not necessarily ours (pnpm).
 */
function loadGax(sdkEntry: string): GaxModule {
  try {
    return createRequire(sdkEntry)('google-gax') as GaxModule
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    if (code === 'MODULE_NOT_FOUND') throw new MissingDependencyError('google-gax', FEATURE)
    throw err
  }
}

type SdkModule = {
  KeyManagementServiceClient?: typeof KeyManagementServiceClient
  default?: { KeyManagementServiceClient?: typeof KeyManagementServiceClient }
}

/**
 * What the provider builds a client from, in our own types: the SDK's own
 * types stay inside this file and never reach a declaration.
 */
export interface GcpClientSettings {
  apiEndpoint?: string | undefined
  port?: number | undefined
  credentials?: { client_email: string; private_key: string } | undefined
  keyFilename?: string | undefined
  /** Plaintext gRPC without credentials (a local emulator). */
  insecure: boolean
  /** The SDK's entry file, when already located. */
  sdkEntry?: string | undefined
}

/** A `KeyManagementServiceClient`, the SDK imported on first use. */
export async function createKeyManagementServiceClient(
  settings: GcpClientSettings,
): Promise<GcpKmsClient> {
  const sdk = await importOptional<SdkModule>(SDK_PACKAGE, FEATURE)
  const Client = sdk.KeyManagementServiceClient ?? sdk.default?.KeyManagementServiceClient
  if (Client === undefined) throw new MissingDependencyError(SDK_PACKAGE, FEATURE)
  const s = settings
  const plaintextChannel = s.insecure
    ? {
        sslCreds: loadGax(s.sdkEntry ?? locateSdk()).grpc.credentials.createInsecure() as never,
        // Without it GoogleAuth.getUniverseDomain() runs the ADC chain, which
        // probes the GCE metadata server (169.254.169.254).
        universeDomain: 'googleapis.com',
      }
    : {}
  const client: GcpKmsClient = new Client({
    ...(s.apiEndpoint === undefined ? {} : { apiEndpoint: s.apiEndpoint }),
    ...(s.port === undefined ? {} : { port: s.port }),
    ...(s.credentials === undefined ? {} : { credentials: { ...s.credentials } }),
    ...(s.keyFilename === undefined ? {} : { keyFilename: s.keyFilename }),
    ...plaintextChannel,
  })
  return client
}
