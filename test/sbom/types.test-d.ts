import { describe, expectTypeOf, it } from 'vitest'
import {
  ComponentScope,
  ComponentType,
  type Hash,
  License,
  type SBOM,
  type SBOMComponent,
  SBOMGenerator,
  type SBOMGeneratorOptions,
  type SBOMMetadata,
  type SBOMOutputOptions,
  toCycloneDX,
  toSPDX,
} from '../../src/sbom/index.js'

describe('sbom types', () => {
  it('ComponentType and ComponentScope are both values and string unions', () => {
    expectTypeOf(ComponentType.Library).toEqualTypeOf<'library'>()
    expectTypeOf<ComponentType>().toExtend<string>()
    expectTypeOf<'application'>().toExtend<ComponentType>()
    expectTypeOf<ComponentScope>().toEqualTypeOf<'required' | 'optional' | 'dev'>()
    expectTypeOf(ComponentScope.Dev).toEqualTypeOf<'dev'>()
  })

  it('generate returns an SBOM whose parts are the model classes', () => {
    expectTypeOf(new SBOMGenerator().generate).returns.toEqualTypeOf<Promise<SBOM>>()
    expectTypeOf<SBOM['metadata']>().toEqualTypeOf<SBOMMetadata>()
    expectTypeOf<SBOM['components']>().toEqualTypeOf<readonly SBOMComponent[]>()
    expectTypeOf<SBOMComponent['licenses']>().toEqualTypeOf<readonly License[]>()
    expectTypeOf<SBOMComponent['hashes']>().toEqualTypeOf<readonly Hash[]>()
    expectTypeOf<SBOMComponent['type']>().toEqualTypeOf<ComponentType>()
  })

  it('options are all optional, and typed', () => {
    expectTypeOf<Record<never, never>>().toExtend<SBOMGeneratorOptions>()
    expectTypeOf<{ includeDev: 'yes' }>().not.toExtend<SBOMGeneratorOptions>()
    expectTypeOf<{ format: 'spdx' }>().toExtend<SBOMOutputOptions>()
    expectTypeOf<{ format: 'swid' }>().not.toExtend<SBOMOutputOptions>()
  })

  it('serializers return text', () => {
    expectTypeOf(toCycloneDX).returns.toEqualTypeOf<Promise<string>>()
    expectTypeOf(toSPDX).returns.toEqualTypeOf<string>()
    expectTypeOf(License.fromString).returns.toEqualTypeOf<License>()
  })
})
