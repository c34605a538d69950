/**
 * The injected-option schemas are defined once (src/internal/options.ts), so
 * every factory refuses a wrong clock, randomness source or logger with the
 * same message, naming the field and the expected signature.
 */
import { describe, expect, it } from 'vitest'
import { PostgresStore, RateLimiter } from '../../src/http/index.js'
import { ConfigError } from '../../src/index.js'
import { LocalKmsProvider, VaultKmsProviderOptionsSchema } from '../../src/kms/index.js'
import { SBOMGenerator } from '../../src/sbom/index.js'

function configError(build: () => unknown): ConfigError {
  try {
    build()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected ERR_CONFIG_INVALID')
}

const fakePool = { query: async () => ({ rows: [] }), connect: async () => ({}), on: () => {} }

describe('shared option schemas', () => {
  it('a clock that is not a function is refused with its signature, in every factory', () => {
    for (const build of [
      () => new SBOMGenerator({ clock: 5 as never }),
      () => new RateLimiter({ clock: 'now' as never }),
      () => new LocalKmsProvider({ clock: {} as never }),
    ]) {
      expect(configError(build).issues).toEqual([
        { field: 'clock', problem: 'must be a function (() => epoch ms)' },
      ])
    }
  })

  it('randomBytes that is not a function is refused the same way everywhere', () => {
    for (const build of [
      () => new SBOMGenerator({ randomBytes: 1 as never }),
      () => new LocalKmsProvider({ randomBytes: Buffer.alloc(32) as never }),
    ]) {
      expect(configError(build).issues).toEqual([
        { field: 'randomBytes', problem: 'must be a function (size => bytes)' },
      ])
    }
    const vault = VaultKmsProviderOptionsSchema.safeParse({
      endpoint: 'http://127.0.0.1:8200',
      token: 't',
      randomBytes: 'no',
    })
    expect(vault.error?.issues.map((i) => [i.path.join('.'), i.message])).toContainEqual([
      'randomBytes',
      'must be a function (size => bytes)',
    ])
  })

  it('a logger without warn is refused, where it used to be only "Invalid input"', () => {
    for (const build of [
      () => new PostgresStore({ pool: fakePool as never, logger: {} as never }),
      () => new RateLimiter({ logger: console.log as never }),
      () => new LocalKmsProvider({ logger: 'stderr' as never }),
    ]) {
      expect(configError(build).issues).toEqual([
        { field: 'logger', problem: 'must be a logger (warn and error)' },
      ])
    }
  })
})
