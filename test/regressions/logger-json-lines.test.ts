/**
 * Regression: the default logger outside Fastify wrote
 * `[fraiseql-security] warn: <msg> {json}`, a line no log pipeline parses,
 * and the logger contract had no `debug` or `child`, so pino's own
 * interface did not match it. The default now writes one JSON object per
 * line (pino's shape: level, time, msg), and inside Fastify our lines go to
 * Fastify's logger (`app.log`, `request.log` for a request's audit record).
 */
import { spawnSync } from 'node:child_process'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { stderrLogger } from '../../src/internal/logger.js'
import { ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'

function capture() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, stream }
}

describe('inside Fastify, our lines go to its pino logger', () => {
  it('the switched-off step warning (app.log) and the audit record of a refusal (request.log, with reqId)', async () => {
    const { lines, stream } = capture()
    // Fastify's own pino, writing to a stream (pino is Fastify's, not a dependency of ours).
    const app = Fastify({ logger: { level: 'info', stream } })
    onTestFinished(async () => {
      await app.close()
    })
    const enforcer = new ProfileEnforcer(STANDARD, {
      authenticate: () => null,
      steps: { bodyLimit: { enabled: false } },
    })
    await enforcer.applyTo(app)
    app.get('/', async () => 'ok')
    const res = await app.inject({ url: '/' })
    expect(res.statusCode).toBe(401)
    // The audit record is written in onResponse, after the answer went out.
    await new Promise((resolve) => setImmediate(resolve))
    const warning = lines.find((l) => String(l.msg).includes('a step is switched off'))
    expect(warning).toMatchObject({ level: 40, step: 'bodyLimit' })
    const audit = lines.find((l) => l.msg === 'audit')
    expect(audit).toMatchObject({ level: 30, reqId: expect.any(String) })
    expect(audit?.audit).toMatchObject({ outcome: 'denied', code: 'ERR_AUTH_REQUIRED' })
  })
})

describe('outside Fastify, the default logger', () => {
  it('writes parseable JSON lines to stderr (level, time, msg), errors described', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'test/regressions/fixtures/standalone-logger.ts'],
      { encoding: 'utf8', timeout: 60_000 },
    )
    expect(run.status).toBe(0)
    expect(run.stdout).toContain('status 200')
    const lines = run.stderr
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.length).toBeGreaterThan(0)
    const failed = lines.find((l) => l.msg === 'rate-limit store failed')
    expect(failed).toMatchObject({
      level: 40,
      time: expect.any(Number),
      name: 'fraiseql-security',
      err: { name: 'Error', message: 'store down' },
    })
  })

  it('is pino-shaped: debug, info, warn, error and child with bindings', () => {
    const writes: string[] = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string) => {
      writes.push(chunk)
      return true
    }) as typeof process.stderr.write
    try {
      stderrLogger.child?.({ component: 'test' }).error({ err: new TypeError('bad') }, 'failed')
      stderrLogger.debug?.({ n: 1 }, 'detail')
    } finally {
      process.stderr.write = write
    }
    expect(writes.map((w) => JSON.parse(w))).toEqual([
      {
        level: 50,
        time: expect.any(Number),
        name: 'fraiseql-security',
        component: 'test',
        err: { name: 'TypeError', message: 'bad' },
        msg: 'failed',
      },
      { level: 20, time: expect.any(Number), name: 'fraiseql-security', n: 1, msg: 'detail' },
    ])
    expect(writes.every((w) => w.endsWith('\n') && !w.slice(0, -1).includes('\n'))).toBe(true)
  })
})
