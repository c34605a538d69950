/**
 * Wycheproof vectors are read where the workspace keeps them
 * (`../shared/vectors/wycheproof/` next to the repository), never copied in.
 * `WYCHEPROOF_DIR` overrides the location.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IN_CI } from './services.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const candidates = [
  process.env.WYCHEPROOF_DIR,
  join(repoRoot, '..', 'shared', 'vectors', 'wycheproof'),
  '/work/shared/vectors/wycheproof',
].filter((d): d is string => d !== undefined)

export const WYCHEPROOF_DIR = candidates.find((d) => existsSync(join(d, 'aes_gcm_test.json')))

if (WYCHEPROOF_DIR === undefined) {
  const message = `Wycheproof vectors not found (looked in ${candidates.join(', ')}); set WYCHEPROOF_DIR`
  if (IN_CI) throw new Error(message)
  console.warn(`[tests] ${message}: the vector suites are skipped.`)
}

/** Parsed vector file, e.g. `aes_gcm_test.json`. */
export function wycheproof<T>(file: string): T {
  if (WYCHEPROOF_DIR === undefined) throw new Error('Wycheproof vectors are not available')
  return JSON.parse(readFileSync(join(WYCHEPROOF_DIR, file), 'utf8')) as T
}

export interface AeadTest {
  tcId: number
  comment: string
  flags: string[]
  key: string
  iv: string
  aad: string
  msg: string
  ct: string
  tag: string
  result: 'valid' | 'invalid' | 'acceptable'
}

export interface AeadGroup {
  ivSize: number
  keySize: number
  tagSize: number
  type: string
  tests: AeadTest[]
}
