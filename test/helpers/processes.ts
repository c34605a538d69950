/**
 * Child processes that must start together: each prints `ready` once loaded,
 * then waits for a line on stdin, so what they do next really races.
 */
import { type ChildProcess, spawn } from 'node:child_process'

const READY = 'ready\n'

/** How a worker ended when it did not end as asked: exit code, signal and its output so far. */
function describeExit(child: ChildProcess, code: number | null, out: string): string {
  const how = code === null ? `signal ${child.signalCode ?? 'unknown'}` : `code ${code}`
  return `worker ${child.pid ?? '?'} exited with ${how}; stdout: ${JSON.stringify(out.slice(0, 500))}`
}

/**
 * Starts one `process.execPath` per argument list, waits until every one has
 * printed `ready`, releases them all at once (one line on stdin each), then
 * parses the one JSON document each prints after `ready`.
 *
 * Rejects, never hangs, when a worker fails to start, exits before `ready`
 * (a crash while loading: a missing native addon, a syntax error), exits
 * non-zero, or prints something that is not JSON; the others are killed.
 * Output is read to its end (`close`, not `exit`: a process can exit before
 * its last stdout chunk has been delivered).
 */
export async function runTogether<T>(
  argvs: readonly (readonly string[])[],
  options: { timeoutMs?: number } = {},
): Promise<T[]> {
  const children = argvs.map((argv) =>
    spawn(process.execPath, argv, {
      stdio: ['pipe', 'pipe', 'inherit'],
      timeout: options.timeoutMs ?? 120_000,
    }),
  )
  const workers = children.map((child) => {
    let out = ''
    child.stdout?.setEncoding('utf8')
    // One settled promise per worker, whatever happens first: `ready`, a
    // failure to spawn, or the end of the process.
    const closed = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code) => resolve(code))
    })
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: string) => {
        out += chunk
        if (out.startsWith(READY)) resolve()
      })
      closed.then(
        (code) => reject(new Error(`before ready: ${describeExit(child, code, out)}`)),
        reject,
      )
    })
    const done = closed.then((code) => {
      if (code !== 0) throw new Error(describeExit(child, code, out))
      try {
        return JSON.parse(out.slice(READY.length)) as T
      } catch (cause) {
        throw new Error(
          `worker ${child.pid ?? '?'} printed no JSON result: ${JSON.stringify(out)}`,
          {
            cause,
          },
        )
      }
    })
    // Both are awaited below, but only one may fail first: keep the other
    // from surfacing as an unhandled rejection.
    ready.catch(() => {})
    done.catch(() => {})
    return { child, closed, ready, done }
  })
  const killAll = () => {
    for (const { child } of workers) if (child.exitCode === null) child.kill('SIGKILL')
  }
  try {
    await Promise.all(workers.map((w) => w.ready))
    for (const { child } of workers) child.stdin?.end('go\n')
    return await Promise.all(workers.map((w) => w.done))
  } catch (err) {
    killAll()
    await Promise.allSettled(workers.map((w) => w.closed))
    throw err
  }
}
