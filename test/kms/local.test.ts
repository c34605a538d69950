import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { LocalKmsProvider } from '../../src/kms/index.js'
import { describeKmsProviderContract } from '../../src/kms/testing/index.js'

describeKmsProviderContract(
  'LocalKmsProvider',
  async () => ({
    provider: new LocalKmsProvider({ timeoutMs: 1500 }),
    keyId: 'app',
    missingKeyId: 'never-created',
  }),
  { kind: 'local' },
  { describe, it, expect, afterAll },
)

describe('LocalKmsProvider', () => {
  it('works with no options (in-memory keys, auto-created)', async () => {
    const kms = new LocalKmsProvider()
    const enc = await kms.encrypt('x', 'k')
    expect(enc.keyReference.qualifiedId).toBe('local:k')
    expect(kms.keyIds()).toEqual(['k'])
  })

  it('does not create keys on decrypt, rotate or describe, nor on encrypt with autoCreateKeys false', async () => {
    const kms = new LocalKmsProvider({ autoCreateKeys: false })
    await expect(kms.encrypt('x', 'k')).rejects.toMatchObject({ code: 'ERR_KMS_KEY_NOT_FOUND' })
    await expect(kms.rotateKey('k')).rejects.toMatchObject({ code: 'ERR_KMS_KEY_NOT_FOUND' })
    expect(kms.keyIds()).toEqual([])
  })

  it('persists keys in a 0600 key file, so a new process decrypts old data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fsl-kms-'))
    const keyFile = join(dir, 'nested', 'keys.json')
    const a = new LocalKmsProvider({ keyFile })
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const enc = await a.encrypt('persisted', 'app', { t: '1' })
    await a.rotateKey('app')
    const enc2 = await a.encrypt('after rotation', 'app')
    const b = new LocalKmsProvider({ keyFile })
    expect(Buffer.from(await b.decrypt(enc)).toString()).toBe('persisted')
    expect(Buffer.from(await b.decrypt(enc2)).toString()).toBe('after rotation')
    expect((await b.getKeyInfo('app')).currentVersion).toBe(2)
    expect(JSON.parse(readFileSync(keyFile, 'utf8')).format).toBe('fraiseql-local-kms')
  })

  it('accepts master keys from options, and rejects keys that are not 32 bytes', async () => {
    const key = Buffer.alloc(32, 7)
    const a = new LocalKmsProvider({ keys: { app: key } })
    const b = new LocalKmsProvider({ keys: { app: key.toString('base64') } })
    expect(Buffer.from(await b.decrypt(await a.encrypt('shared', 'app'))).toString()).toBe('shared')
    expect(() => new LocalKmsProvider({ keys: { app: Buffer.alloc(16) } })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('keys.app'),
      }),
    )
  })

  it.each(['production', 'Production', ' PRODUCTION '])(
    'refuses to start with NODE_ENV=%j unless allowed, then warns once that keys stay on this machine',
    (env) => {
      vi.stubEnv('NODE_ENV', env)
      try {
        const logger = { warn: vi.fn(), error: vi.fn() }
        expect(() => new LocalKmsProvider({ logger })).toThrow(
          expect.objectContaining({
            code: 'ERR_CONFIG_INVALID',
            message: expect.stringContaining('allowInProduction'),
          }),
        )
        expect(logger.warn).not.toHaveBeenCalled()
        expect(() => new LocalKmsProvider({ allowInProduction: true, logger })).not.toThrow()
        expect(logger.warn).toHaveBeenCalledTimes(1)
        expect(logger.warn.mock.calls[0]?.[1]).toMatch(/in production/)
      } finally {
        vi.unstubAllEnvs()
      }
    },
  )

  it('rejects a corrupt key file with ERR_CONFIG_INVALID naming keyFile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fsl-kms-'))
    const keyFile = join(dir, 'keys.json')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(keyFile, '{"not":"ours"}', { mode: 0o600 })
    expect(() => new LocalKmsProvider({ keyFile })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('keyFile'),
      }),
    )
  })
})
