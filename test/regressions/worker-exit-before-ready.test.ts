/**
 * The cross-process tests' start barrier (test/helpers/processes.ts): a
 * worker that dies while loading, before it prints `ready`, used to leave the
 * `ready` promise pending forever, so the test hung until vitest's timeout and
 * blamed the wrong thing. It must reject at once, naming how the worker ended.
 */
import { describe, expect, it } from 'vitest'
import { runTogether } from '../helpers/processes.js'
import { rejection } from '../helpers/rejection.js'

const READY_THEN = (script: string) => `process.stdout.write('ready\\n'); ${script}`

describe('runTogether', () => {
  it('rejects when a worker exits before printing ready, and the others are stopped', async () => {
    const err = await rejection(
      runTogether([
        ['-e', 'process.exit(3)'],
        // Would wait on stdin forever: it must be killed, not left behind.
        ['-e', READY_THEN("process.stdin.on('data', () => {})")],
      ]),
    )
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/before ready: worker \d+ exited with code 3/)
  })

  it('rejects when a worker is killed by a signal before ready', async () => {
    const err = await rejection(runTogether([['-e', "process.kill(process.pid, 'SIGKILL')"]]))
    expect((err as Error).message).toMatch(/before ready: worker \d+ exited with signal SIGKILL/)
  })

  it('rejects when a released worker exits non-zero or prints no JSON', async () => {
    const failing = await rejection(
      runTogether([['-e', READY_THEN("process.stdin.once('data', () => process.exit(2))")]]),
    )
    expect((failing as Error).message).toMatch(/exited with code 2/)
    const garbled = await rejection(
      runTogether([
        ['-e', READY_THEN("process.stdin.once('data', () => process.stdout.write('{oops'))")],
      ]),
    )
    expect((garbled as Error).message).toMatch(/printed no JSON result/)
  })

  it('returns every worker result, read to the end of its output', async () => {
    // The result is written in pieces and the process exits right after:
    // what is read must be the whole output, not what arrived before `exit`.
    const big = `[${Array.from({ length: 20_000 }, (_, i) => i).join(',')}]`
    const script = READY_THEN(
      `process.stdin.once('data', () => { process.stdout.write(${JSON.stringify(big.slice(0, 50_000))}); process.stdout.write(${JSON.stringify(big.slice(50_000))}); process.stdin.pause() })`,
    )
    const results = await runTogether<number[]>([
      ['-e', script],
      ['-e', script],
    ])
    expect(results).toHaveLength(2)
    for (const r of results) expect(r).toHaveLength(20_000)
  })
})
