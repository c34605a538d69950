/**
 * CPU pinning. With two cores, a server and its load generator left to the
 * scheduler fight over the same core part of the time, and how often changes
 * from run to run: a large share of the run-to-run noise. Pinning the server
 * to core 0 and everything that generates load to core 1 makes each side own
 * its core, so a ratio measures the server and not the scheduler.
 */
import { spawnSync } from 'node:child_process'
import os from 'node:os'

/** Core the servers under test run on. */
export const SERVER_CORE = 0
/** Core the driver (and so autocannon and the micro-benchmarks) runs on. */
export const DRIVER_CORE = 1

let tasksetChecked: boolean | undefined

/** Whether `taskset` exists and this machine has the cores we pin to. */
export function canPin(): boolean {
  if (tasksetChecked === undefined) {
    const probe = spawnSync('taskset', ['-cp', String(process.pid)], { stdio: 'ignore' })
    // os.cpus() lists every online CPU; nproc and availableParallelism() would
    // report 1 inside the already pinned driver.
    tasksetChecked = probe.status === 0 && os.cpus().length > DRIVER_CORE
  }
  return tasksetChecked
}

/** `[command, ...args]` prefixed with `taskset -c <core>` where pinning is possible. */
export function pinned(core: number, command: string, args: readonly string[]): [string, string[]] {
  if (!canPin()) return [command, [...args]]
  return ['taskset', ['-c', String(core), command, ...args]]
}

const PINNED_ENV = 'FRAISEQL_BENCH_PINNED'

/**
 * Re-runs this process under `taskset -c DRIVER_CORE` unless it already is,
 * then exits with the child's status. Every thread the driver starts later
 * (autocannon's sockets, libuv's pool) inherits the mask, which pinning an
 * already running process (`taskset -p`) would not guarantee.
 *
 * Returns only in the pinned process, or when pinning is impossible.
 */
export function ensureDriverPinned(): 'pinned' | 'unpinned' {
  if (process.env[PINNED_ENV] === '1') return 'pinned'
  if (!canPin() || process.env.BENCH_NO_PIN === '1') return 'unpinned'
  const [cmd, args] = pinned(DRIVER_CORE, process.execPath, [
    ...process.execArgv,
    ...process.argv.slice(1),
  ])
  const child = spawnSync(cmd, args, {
    stdio: 'inherit',
    env: { ...process.env, [PINNED_ENV]: '1' },
  })
  process.exit(child.status ?? 1)
}
