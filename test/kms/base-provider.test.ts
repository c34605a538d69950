/**
 * The template itself, on a scripted in-memory provider: retries, the one
 * deadline, error finalization, postconditions and the span. (Unit level:
 * the scripted provider is test code, not a mock of a real back end.)
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { describe, expect, it } from 'vitest'
import type {
  DataKeyResult,
  EncryptResult,
  KeyDescription,
  RotationPolicy,
} from '../../src/kms/index.js'
import {
  BaseKmsProvider,
  type BaseKmsProviderOptions,
  DecryptionError,
  EncryptionError,
  KeyNotFoundError,
  KmsError,
  ProviderConnectionError,
} from '../../src/kms/index.js'

type Step = () => Promise<unknown>

class ScriptedProvider extends BaseKmsProvider {
  calls = 0
  constructor(
    private readonly script: Step[],
    options: BaseKmsProviderOptions = {},
  ) {
    super('scripted', { retryBaseDelayMs: 1, retryMaxDelayMs: 2, timeoutMs: 2000, ...options })
  }
  #next(): Promise<unknown> {
    const step = this.script[Math.min(this.calls, this.script.length - 1)]!
    this.calls++
    return step()
  }
  protected async doEncrypt(): Promise<EncryptResult> {
    return (await this.#next()) as EncryptResult
  }
  protected async doDecrypt(): Promise<Uint8Array> {
    return (await this.#next()) as Uint8Array
  }
  protected async doGenerateDataKey(): Promise<DataKeyResult> {
    return (await this.#next()) as DataKeyResult
  }
  protected async doRotateKey(): Promise<KeyDescription> {
    return (await this.#next()) as KeyDescription
  }
  protected async doGetKeyInfo(): Promise<KeyDescription> {
    return (await this.#next()) as KeyDescription
  }
  protected async doGetRotationPolicy(): Promise<RotationPolicy> {
    return (await this.#next()) as RotationPolicy
  }
}

const ok: Step = async () => ({ ciphertext: new Uint8Array([7, 7, 7]), algorithm: 'X' })
const flaky: Step = async () => {
  throw new ProviderConnectionError('unavailable', { provider: 'scripted' })
}
const reset: Step = async () => {
  throw Object.assign(new Error('socket hang up'), {
    code: 'ECONNRESET',
    config: { headers: { 'X-Vault-Token': 's.secret' } },
  })
}
const hang: Step = () => new Promise(() => {})

describe('BaseKmsProvider', () => {
  it('retries retryable failures (ours and network resets) until one succeeds', async () => {
    const p = new ScriptedProvider([flaky, reset, ok])
    const enc = await p.encrypt('hello', 'k')
    expect(p.calls).toBe(3)
    expect(enc.keyReference.qualifiedId).toBe('scripted:k')
  })

  it('stops after maxAttempts with ProviderConnectionError, keeping no raw SDK error', async () => {
    const p = new ScriptedProvider([reset], { maxAttempts: 3 })
    const err = await p.encrypt('hello', 'k').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProviderConnectionError)
    expect(p.calls).toBe(3)
    expect(JSON.stringify((err as Error).cause)).not.toContain('s.secret')
    expect((err as Error).cause).toEqual({ service: 'scripted', code: 'ECONNRESET' })
  })

  it('never retries a failure that is not retryable', async () => {
    const p = new ScriptedProvider([
      async () => Promise.reject(new KeyNotFoundError({ provider: 'scripted' })),
    ])
    await expect(p.encrypt('x', 'k')).rejects.toBeInstanceOf(KeyNotFoundError)
    expect(p.calls).toBe(1)
  })

  it('bounds a hanging call by timeoutMs and reports a timeout', async () => {
    const p = new ScriptedProvider([hang], { timeoutMs: 50 })
    const err = await p.encrypt('x', 'k').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProviderConnectionError)
    expect((err as ProviderConnectionError).reason).toBe('timeout')
  })

  it('turns any decrypt failure but a missing, disabled or forbidden key into the opaque DecryptionError', async () => {
    const p = new ScriptedProvider([
      async () => Promise.reject(new Error('cipher: message authentication failed')),
    ])
    const enc = await new ScriptedProvider([ok]).encrypt('x', 'k')
    const err = await p.decrypt(enc).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DecryptionError)
    expect((err as Error).message).toBe('Decryption failed')
    expect((err as Error).cause).toBeUndefined()
  })

  it('turns a generic encrypt failure into EncryptionError with a sanitized cause', async () => {
    const p = new ScriptedProvider([
      async () =>
        Promise.reject(Object.assign(new Error('boom plaintext=hello'), { code: 'EWEIRD' })),
    ])
    const err = await p.encrypt('hello', 'k').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EncryptionError)
    expect((err as Error).message).not.toContain('hello')
    expect((err as Error).cause).toEqual({ service: 'scripted', code: 'EWEIRD' })
  })

  it('checks postconditions: an empty ciphertext or one equal to the plaintext is refused', async () => {
    const echo = new ScriptedProvider([
      async () => ({ ciphertext: Buffer.from('hello'), algorithm: 'X' }),
    ])
    await expect(echo.encrypt('hello', 'k')).rejects.toBeInstanceOf(EncryptionError)
    const short = new ScriptedProvider([
      async () => ({
        plaintextKey: new Uint8Array(16),
        encryptedKey: new Uint8Array([1]),
        algorithm: 'X',
      }),
    ])
    await expect(short.generateDataKey('k')).rejects.toBeInstanceOf(EncryptionError)
  })

  it('zeroes the plaintext data key the provider returned once copied', async () => {
    const raw = new Uint8Array(32).fill(5)
    const p = new ScriptedProvider([
      async () => ({ plaintextKey: raw, encryptedKey: new Uint8Array([1, 2]), algorithm: 'X' }),
    ])
    const pair = await p.generateDataKey('k', { a: 'b' })
    expect(raw.every((b) => b === 0)).toBe(true)
    expect(pair.plaintextKey.every((b) => b === 5)).toBe(true)
    expect(pair.toEncryptedData().context).toEqual({ a: 'b' })
  })

  it('checks inputs before any call: key id, context shape, plaintext size, provider of the reference', async () => {
    const p = new ScriptedProvider([ok])
    await expect(p.encrypt('x', 'has space')).rejects.toBeInstanceOf(KmsError)
    await expect(p.encrypt('x', 'k', { a: 1 } as never)).rejects.toBeInstanceOf(KmsError)
    await expect(p.encrypt(new Uint8Array(64 * 1024 + 1), 'k')).rejects.toThrow(/maximum/)
    const foreign = await new ScriptedProvider([ok], { name: 'other' }).encrypt('x', 'k')
    await expect(p.decrypt(foreign)).rejects.toThrow(/belongs to provider "other"/)
    expect(p.calls).toBe(0)
  })

  it('records one CLIENT span per call, with attempts and error.type, and no key material', async () => {
    const exporter = new InMemorySpanExporter()
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    })
    const tracer = provider.getTracer('test')
    const p = new ScriptedProvider([flaky, ok], { tracer })
    await p.encrypt('top secret', 'k')
    const q = new ScriptedProvider(
      [async () => Promise.reject(new KeyNotFoundError({ provider: 'scripted' }))],
      { tracer },
    )
    await q.getKeyInfo('missing').catch(() => {})
    const [a, b] = exporter.getFinishedSpans()
    expect(a!.name).toBe('kms encrypt')
    expect(a!.kind).toBe(SpanKind.CLIENT)
    expect(a!.attributes).toEqual({
      'kms.provider': 'scripted',
      'kms.operation': 'encrypt',
      'kms.key_id': 'k',
      'kms.attempts': 2,
    })
    expect(b!.status.code).toBe(SpanStatusCode.ERROR)
    expect(b!.attributes['error.type']).toBe('ERR_KMS_KEY_NOT_FOUND')
    expect(JSON.stringify([a!.attributes, a!.events, b!.attributes, b!.events])).not.toContain(
      'top secret',
    )
  })
})

/** Records the delays asked for; waits none of them. */
function sleeps() {
  const asked: number[] = []
  return { asked, sleep: async (ms: number) => void asked.push(ms) }
}

describe('BaseKmsProvider backoff and hints', () => {
  const throttled =
    (retryAfterMs?: number): Step =>
    async () => {
      throw new ProviderConnectionError('throttled', {
        provider: 'scripted',
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      })
    }

  it("waits at least the service's hint, even beyond retryMaxDelayMs", async () => {
    const s = sleeps()
    const p = new ScriptedProvider([throttled(3000), ok], { sleep: s.sleep, timeoutMs: 10_000 })
    await p.encrypt('x', 'k')
    expect(s.asked).toEqual([3000])
  })

  it('a hint that does not fit in the deadline ends the call at once', async () => {
    const s = sleeps()
    const p = new ScriptedProvider([throttled(5000), ok], { sleep: s.sleep, timeoutMs: 2000 })
    const err = await p.encrypt('x', 'k').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_KMS_PROVIDER_UNAVAILABLE', reason: 'throttled' })
    expect(s.asked).toEqual([])
    expect(p.calls).toBe(1)
  })

  it('throttling without a hint backs off from throttleBaseDelayMs; other failures from retryBaseDelayMs', async () => {
    const s = sleeps()
    const options = {
      sleep: s.sleep,
      random: () => 0.5,
      retryBaseDelayMs: 10,
      retryMaxDelayMs: 5000,
      throttleBaseDelayMs: 400,
      timeoutMs: 20_000,
    }
    await new ScriptedProvider([throttled(), throttled(), ok], options).encrypt('x', 'k')
    await new ScriptedProvider([flaky, flaky, ok], options).encrypt('x', 'k')
    expect(s.asked).toEqual([200, 400, 5, 10])
  })

  it('rejects a bad throttleBaseDelayMs with ERR_CONFIG_INVALID', () => {
    expect(() => new ScriptedProvider([ok], { throttleBaseDelayMs: -1 })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('throttleBaseDelayMs'),
      }),
    )
  })
})

/** A back end whose key has a version counter, and a rotate step scripted per attempt. */
class RotatingProvider extends ScriptedProvider {
  version = 1
  rotations = 0
  stateReads = 0
  constructor(
    private readonly steps: Array<'ok' | 'lost' | 'refused' | 'throttled'>,
    private readonly marker = true,
  ) {
    super([ok])
  }
  protected override async doRotationState() {
    this.stateReads++
    return {
      marker: this.marker ? String(this.version) : undefined,
      key: {
        keyId: 'k',
        state: 'enabled' as const,
        currentVersion: this.version,
        versions: this.version,
      },
    }
  }
  protected override async doRotateKey() {
    const step = this.steps.shift() ?? 'ok'
    if (step === 'throttled')
      throw new ProviderConnectionError('throttled', { provider: 'scripted' })
    if (step === 'refused')
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    this.rotations++
    this.version++
    // The change is made; the answer is lost on the way back.
    if (step === 'lost') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
    return {
      keyId: 'k',
      state: 'enabled' as const,
      currentVersion: this.version,
      versions: this.version,
    }
  }
}

describe('BaseKmsProvider rotateKey is never blindly retried', () => {
  it('an answer lost after the rotation: the state read shows it, no second rotation', async () => {
    const p = new RotatingProvider(['lost'])
    const info = await p.rotateKey('k')
    expect(p.rotations).toBe(1)
    expect(info.currentVersion).toBe(2)
    expect(p.stateReads).toBe(2) // before, and after the lost answer
  })

  it('a refusal that proves nothing was sent (throttled, connection refused) is retried without a second read', async () => {
    for (const step of ['throttled', 'refused'] as const) {
      const p = new RotatingProvider([step])
      const info = await p.rotateKey('k')
      expect(p.rotations).toBe(1)
      expect(info.currentVersion).toBe(2)
      expect(p.stateReads).toBe(1)
    }
  })

  it('a back end without a marker: an uncertain attempt is reported, never repeated', async () => {
    const p = new RotatingProvider(['lost'], false)
    const err = await p.rotateKey('k').catch((e: unknown) => e)
    expect(err).toMatchObject({
      code: 'ERR_KMS_ROTATION_FAILED',
      cause: { code: 'rotation_outcome_unknown' },
    })
    expect(p.rotations).toBe(1)
  })

  it('two rotateKey calls are two rotations', async () => {
    const p = new RotatingProvider([])
    await p.rotateKey('k')
    await p.rotateKey('k')
    expect(p.rotations).toBe(2)
  })
})
