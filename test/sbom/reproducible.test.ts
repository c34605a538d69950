/**
 * Reproducible mode (SOURCE_DATE_EPOCH): the same lockfile gives
 * byte-identical documents wherever it is, and anything that changes the
 * content changes the serial number. Outside it, time and randomness come
 * from the injected clock and random source.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SBOMGenerator, type SBOMOutputOptions } from '../../src/sbom/index.js'
import { fixture, materialize, removeTempDirs } from './helpers.js'

afterAll(removeTempDirs)

const OUTPUTS: SBOMOutputOptions[] = [
  { format: 'cyclonedx', outputFormat: 'json' },
  { format: 'cyclonedx', outputFormat: 'xml' },
  { format: 'spdx', outputFormat: 'json' },
]

const UUID_V5 = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const UUID_V4 = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let saved: string | undefined
beforeEach(() => {
  saved = process.env.SOURCE_DATE_EPOCH
})
afterEach(() => {
  if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH
  else process.env.SOURCE_DATE_EPOCH = saved
})

async function render(dir: string, output: SBOMOutputOptions, includeDev = false): Promise<string> {
  const generator = new SBOMGenerator({ includeDev })
  return generator.serialize(await generator.generate(dir), output)
}

describe('reproducible mode', () => {
  it.each(OUTPUTS)(
    'SOURCE_DATE_EPOCH makes %o byte-identical across runs and directories',
    async (output) => {
      process.env.SOURCE_DATE_EPOCH = '1700000000'
      const a = await render(materialize('small'), output)
      const b = await render(materialize('small'), output)
      expect(b).toBe(a)
      expect(a).toContain(
        output.format === 'spdx' ? '2023-11-14T22:13:20Z' : '2023-11-14T22:13:20.000Z',
      )
    },
  )

  it('fixes the timestamp at the epoch and derives a version 5 UUID from the content', async () => {
    const sbom = await new SBOMGenerator({ sourceDateEpoch: 1_700_000_000 }).generate(
      fixture('small'),
    )
    expect(sbom.metadata.timestamp.toISOString()).toBe('2023-11-14T22:13:20.000Z')
    expect(sbom.serialNumber).toMatch(UUID_V5)
  })

  it('a different epoch, content or selection gives a different serial number', async () => {
    const serial = async (epoch: number, name: string, includeDev = false) =>
      (await new SBOMGenerator({ sourceDateEpoch: epoch, includeDev }).generate(fixture(name)))
        .serialNumber
    const base = await serial(1_700_000_000, 'small')
    expect(await serial(1_700_000_001, 'small')).not.toBe(base)
    expect(await serial(1_700_000_000, 'v2')).not.toBe(base)
    expect(await serial(1_700_000_000, 'small', true)).not.toBe(base)
    expect(await serial(1_700_000_000, 'small')).toBe(base)
  })

  it('the option beats the environment variable', async () => {
    process.env.SOURCE_DATE_EPOCH = '1'
    const sbom = await new SBOMGenerator({ sourceDateEpoch: 86_400 }).generate(fixture('v2'))
    expect(sbom.metadata.timestamp.toISOString()).toBe('1970-01-02T00:00:00.000Z')
  })

  it('an empty SOURCE_DATE_EPOCH counts as unset', () => {
    process.env.SOURCE_DATE_EPOCH = ''
    expect(new SBOMGenerator().reproducible).toBe(false)
  })
})

describe('outside reproducible mode', () => {
  it('takes the timestamp from the clock and a version 4 UUID from the random source', async () => {
    delete process.env.SOURCE_DATE_EPOCH
    const generator = new SBOMGenerator({
      clock: () => Date.UTC(2030, 0, 2, 3, 4, 5),
      randomBytes: (n) => new Uint8Array(n).fill(0xab),
    })
    const sbom = await generator.generate(fixture('v2'))
    expect(sbom.metadata.timestamp.toISOString()).toBe('2030-01-02T03:04:05.000Z')
    expect(sbom.serialNumber).toBe('urn:uuid:abababab-abab-4bab-abab-abababababab')
    expect(sbom.serialNumber).toMatch(UUID_V4)
  })

  it('two runs differ in their serial numbers', async () => {
    delete process.env.SOURCE_DATE_EPOCH
    const a = await new SBOMGenerator().generate(fixture('v2'))
    const b = await new SBOMGenerator().generate(fixture('v2'))
    expect(a.serialNumber).not.toBe(b.serialNumber)
  })
})
