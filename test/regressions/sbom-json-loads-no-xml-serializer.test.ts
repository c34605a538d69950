/**
 * CycloneDX JSON output once required the library's `Serialize` subpath,
 * which requires its XML serializer and so xmlbuilder2 and its DOM (some
 * 170 modules) at once: most of a CLI run's start-up went to code JSON
 * output never calls. JSON loads the JSON serializer's own files; they must
 * stay the very classes the published subpath exports.
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { CYCLONEDX_JSON_FILES } from '../../src/sbom/cyclonedx.js'
import { SBOMGenerator, toCycloneDX } from '../../src/sbom/index.js'
import { fixture } from '../sbom/helpers.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const require = createRequire(import.meta.url)

describe('CycloneDX JSON output loads no XML serializer', () => {
  it('the JSON serializer files are the classes the Serialize subpath exports', () => {
    const base = dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json'))
    const Serialize = require('@cyclonedx/cyclonedx-library/Serialize')
    expect(require(join(base, CYCLONEDX_JSON_FILES.serializer)).JsonSerializer).toBe(
      Serialize.JsonSerializer,
    )
    expect(require(join(base, CYCLONEDX_JSON_FILES.normalize)).Normalize).toBe(
      Serialize.JSON.Normalize,
    )
  })

  it('a fresh process writing CycloneDX JSON never requires xmlbuilder2', async () => {
    const sbomEntry = new URL('../../src/sbom/index.ts', import.meta.url).href
    // tsx runs the sources as a user's process would run the build.
    const script = `
      const { SBOMGenerator, toCycloneDX } = await import(${JSON.stringify(sbomEntry)})
      const { createRequire } = await import('node:module')
      const sbom = await new SBOMGenerator({ includeDev: true }).generate(${JSON.stringify(fixture('small'))})
      await toCycloneDX(sbom, 'json')
      const loaded = Object.keys(createRequire(import.meta.url).cache)
      console.log(JSON.stringify(loaded.filter((f) => /xmlbuilder2|@oozcitak|js-yaml/.test(f)).length))
    `
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), '--input-type=module', '-e', script],
      { cwd: ROOT },
    )
    expect(JSON.parse(stdout.trim())).toBe(0)
  })

  it('XML output still works after JSON output in the same process', async () => {
    const sbom = await new SBOMGenerator().generate(fixture('small'))
    expect((await toCycloneDX(sbom, 'json')).startsWith('{')).toBe(true)
    expect((await toCycloneDX(sbom, 'xml')).startsWith('<?xml')).toBe(true)
  })
})
