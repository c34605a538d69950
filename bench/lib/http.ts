/**
 * HTTP measurement: servers under test in child processes pinned to
 * SERVER_CORE, load from autocannon in the (pinned) driver process.
 *
 * Why a child process per server variant: variants never share a heap, a JIT
 * profile or an event loop, so one variant's garbage cannot slow the next, and
 * the child's CPU time can be read from /proc to tell whether the server (what
 * we want to measure) or autocannon was the bottleneck. A ratio between two
 * variants means something only when the server side is saturated: if the
 * load generator runs out first, every variant looks equally fast.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { pinned, SERVER_CORE } from './pin.js'
import { coreTimes, procCpuSeconds } from './proc.js'
import type { Measurement } from './rounds.js'

/** Messages the parent sends to a server child (see http-server.ts). */
export type ToServer = { type: 'ask'; id: number; what: string } | { type: 'close' }
/** Messages a server child sends back. */
export type FromServer =
  | { type: 'listening'; port: number }
  | { type: 'answer'; id: number; value?: unknown; error?: string }
  | { type: 'closed' }

export interface ServerSpec {
  /** Variant name, also the name of its CPU profile. */
  readonly name: string
  /** Absolute path of the server module (run with tsx). */
  readonly entry: string
  readonly args?: readonly string[]
  readonly env?: Readonly<Record<string, string>>
  /**
   * When set, the child runs with `--cpu-prof` and writes its profiles into
   * `<dir>/<name>/` on close: one file per thread, the main thread's is the
   * one named `*.0.001.cpuprofile` (the others are tsx's loader thread).
   */
  readonly cpuProfileDir?: string | undefined
}

export interface ServerHandle {
  readonly name: string
  readonly url: string
  readonly pid: number
  /** CPU seconds (user + system, all threads) the server process has used so far. */
  cpuSeconds(): number
  /** Asks the child for a named figure (a counter, a stats snapshot). */
  ask<T>(what: string): Promise<T>
  close(): Promise<void>
}

const live = new Set<ChildProcess>()
// A crashed or interrupted driver must not leave servers listening.
process.once('exit', () => {
  for (const child of live) child.kill()
})

export async function startServer(spec: ServerSpec): Promise<ServerHandle> {
  const profile = spec.cpuProfileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${join(spec.cpuProfileDir, spec.name)}`]
    : []
  const extraFlags = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean)
  const [cmd, args] = pinned(SERVER_CORE, process.execPath, [
    ...extraFlags,
    '--import',
    'tsx',
    ...profile,
    spec.entry,
    ...(spec.args ?? []),
  ])
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...spec.env },
  })
  live.add(child)
  child.once('exit', () => live.delete(child))

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.name}: no listening message`)), 20_000)
    child.on('message', (m: FromServer) => {
      if (m.type === 'listening') {
        clearTimeout(timer)
        resolve(m.port)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${spec.name}: server exited with ${code} before listening`))
    })
  })

  let nextId = 0
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  child.on('message', (m: FromServer) => {
    if (m.type !== 'answer') return
    const p = pending.get(m.id)
    pending.delete(m.id)
    if (m.error !== undefined) p?.reject(new Error(m.error))
    else p?.resolve(m.value)
  })

  const pid = child.pid!
  return {
    name: spec.name,
    url: `http://127.0.0.1:${port}`,
    pid,
    cpuSeconds: () => procCpuSeconds(pid),
    ask<T>(what: string): Promise<T> {
      const id = nextId++
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
        child.send({ type: 'ask', id, what } satisfies ToServer)
      })
    },
    async close() {
      if (child.exitCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send({ type: 'close' } satisfies ToServer)
      // A profile can take a moment to write; a hung server is killed after 15 s.
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** What autocannon sends, when not `GET /`. */
export interface RequestSpec {
  readonly method?: 'GET' | 'POST'
  /** Appended to the server's URL. @default '/' */
  readonly path?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

export interface LoadOptions {
  readonly url: string
  readonly request?: RequestSpec
  readonly connections: number
  readonly pipelining: number
  /** Seconds of load; ignored when `amount` is set. */
  readonly durationS?: number
  /** Exact number of requests to send (round-trip counting). */
  readonly amount?: number
}

export interface LoadResult {
  /** 2xx responses per second of the run. */
  readonly rps: number
  readonly ok: number
  readonly non2xx: number
  readonly errors: number
  readonly latencyP50Ms: number
  readonly latencyP99Ms: number
  readonly durationS: number
}

/** One autocannon run; throws if any answer was not 2xx (a variant that refuses is not "faster"). */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const request = options.request
  const result = await autocannon({
    url: request?.path === undefined ? options.url : `${options.url}${request.path}`,
    ...(request?.method === undefined ? {} : { method: request.method }),
    ...(request?.headers === undefined ? {} : { headers: { ...request.headers } }),
    ...(request?.body === undefined ? {} : { body: request.body }),
    connections: options.connections,
    pipelining: options.pipelining,
    ...(options.amount !== undefined
      ? { amount: options.amount }
      : { duration: options.durationS ?? 5 }),
  })
  const ok = result['2xx']
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(
      `${options.url}: ${result.non2xx} non-2xx answers and ${result.errors} errors in ${ok + result.non2xx} requests`,
    )
  }
  return {
    rps: ok / result.duration,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    durationS: result.duration,
  }
}

/**
 * Loads a server for `durationS` and reports requests/s, with the CPU share
 * each side used: a server well below 100% of its core means autocannon, not
 * the server, set the pace, and the ratio is compressed toward 1. Also
 * reports what else ran on the server's core (`foreignCpu`: the core's busy
 * time minus the server's, which includes the kernel's loopback work) and the
 * hypervisor's steal time on it.
 */
export async function measureHttp(
  server: ServerHandle,
  options: Omit<LoadOptions, 'url' | 'amount'>,
): Promise<Measurement> {
  const serverCpu0 = server.cpuSeconds()
  const core0 = coreTimes(SERVER_CORE)
  const loaderCpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const r = await load({ ...options, url: server.url })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const loaderCpu = process.cpuUsage(loaderCpu0)
  const core1 = coreTimes(SERVER_CORE)
  const serverCpu = (server.cpuSeconds() - serverCpu0) / wall
  const extra: Record<string, number> = {
    latencyP50Ms: r.latencyP50Ms,
    latencyP99Ms: r.latencyP99Ms,
    serverCpu,
    loaderCpu: (loaderCpu.user + loaderCpu.system) / 1e6 / wall,
  }
  if (core0 !== undefined && core1 !== undefined) {
    extra.foreignCpu = Math.max(0, (core1.busy - core0.busy) / wall - serverCpu)
    extra.steal = (core1.steal - core0.steal) / wall
  }
  return { value: r.rps, extra }
}

export interface GuardedOptions extends Omit<LoadOptions, 'url' | 'amount'> {
  /**
   * Below this server CPU share the measurement is taken again (at most
   * `attempts` times in all): the server was not the bottleneck, because
   * something else held its core (another process, the hypervisor) or the
   * load generator ran short. Use only for CPU-bound servers.
   */
  readonly minServerCpu: number
  readonly attempts: number
  /** Called for every rejected attempt, for the log and the report. */
  readonly onRejected?: (m: Measurement, attempt: number) => void
}

/** {@link measureHttp}, repeated while the server core was visibly disturbed. */
export async function measureHttpGuarded(
  server: ServerHandle,
  options: GuardedOptions,
): Promise<Measurement> {
  const { minServerCpu, attempts, onRejected, ...load } = options
  let m = await measureHttp(server, load)
  for (let attempt = 1; attempt < attempts; attempt++) {
    if ((m.extra?.serverCpu ?? 1) >= minServerCpu) return m
    onRejected?.(m, attempt)
    m = await measureHttp(server, load)
  }
  return m
}

/** One GET, to check a variant really has its plugin on before measuring it. */
export async function probe(url: string): Promise<{ status: number; headers: Headers }> {
  const res = await fetch(url)
  await res.arrayBuffer()
  return { status: res.status, headers: res.headers }
}
