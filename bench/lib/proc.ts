/**
 * CPU time of other processes (a server child, Redis, PostgreSQL backends)
 * from /proc. It tells which side of a measurement was busy: a ratio between
 * two variants means little if neither was the bottleneck.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let clockTicks: number | undefined
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** utime + stime of a process, all threads, from /proc/<pid>/stat (fields 14, 15), in seconds; NaN if unreadable. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces; count fields after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
  } catch {
    return Number.NaN
  }
}

/** Cumulative times of one CPU from /proc/stat, in seconds. */
export interface CoreTimes {
  /** user + nice + system + irq + softirq: work done on this core by anyone. */
  readonly busy: number
  /** Time the hypervisor ran someone else while this virtual CPU wanted to run. */
  readonly steal: number
}

/** Times of CPU `core` (the `cpuN` line of /proc/stat); undefined where there is none. */
export function coreTimes(core: number): CoreTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${core} `))
    if (line === undefined) return undefined
    // cpuN user nice system idle iowait irq softirq steal ...
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    const t = ticksPerSecond()
    const at = (i: number) => v[i] ?? 0
    return { busy: (at(0) + at(1) + at(2) + at(5) + at(6)) / t, steal: at(7) / t }
  } catch {
    return undefined
  }
}
