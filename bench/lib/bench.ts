/** The contract between bench/run.ts and each bench: a name, and a run that returns markdown. */
import type { MachineInfo } from './machine.js'
import type { Knobs } from './options.js'

export interface BenchContext {
  readonly knobs: Knobs
  readonly machine: MachineInfo
  /** How the driver and servers were pinned, for the machine block. */
  readonly pinning: string
  /** `BENCH_CPU_PROF=<dir>`: server children write CPU profiles there. */
  readonly cpuProfileDir: string | undefined
  /** A progress line on stderr (stdout carries the final markdown). */
  log(line: string): void
}

export interface BenchDefinition {
  readonly name: string
  readonly description: string
  /** Run only when named (`npm run bench -- <name>`), not by a plain `npm run bench`. */
  readonly optional?: boolean
  /** Runs every measurement and returns the whole results file. */
  run(context: BenchContext): Promise<string>
}
