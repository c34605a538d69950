/**
 * What the figures were measured on. Ratios from one machine say little about
 * another, and absolute figures even less, so every results file opens with
 * this block: CPU, cores, Node, OS and kernel, date, and the commit measured.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

export interface MachineInfo {
  readonly cpu: string
  readonly cores: number
  readonly node: string
  readonly os: string
  readonly kernel: string
  readonly date: string
  readonly commit: string
  /** CPUs this driver process may run on (`taskset -p`), when known. */
  readonly driverAffinity: string
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

/** `model name` from /proc/cpuinfo: os.cpus() can be empty or generic in VMs. */
function cpuModel(): string {
  const info = tryRead('/proc/cpuinfo')
  const line = info?.split('\n').find((l) => l.startsWith('model name'))
  return line?.split(':').slice(1).join(':').trim() ?? os.cpus()[0]?.model ?? 'unknown'
}

function osName(): string {
  const release = tryRead('/etc/os-release')
  const pretty = release?.match(/^PRETTY_NAME="?([^"\n]*)"?$/m)?.[1]
  return pretty ?? `${os.type()} ${os.release()}`
}

/** The commit measured, marked `-dirty` when the work tree differs from it. */
function gitCommit(): string {
  const head = tryRun('git', ['rev-parse', '--short=12', 'HEAD']) ?? 'unknown'
  const dirty = tryRun('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'])
  return dirty ? `${head}-dirty (src/ has uncommitted changes)` : head
}

export function machineInfo(): MachineInfo {
  const affinity = tryRun('taskset', ['-cp', String(process.pid)])
    ?.split(':')
    .pop()
    ?.trim()
  return {
    cpu: cpuModel(),
    // All online CPUs, not availableParallelism(): the driver itself is pinned to one.
    cores: os.cpus().length,
    node: process.version,
    os: osName(),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    commit: gitCommit(),
    driverAffinity: affinity ?? 'unknown',
  }
}
