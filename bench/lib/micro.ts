/**
 * In-process measurements, each one sample for lib/rounds.ts.
 *
 * - `tinybenchLatency`: one call in flight, timed by tinybench; its median
 *   latency is robust to the odd GC pause or preempted sample.
 * - `closedLoop`: N calls in flight for a fixed time, ops counted against the
 *   wall clock. This is the throughput figure for I/O-bound calls (a store
 *   round trip): tinybench's `concurrency: 'task'` mode derives throughput
 *   from each sample's latency (its own docs: "instantaneous rates"), which
 *   with overlapping calls is not operations per second.
 */
import { Bench } from 'tinybench'
import type { Measurement } from './rounds.js'

export interface LatencyOptions {
  /** Measuring time per sample, ms. */
  readonly timeMs: number
  /** Warm-up time before it, ms (JIT, connection pools, prepared statements). */
  readonly warmupMs?: number
}

/** Median latency of `fn` in microseconds (lower is better), p99 as context. */
export async function tinybenchLatency(
  fn: () => unknown,
  options: LatencyOptions,
): Promise<Measurement> {
  const bench = new Bench({
    time: options.timeMs,
    warmup: (options.warmupMs ?? 0) > 0,
    warmupTime: options.warmupMs ?? 0,
    throws: true,
  })
  bench.add('task', fn)
  await bench.run()
  const result = bench.tasks[0]!.result
  if (result.state !== 'completed') throw new Error(`tinybench task ended as ${result.state}`)
  return {
    value: result.latency.p50 * 1000,
    extra: { p99Us: result.latency.p99 * 1000, samples: result.latency.samplesCount },
  }
}

export interface ClosedLoopOptions {
  /** Calls kept in flight. */
  readonly concurrency: number
  /** Measuring time, ms. */
  readonly timeMs: number
  /**
   * CPU seconds used so far by the process on the other end (Redis, the
   * PostgreSQL backends), to report its CPU time per operation: it says
   * whether the client or the server side is the cost.
   */
  readonly peerCpuSeconds?: () => number
}

/** Operations per second of `fn` with `concurrency` calls in flight (higher is better). */
export async function closedLoop(
  fn: (i: number) => Promise<unknown>,
  options: ClosedLoopOptions,
): Promise<Measurement> {
  let started = 0
  let done = 0
  const peer0 = options.peerCpuSeconds?.()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const deadline = t0 + options.timeMs
  const worker = async () => {
    while (performance.now() < deadline) {
      await fn(started++)
      done++
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  const elapsedMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const extra: Record<string, number> = {
    driverCpu: (cpu.user + cpu.system) / 1000 / elapsedMs,
    driverCpuUsPerOp: (cpu.user + cpu.system) / done,
  }
  if (peer0 !== undefined && options.peerCpuSeconds !== undefined) {
    extra.peerCpuUsPerOp = ((options.peerCpuSeconds() - peer0) * 1e6) / done
  }
  return { value: done / (elapsedMs / 1000), extra }
}
