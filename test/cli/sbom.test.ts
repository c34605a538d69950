/**
 * `fraiseql-security sbom`: flags, output to stdout or a file, help, exit
 * codes (0 written, 1 bad input, 2 bad command line) with errors on stderr.
 * Most cases run the driver in-process with injected I/O; the built bin is
 * also run as a real process, as users run it.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import {
  cycloneDxJsonErrors,
  cycloneDxXmlErrors,
  fixture,
  removeTempDirs,
  spdxErrors,
  tempDir,
} from '../sbom/helpers.js'
import { cli as runner } from './run.js'

afterAll(removeTempDirs)

const execFileAsync = promisify(execFile)

/** The CLI in-process, run in the small fixture unless told otherwise. */
const cli = (args: string[], env: Record<string, string> = {}, cwd = fixture('small')) =>
  runner(args, env, cwd)

describe('fraiseql-security sbom', () => {
  it('writes CycloneDX 1.6 JSON of the current directory to stdout by default, exit 0', async () => {
    const run = await cli(['sbom'])
    expect(run.code).toBe(0)
    expect(run.stderr).toBe('')
    expect(JSON.parse(run.stdout)).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6' })
    expect(await cycloneDxJsonErrors(run.stdout)).toBeNull()
  })

  it('--format spdx writes SPDX 2.3 JSON', async () => {
    const run = await cli(['sbom', '--format', 'spdx'])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ spdxVersion: 'SPDX-2.3' })
    expect(spdxErrors(run.stdout)).toEqual([])
  })

  it('--output-format xml writes CycloneDX XML', async () => {
    const run = await cli(['sbom', '--output-format', 'xml'])
    expect(run.code).toBe(0)
    expect(run.stdout.startsWith('<?xml')).toBe(true)
    expect(await cycloneDxXmlErrors(run.stdout)).toEqual([])
  })

  it('--include-dev adds the dev-only packages', async () => {
    const names = (text: string) =>
      (JSON.parse(text) as { components: { name: string }[] }).components.map((c) => c.name)
    expect(names((await cli(['sbom'])).stdout)).not.toContain('tester')
    expect(names((await cli(['sbom', '--include-dev'])).stdout)).toContain('tester')
  })

  it('takes the project path as its argument, relative to the working directory', async () => {
    const run = await cli(['sbom', 'v2'], {}, fixture())
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout).metadata.component.name).toBe('v2-app')
  })

  it('--output writes the file (and no temporary file is left), a summary goes to stderr', async () => {
    const dir = tempDir('fsl-cli-')
    const run = await cli([
      'sbom',
      '-f',
      'spdx',
      '-o',
      join(dir, 'sbom.spdx.json'),
      fixture('small'),
    ])
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(/wrote .*sbom\.spdx\.json \(SPDX 2\.3 JSON, 6 components\)/)
    expect(spdxErrors(readFileSync(join(dir, 'sbom.spdx.json'), 'utf8'))).toEqual([])
    expect(readdirSync(dir)).toEqual(['sbom.spdx.json'])
  })

  it('SOURCE_DATE_EPOCH from the environment makes the output byte-identical', async () => {
    const env = { SOURCE_DATE_EPOCH: '1700000000' }
    const a = await cli(['sbom'], env)
    const b = await cli(['sbom'], env)
    expect(b.stdout).toBe(a.stdout)
    expect(JSON.parse(a.stdout).metadata.timestamp).toBe('2023-11-14T22:13:20.000Z')
  })

  it('--help prints the usage with every flag, exit 0', async () => {
    const run = await cli(['sbom', '--help'])
    expect(run.code).toBe(0)
    for (const flag of [
      '--format',
      '--output-format',
      '--output',
      '--include-dev',
      'SOURCE_DATE_EPOCH',
    ]) {
      expect(run.stdout).toContain(flag)
    }
    expect((await cli(['help', 'sbom'])).stdout).toBe(run.stdout)
  })

  it.each([
    [['sbom', '--format', 'swid'], '--format must be one of cyclonedx, spdx'],
    [['sbom', '--output-format', 'yaml'], '--output-format must be one of json, xml'],
    [
      ['sbom', '--format', 'spdx', '--output-format', 'xml'],
      '--output-format xml is for CycloneDX only',
    ],
    [['sbom', '--frobnicate'], "Unknown option '--frobnicate'"],
    [['sbom', 'a', 'b'], 'expected at most one path, got 2'],
    [['sbom', '--output'], "Option '-o, --output <value>' argument missing"],
  ])('%o: usage error on stderr, exit 2', async (args, message) => {
    const run = await cli(args)
    expect(run.code).toBe(2)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain(`fraiseql-security sbom: ${message}`)
    expect(run.stderr).toContain('See `fraiseql-security sbom --help`.')
  })

  it('bad input: the error (file, problem, code) on stderr, nothing on stdout, exit 1', async () => {
    const file = fixture('malformed', 'v1.json')
    const run = await cli(['sbom', file])
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain(`fraiseql-security sbom: ${file}: has lockfileVersion 1`)
    expect(run.stderr).toContain('[ERR_SBOM_LOCKFILE_UNSUPPORTED]')
  })

  it('a malformed SOURCE_DATE_EPOCH is refused, exit 1', async () => {
    const run = await cli(['sbom'], { SOURCE_DATE_EPOCH: 'soon' })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('SOURCE_DATE_EPOCH')
    expect(run.stderr).toContain('[ERR_CONFIG_INVALID]')
  })

  it('an output file that cannot be written: exit 1 naming it', async () => {
    const target = join(tmpdir(), 'fsl-no-such-dir', 'x', 'sbom.json')
    const run = await cli(['sbom', '-o', target])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain(`${target}: cannot be written (ENOENT)`)
  })
})

describe('fraiseql-security (driver)', () => {
  it('no command: the command list on stderr, exit 2', async () => {
    const run = await cli([])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Usage: fraiseql-security <command>')
    expect(run.stderr).toMatch(/^\s+sbom\s+/m)
  })

  it('--help: the command list on stdout, exit 0; --version: the package version', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('sbom')
    const version = await cli(['--version'])
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    expect(version.stdout).toBe(`${pkg.version}\n`)
  })

  it('an unknown command: stderr names it and the known ones, exit 2', async () => {
    const run = await cli(['sbomb'])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/unknown command "sbomb"; commands: (\w+, )*sbom\b/)
  })
})

const bin = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url))

describe.skipIf(!existsSync(bin))('the built bin (dist/cli/index.js, after npm run build)', () => {
  it('starts with a node shebang', () => {
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
  })

  it('runs as a process: stdout carries the SBOM, exit 0', async () => {
    const { stdout } = await execFileAsync(
      process.execPath,
      [bin, 'sbom', '--format', 'spdx', fixture('v2')],
      {
        timeout: 30_000,
      },
    )
    expect(JSON.parse(stdout).name).toBe('v2-app@0.1.0')
  })

  it('runs as a process: exit 1 with the error on stderr', async () => {
    const err = await execFileAsync(
      process.execPath,
      [bin, 'sbom', fixture('malformed', 'array.json')],
      {
        timeout: 30_000,
      },
    ).catch((e: { code: number; stdout: string; stderr: string }) => e)
    expect(err).toMatchObject({ code: 1, stdout: '' })
    expect((err as { stderr: string }).stderr).toContain(
      'is not a JSON object [ERR_SBOM_LOCKFILE_MALFORMED]',
    )
  })

  it('runs as a process: exit 2 for a usage error', async () => {
    const err = await execFileAsync(process.execPath, [bin, 'sbom', '--nope'], {
      timeout: 30_000,
    }).catch((e: { code: number }) => e)
    expect(err).toMatchObject({ code: 2 })
  })
})
