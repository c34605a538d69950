/**
 * Issue 21, item 6: `randomBytes` is the source of every key and pepper;
 * injected, it is a test fixture (deterministic keys), and a production
 * process given one would mint guessable keys. It is refused, typed, when
 * `environment` or `NODE_ENV` says production.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, expect, it, vi } from 'vitest'
import { ApiKeyManager } from '../../src/api-keys/index.js'
import { ConfigError } from '../../src/errors.js'
import { KeyManager, LocalKmsProvider } from '../../src/kms/index.js'

const quiet = { warn: () => {}, error: () => {} }
// Built before NODE_ENV is stubbed: LocalKmsProvider itself refuses production.
const keyManager = new KeyManager({
  providers: { local: new LocalKmsProvider({ keys: { app: randomBytes(32) } }) },
  defaultProvider: 'local',
  defaultKeyId: 'app',
  logger: quiet,
})
const fixed = (size: number) => new Uint8Array(size).fill(7)

afterEach(() => {
  vi.unstubAllEnvs()
})

function refusal(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

it("an injected randomBytes is refused with environment: 'production'", () => {
  const err = refusal(
    () =>
      new ApiKeyManager({
        keyManager,
        randomBytes: fixed,
        environment: 'production',
        logger: quiet,
      }),
  )
  expect(err.code).toBe('ERR_CONFIG_INVALID')
  expect(err.issues.map((i) => i.field)).toEqual(['randomBytes'])
})

it.each(['production', ' Production '])(
  'an injected randomBytes is refused with NODE_ENV=%j',
  (env) => {
    vi.stubEnv('NODE_ENV', env)
    const err = refusal(() => new ApiKeyManager({ keyManager, randomBytes: fixed, logger: quiet }))
    expect(err.code).toBe('ERR_CONFIG_INVALID')
  },
)

it('the environment option wins over NODE_ENV, and production without randomBytes starts', async () => {
  vi.stubEnv('NODE_ENV', 'production')
  const test = new ApiKeyManager({
    keyManager,
    randomBytes: fixed,
    environment: 'test',
    logger: quiet,
  })
  await test.close()
  const prod = new ApiKeyManager({ keyManager, logger: quiet })
  const { key } = await prod.create({ name: 'real' })
  expect((await prod.validate(key)).permissions).toEqual([])
  await prod.close()
})
