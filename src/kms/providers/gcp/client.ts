/**
 * The Cloud KMS client as `GcpKmsProvider` sees it: a small structural
 * interface in our own types (no SDK types), so users can pass a client they
 * configured themselves and users without `@google-cloud/kms` still get
 * working declarations (the AWS Encryption SDK's `AwsEsdkKMSInterface` idea).
 */

/** An int64 as the client sends or returns it: number, decimal string, bigint or a `Long`. */
export type GcpInt64 = number | string | bigint | { toString(): string }

/** `google.protobuf.Int64Value`: the CRC32C fields. */
export interface GcpInt64Value {
  value?: GcpInt64 | null
}

/** `google.protobuf.Timestamp` / `Duration`. */
export interface GcpSecondsAndNanos {
  seconds?: GcpInt64 | null
  nanos?: number | null
}

/** The fields of a `CryptoKeyVersion` the provider reads. */
export interface GcpCryptoKeyVersion {
  name?: string | null
  /** Enum name (`'ENABLED'`) or number (`1`). */
  state?: string | number | null
  createTime?: GcpSecondsAndNanos | null
  /** Enum name (`'HSM'`) or number (`2`). */
  protectionLevel?: string | number | null
}

/** The fields of a `CryptoKey` the provider reads. */
export interface GcpCryptoKey {
  name?: string | null
  primary?: GcpCryptoKeyVersion | null
  createTime?: GcpSecondsAndNanos | null
  rotationPeriod?: GcpSecondsAndNanos | null
  nextRotationTime?: GcpSecondsAndNanos | null
  versionTemplate?: { protectionLevel?: string | number | null } | null
}

/** Per-call options the provider passes: one attempt, bounded by the attempt's budget. */
export interface GcpCallOptions {
  retry: null
  timeout: number
}

/** Bytes as protobufjs returns them (a string would be base64). */
export type GcpBytes = Uint8Array | string

/**
 * The subset of `KeyManagementServiceClient` the provider calls. The real
 * client satisfies it; pass your own (e.g. configured with an `authClient`)
 * through the `client` option.
 */
export interface GcpKmsClient {
  encrypt(
    request: {
      name: string
      plaintext: Uint8Array
      plaintextCrc32c: { value: number }
      additionalAuthenticatedData?: Uint8Array
      additionalAuthenticatedDataCrc32c?: { value: number }
    },
    options: GcpCallOptions,
  ): Promise<
    readonly [
      {
        name?: string | null
        ciphertext?: GcpBytes | null
        ciphertextCrc32c?: GcpInt64Value | null
        verifiedPlaintextCrc32c?: boolean | null
        verifiedAdditionalAuthenticatedDataCrc32c?: boolean | null
        protectionLevel?: string | number | null
      },
      ...unknown[],
    ]
  >
  decrypt(
    request: {
      name: string
      ciphertext: Uint8Array
      ciphertextCrc32c: { value: number }
      additionalAuthenticatedData?: Uint8Array
      additionalAuthenticatedDataCrc32c?: { value: number }
    },
    options: GcpCallOptions,
  ): Promise<
    readonly [{ plaintext?: GcpBytes | null; plaintextCrc32c?: GcpInt64Value | null }, ...unknown[]]
  >
  getCryptoKey(
    request: { name: string },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKey, ...unknown[]]>
  getCryptoKeyVersion(
    request: { name: string },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKeyVersion, ...unknown[]]>
  createCryptoKeyVersion(
    request: { parent: string; cryptoKeyVersion: Record<string, never> },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKeyVersion, ...unknown[]]>
  updateCryptoKeyPrimaryVersion(
    request: { name: string; cryptoKeyVersionId: string },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKey, ...unknown[]]>
  /**
   * All versions of a key (the real client pages on its own). Optional for a
   * client of your own; without it `rotateKey` cannot check an attempt whose
   * answer was lost, and reports it (`KeyRotationError`) instead of
   * rotating again.
   */
  listCryptoKeyVersions?(
    request: { parent: string },
    options: GcpCallOptions,
  ): Promise<readonly [readonly GcpCryptoKeyVersion[], ...unknown[]]>
  close?(): Promise<void>
}

/** Whether a value has the methods of {@link GcpKmsClient} the provider cannot do without. */
export const isGcpKmsClient = (v: unknown): v is GcpKmsClient => {
  const c = v as Partial<Record<keyof GcpKmsClient, unknown>> | null
  return (
    typeof c?.encrypt === 'function' &&
    typeof c.decrypt === 'function' &&
    typeof c.getCryptoKey === 'function' &&
    typeof c.getCryptoKeyVersion === 'function' &&
    typeof c.createCryptoKeyVersion === 'function' &&
    typeof c.updateCryptoKeyPrimaryVersion === 'function'
  )
}
