/**
 * Bad input gives a typed error whose code is stable and whose message names
 * the file and says what is wrong with it (and where, for broken JSON).
 */
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SecurityError } from '../../src/errors.js'
import {
  LockfileNotFoundError,
  MalformedLockfileError,
  MalformedManifestError,
  SBOMError,
  SBOMGenerator,
  UnsupportedLockfileError,
} from '../../src/sbom/index.js'
import { rejection } from '../helpers/rejection.js'
import { fixture, removeTempDirs, tempDir } from './helpers.js'

afterAll(removeTempDirs)

async function failure(path: string): Promise<SBOMError> {
  const err = await rejection(new SBOMGenerator().generate(path))
  expect(err).toBeInstanceOf(SBOMError)
  expect(err).toBeInstanceOf(SecurityError)
  return err as SBOMError
}

describe('SBOM input errors', () => {
  it('a directory without a lockfile: ERR_SBOM_LOCKFILE_NOT_FOUND naming the directory', async () => {
    const dir = tempDir('fsl-sbom-empty-')
    writeFileSync(join(dir, 'package.json'), '{"name":"x"}')
    const err = await failure(dir)
    expect(err).toBeInstanceOf(LockfileNotFoundError)
    expect(err.code).toBe('ERR_SBOM_LOCKFILE_NOT_FOUND')
    expect(err.file).toBe(dir)
    expect(err.message).toContain(dir)
    expect(err.message).toContain('package-lock.json')
  })

  it('a path that does not exist: ERR_SBOM_LOCKFILE_NOT_FOUND', async () => {
    const missing = join(tmpdir(), 'fsl-sbom-does-not-exist', 'package-lock.json')
    const err = await failure(missing)
    expect(err.code).toBe('ERR_SBOM_LOCKFILE_NOT_FOUND')
    expect(err.message).toBe(`${missing}: no such file or directory`)
  })

  it('broken JSON: ERR_SBOM_LOCKFILE_MALFORMED with the line and column', async () => {
    const file = fixture('malformed', 'not-json.json')
    const err = await failure(file)
    expect(err).toBeInstanceOf(MalformedLockfileError)
    expect(err.code).toBe('ERR_SBOM_LOCKFILE_MALFORMED')
    expect(err.message).toMatch(
      new RegExp(
        `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is not valid JSON at line 4, column 5 `,
      ),
    )
  })

  it.each([
    ['empty.json', 'is empty, not JSON'],
    ['array.json', 'is not a JSON object'],
    ['no-packages.json', 'has no "packages" object'],
    ['bad-entry.json', 'packages["node_modules/a"].version: expected a string'],
    ['bad-deps.json', 'packages[""].dependencies.a: expected a version range string'],
    ['link-no-target.json', 'packages["node_modules/a"]: a link without "resolved"'],
  ])('%s: ERR_SBOM_LOCKFILE_MALFORMED saying "%s"', async (name, problem) => {
    const file = fixture('malformed', name)
    const err = await failure(file)
    expect(err.code).toBe('ERR_SBOM_LOCKFILE_MALFORMED')
    expect(err.message.startsWith(`${file}: `)).toBe(true)
    expect(err.message).toContain(problem)
  })

  it.each([
    ['v1.json', 'has lockfileVersion 1'],
    ['v4.json', 'has lockfileVersion 4'],
    ['no-version.json', 'has no lockfileVersion'],
  ])('%s: ERR_SBOM_LOCKFILE_UNSUPPORTED saying "%s" and how to regenerate', async (name, found) => {
    const file = fixture('malformed', name)
    const err = await failure(file)
    expect(err).toBeInstanceOf(UnsupportedLockfileError)
    expect(err.code).toBe('ERR_SBOM_LOCKFILE_UNSUPPORTED')
    expect(err.message).toContain(`${file}: ${found}`)
    expect(err.message).toContain('--lockfile-version 3')
  })

  it('a malformed root package.json: ERR_SBOM_MANIFEST_MALFORMED naming it', async () => {
    const err = await failure(fixture('bad-manifest'))
    expect(err).toBeInstanceOf(MalformedManifestError)
    expect(err.code).toBe('ERR_SBOM_MANIFEST_MALFORMED')
    expect(err.file).toBe(fixture('bad-manifest', 'package.json'))
    expect(err.message).toContain('package.json: is not valid JSON at line 1')
  })

  it('a lockfile with no package.json beside it: the root is described from the lockfile', async () => {
    const dir = tempDir('fsl-sbom-nopkg-')
    writeFileSync(
      join(dir, 'package-lock.json'),
      JSON.stringify({
        name: 'only-lock',
        version: '9.9.9',
        lockfileVersion: 3,
        packages: { '': { name: 'only-lock', version: '9.9.9', license: 'MIT' } },
      }),
    )
    const sbom = await new SBOMGenerator().generate(dir)
    expect(sbom.metadata.component).toMatchObject({ name: 'only-lock', version: '9.9.9' })
    expect(sbom.metadata.component.licenses.map(String)).toEqual(['MIT'])
  })
})

describe('SBOMGenerator options', () => {
  it('a bad option: ERR_CONFIG_INVALID naming the field', () => {
    for (const [options, field] of [
      [{ includeDev: 'yes' }, 'includeDev'],
      [{ sourceDateEpoch: -1 }, 'sourceDateEpoch'],
      [{ rootComponentType: 'program' }, 'rootComponentType'],
      [{ unknown: true }, 'unknown'],
    ] as const) {
      expect(() => new SBOMGenerator(options as never)).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringContaining(`\`${field}\``),
        }),
      )
    }
  })

  it('a malformed SOURCE_DATE_EPOCH: ERR_CONFIG_INVALID naming the variable, never its value', () => {
    const saved = process.env.SOURCE_DATE_EPOCH
    try {
      for (const bad of ['yesterday', '-5', '1.5', '99999999999999']) {
        process.env.SOURCE_DATE_EPOCH = bad
        let err: unknown
        try {
          new SBOMGenerator()
        } catch (e) {
          err = e
        }
        expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
        expect((err as Error).message).toContain('SOURCE_DATE_EPOCH')
        expect((err as Error).message).not.toContain(bad)
      }
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH
      else process.env.SOURCE_DATE_EPOCH = saved
    }
  })
})
