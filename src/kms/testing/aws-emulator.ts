/**
 * An AWS KMS emulator speaking the real wire protocol (JSON 1.1 over HTTP,
 * `X-Amz-Target: TrentService.<Action>`) on 127.0.0.1, for testing code that
 * uses `@aws-sdk/client-kms` (and `AwsKmsProvider`) without AWS.
 *
 * Faithful where it matters to a client:
 * - Every request must carry a valid **SigV4** `Authorization` header, verified
 *   here (canonical request, string to sign, signing key chain) against the
 *   configured secret; a wrong secret or a tampered body is refused with
 *   `InvalidSignatureException`, an unknown access key or session token with
 *   `UnrecognizedClientException`.
 * - Errors are `{"__type": ..., "message": ...}` with the statuses real KMS
 *   uses: 400 for client errors (throttling included), 500 for
 *   `KMSInternalException`, 503 for `DependencyTimeoutException`.
 * - Real AES-256-GCM with the encryption context (canonical JSON) as
 *   additional authenticated data, and versioned key material: after
 *   `RotateKeyOnDemand` old ciphertexts still decrypt. On-demand rotations are
 *   capped per key, as AWS caps them.
 * - Keys by id, ARN, alias name or alias ARN, where AWS accepts each.
 * - Every answer carries a `Date` header from the emulator's clock (skewed
 *   by `faults.setClockSkew`), as the SDK reads it to correct its own clock
 *   after `InvalidSignatureException` "Signature expired".
 *
 * Actions: the ones in `AWS_KMS_EMULATOR_ACTIONS` (`./aws/actions.ts`); others answer
 * `UnknownOperationException`.
 *
 * This file is the server (transport, faults, dispatch); its parts are in
 * `./aws/`: SigV4 verification (`sigv4.ts`), the action table
 * (`actions.ts`), the key store (`keys.ts`), request fields (`inputs.ts`)
 * and the JSON 1.1 answers (`wire.ts`).
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Clock, systemClock } from '../../internal/clock.js'
import { type AwsKmsEmulatorAction, createAwsKmsActions } from './aws/actions.js'
import { createAwsKmsKeyStore } from './aws/keys.js'
import { type AwsEmulatorCredentials, verifySigV4 } from './aws/sigv4.js'
import { header, readBody, reply, WireError, wait } from './aws/wire.js'
import { CallCounter, FaultInjector, type KmsEmulator } from './faults.js'

export interface AwsKmsEmulatorOptions {
  /**
   * Region requests must be signed for and ARNs carry.
   * @default 'us-east-1'
   */
  region?: string
  /**
   * Account id in ARNs.
   * @default '111122223333'
   */
  accountId?: string
  /**
   * Credentials accepted; the first is exposed as `emulator.credentials`.
   * @default one freshly generated access key (no session token)
   */
  credentials?: AwsEmulatorCredentials | readonly AwsEmulatorCredentials[]
  /**
   * On-demand rotations allowed per key before `LimitExceededException`
   * (AWS allows 25: RotateKeyOnDemand in the API reference).
   * @default 25
   */
  onDemandRotationLimit?: number
  /**
   * Largest difference between `X-Amz-Date` and the emulator's clock (AWS: 5 minutes).
   * @default 300000
   */
  maxClockSkewMs?: number
  /**
   * Clock for dates, `Date` headers and the signature age check; `faults.setClockSkew`
   * moves the service's time away from it.
   * @default Date.now
   */
  clock?: Clock
}

/** One request as it reached the emulator (after authentication). */
export interface AwsKmsRequestRecord {
  /** `Encrypt`, `Decrypt`, ... */
  readonly action: string
  /** The `KeyId` field, when the request had one. */
  readonly keyId: string | undefined
  /** Names of the top-level fields sent, sorted. */
  readonly fields: readonly string[]
  /** The access key id the request was signed with. */
  readonly accessKeyId: string
}

export interface AwsKmsEmulator extends KmsEmulator {
  /** `http://127.0.0.1:<port>`, for the client's `endpoint`. */
  readonly endpoint: string
  readonly port: number
  readonly region: string
  readonly accountId: string
  /** The first accepted credentials. */
  readonly credentials: AwsEmulatorCredentials
  /** Authenticated requests in arrival order (the plaintext is never recorded). */
  readonly requests: readonly AwsKmsRequestRecord[]
  /** Creates an enabled symmetric key, as `CreateKey` does. */
  createKey(options?: { description?: string }): { keyId: string; arn: string }
  /** Points `alias/<name>` at a key (id or ARN), as `CreateAlias` does. */
  createAlias(aliasName: string, targetKeyId: string): void
  /** Re-points an existing alias, as `UpdateAlias` does. */
  updateAlias(aliasName: string, targetKeyId: string): void
  /** Completed rotations of a key (id or ARN), oldest first, as `ListKeyRotations` lists them. */
  rotations(keyId: string): ReadonlyArray<{ readonly type: 'ON_DEMAND'; readonly date: Date }>
}

/**
 * Starts the emulator on 127.0.0.1 (a free port).
 *
 * @example
 * ```ts
 * import { KMSClient } from '@aws-sdk/client-kms'
 * import { startAwsKmsEmulator } from 'fraiseql-security/kms/testing'
 * const kms = await startAwsKmsEmulator()
 * const { arn } = kms.createKey()
 * const provider = new AwsKmsProvider({ region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials })
 * // ...
 * await kms.close()
 * ```
 */
export async function startAwsKmsEmulator(
  options: AwsKmsEmulatorOptions = {},
): Promise<AwsKmsEmulator> {
  const region = options.region ?? 'us-east-1'
  const accountId = options.accountId ?? '111122223333'
  const clock = options.clock ?? systemClock
  const rotationLimit = options.onDemandRotationLimit ?? 25
  const maxSkewMs = options.maxClockSkewMs ?? 300_000
  const given = options.credentials
  const credentialList: readonly AwsEmulatorCredentials[] =
    given === undefined
      ? [
          {
            accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
            secretAccessKey: randomBytes(30).toString('base64'),
          },
        ]
      : Array.isArray(given)
        ? given
        : [given as AwsEmulatorCredentials]
  const first = credentialList[0]
  if (first === undefined) throw new TypeError('the AWS KMS emulator needs at least one credential')
  const credentials = new Map(credentialList.map((c) => [c.accessKeyId, c]))

  const calls = new CallCounter()
  const faults = new FaultInjector()
  const requests: AwsKmsRequestRecord[] = []
  const closing = new AbortController()
  /** The service's time: the emulator's clock moved by the injected skew. */
  const now = () => clock() + faults.clockSkewMs
  const store = createAwsKmsKeyStore({ region, accountId, now })
  const { createKey, setAlias, resolve, rotationsOf } = store
  const actions = createAwsKmsActions(store, { region, accountId, rotationLimit, now })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req)
    if (body === undefined) {
      req.socket.destroy()
      return
    }
    const target = header(req, 'x-amz-target')
    const action = target?.startsWith('TrentService.')
      ? target.slice('TrentService.'.length)
      : undefined
    calls.increment(action ?? '(none)')

    const fault = faults.next(action ?? '(none)')
    const date = () => new Date(clock() + fault.clockSkewMs)
    if (fault.delayMs > 0) await wait(fault.delayMs, res, closing.signal)
    if (res.destroyed || closing.signal.aborted) return
    // An outage looks like a dead service: the connection drops, no answer.
    if (fault.outage) {
      req.socket.destroy()
      return
    }
    try {
      if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') {
        throw new WireError('UnknownOperationException', undefined, 404)
      }
      const accessKeyId = verifySigV4(req, body, date().getTime(), {
        credentials,
        region,
        maxSkewMs,
      })
      if (fault.fail === 'unavailable') {
        throw new WireError('KMSInternalException', 'An internal error occurred.', 500)
      }
      // KMS sends no Retry-After: a throttled client backs off on its own.
      if (fault.fail === 'throttle') throw new WireError('ThrottlingException', 'Rate exceeded')
      const contentType = header(req, 'content-type')?.split(';')[0]?.trim()
      if (contentType !== 'application/x-amz-json-1.1') {
        throw new WireError('SerializationException', 'Unsupported content type')
      }
      const handler =
        action !== undefined && Object.hasOwn(actions, action)
          ? actions[action as AwsKmsEmulatorAction]
          : undefined
      if (action === undefined || handler === undefined) {
        throw new WireError('UnknownOperationException', undefined)
      }
      let input: unknown
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'))
      } catch {
        throw new WireError(
          'SerializationException',
          'Start of structure or map found where not expected.',
        )
      }
      if (input === null || typeof input !== 'object' || Array.isArray(input)) {
        throw new WireError(
          'SerializationException',
          'Start of structure or map found where not expected.',
        )
      }
      const fields = input as Record<string, unknown>
      requests.push({
        action,
        keyId: typeof fields.KeyId === 'string' ? fields.KeyId : undefined,
        fields: Object.keys(fields).sort(),
        accessKeyId,
      })
      const answer = handler(fields)
      // Done, then the connection drops before the answer: the client cannot tell.
      if (fault.fail === 'reset-after-commit') {
        req.socket.destroy()
        return
      }
      reply(res, 200, answer, date())
    } catch (err) {
      if (err instanceof WireError) {
        reply(
          res,
          err.status,
          { __type: err.type, ...(err.omitMessage ? {} : { message: err.message }) },
          date(),
        )
      } else {
        reply(
          res,
          500,
          { __type: 'KMSInternalException', message: 'An internal error occurred.' },
          date(),
        )
      }
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy())
  })
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolveListen()
    })
  })
  const port = (server.address() as AddressInfo).port

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    region,
    accountId,
    credentials: first,
    calls,
    faults,
    get requests() {
      return [...requests]
    },
    createKey(o = {}) {
      const key = createKey(o.description ?? '')
      return { keyId: key.id, arn: key.arn }
    },
    createAlias(name, target) {
      setAlias(name, target, false)
    },
    updateAlias(name, target) {
      setAlias(name, target, true)
    },
    rotations(keyId) {
      return rotationsOf(resolve(keyId, false)).map((r) => ({
        type: 'ON_DEMAND' as const,
        date: new Date(r.at),
      }))
    },
    close() {
      closing.abort()
      return new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
    },
  }
}
