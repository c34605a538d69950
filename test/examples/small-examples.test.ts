/**
 * The small runnable examples run to completion and show what they claim.
 * They import the package by name (the built dist/, as a user would), so
 * this suite runs after `npm run build` (npm test's pretest).
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))

async function example(name: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', `examples/${name}.ts`], {
    cwd: root,
    timeout: 60_000,
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  })
  return stdout
}

describe('examples', () => {
  it('http-middleware: 200, 413 before reading, 200, then 429', async () => {
    const out = await example('http-middleware')
    expect(out).toMatch(/small body\s+→ 200/)
    expect(out).toMatch(/oversized body\s+→ 413/)
    expect(out).toMatch(/over the quota\s+→ 429 .*ERR_HTTP_RATE_LIMITED/)
  })

  it('kms-providers: a KeyManager round trip over each provider and its emulator', async () => {
    const out = await example('kms-providers')
    for (const name of ['local', 'vault', 'aws', 'gcp']) {
      expect(out).toMatch(new RegExp(`^${name}\\s+ciphertext .*round trip ok$`, 'm'))
    }
  })

  it('graphql-yoga: the packaged plugin refuses depth, introspection and variable cost, and hides suggestions', async () => {
    const out = await example('graphql-yoga')
    expect(out).toMatch(/ok\s+→ 200 \{"data"/)
    expect(out).toMatch(/too deep\s+→ 400 .*ERR_GRAPHQL_DEPTH_LIMIT/)
    expect(out).toMatch(/introspection→ 400 .*ERR_GRAPHQL_INTROSPECTION_DISABLED/)
    expect(out).toMatch(/costly \$n\s+→ 400 .*ERR_GRAPHQL_COMPLEXITY_LIMIT/)
    expect(out).toMatch(/refused\s+← ERR_GRAPHQL_DEPTH_LIMIT/)
    expect(out).not.toContain('Did you mean')
  })
})
