/** `GcpKmsProvider`'s options: the zod schema, parsed once at construction. */
import { z } from 'zod'
import { RandomBytesOptionSchema } from '../../../internal/options.js'
import { BaseKmsProviderOptionsSchema } from '../../base-provider.js'
import { type GcpKmsClient, isGcpKmsClient } from './client.js'
import { LOCATION_ID, PROJECT_ID, RESOURCE_ID } from './resource-names.js'

const ResourceIdSchema = z.string().regex(RESOURCE_ID, 'must be 1-63 letters, digits, "_" or "-"')

export const GcpKmsProviderOptionsSchema = BaseKmsProviderOptionsSchema.extend({
  /**
   * The project ID (not the project number) holding the key ring.
   * @default none (required)
   */
  projectId: z
    .string()
    .regex(PROJECT_ID, 'must be a project ID: 6-30 lowercase letters, digits or "-"'),
  /**
   * The key ring's location, e.g. `'global'`, `'europe-west1'`.
   * @default none (required)
   */
  locationId: z.string().regex(LOCATION_ID, 'must be a location id such as "global"'),
  /**
   * The key ring that short key ids are looked up in.
   * @default none (required)
   */
  keyRingId: ResourceIdSchema,
  /**
   * Host of the API, without scheme or port (a regional or private endpoint,
   * or `127.0.0.1` for an emulator).
   * @default 'cloudkms.googleapis.com' (the client's default)
   */
  apiEndpoint: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[^\s/]+$/, 'must be a host name, without scheme or path')
    .optional(),
  /**
   * Port of the API.
   * @default 443 (the client's default)
   */
  port: z.number().int().min(1).max(65_535).optional(),
  /**
   * Plaintext gRPC without credentials, for a local emulator only. Also pins
   * the universe domain so google-auth-library never probes the GCE metadata
   * server. Needs `apiEndpoint`.
   * @default false
   */
  insecure: z.boolean().default(false),
  /**
   * A service account's key, instead of Application Default Credentials.
   * @default Application Default Credentials
   */
  credentials: z
    .object({ client_email: z.string().min(3).max(320), private_key: z.string().min(1) })
    .strict()
    .optional(),
  /**
   * Path to a service account key file, instead of Application Default Credentials.
   * @default Application Default Credentials
   */
  keyFilename: z.string().min(1).optional(),
  /**
   * A client you built yourself (any object with the {@link GcpKmsClient}
   * methods, such as a configured `KeyManagementServiceClient`). The provider
   * does not close it. Excludes the connection options above.
   * @default a `KeyManagementServiceClient` built from the options above
   */
  client: z
    .custom<GcpKmsClient>(isGcpKmsClient, 'must be a Cloud KMS client (encrypt, decrypt, ...)')
    .optional(),
  /** Source of data keys. @default crypto.randomBytes */
  randomBytes: RandomBytesOptionSchema.optional(),
})
  .strict()
  .superRefine((o, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message })
    if (o.insecure && o.apiEndpoint === undefined)
      issue(
        'apiEndpoint',
        'is required when insecure is true (plaintext gRPC is for local emulators)',
      )
    if (o.insecure && (o.credentials !== undefined || o.keyFilename !== undefined))
      issue(
        'insecure',
        'cannot be combined with credentials or keyFilename: a plaintext channel sends none',
      )
    if (o.credentials !== undefined && o.keyFilename !== undefined)
      issue('keyFilename', 'cannot be combined with credentials')
    if (
      o.client !== undefined &&
      (o.insecure ||
        o.apiEndpoint !== undefined ||
        o.port !== undefined ||
        o.credentials !== undefined ||
        o.keyFilename !== undefined)
    )
      issue(
        'client',
        'cannot be combined with apiEndpoint, port, insecure, credentials or keyFilename',
      )
  })

export type GcpKmsProviderOptions = z.input<typeof GcpKmsProviderOptionsSchema>
export type ParsedGcpKmsProviderOptions = z.output<typeof GcpKmsProviderOptionsSchema>
