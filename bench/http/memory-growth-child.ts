/**
 * Child side of `npm run bench -- memory-growth`: one fresh process per
 * measurement, since RSS is per process and a store grown in a previous
 * measurement would stay in this one's heap. Reads its workload from argv
 * (JSON), prints one JSON line: consume calls per CPU second in the steady
 * phase and the process's memory once the store holds every key it will hold.
 */
import { MemoryStore } from 'fraiseql-security/http'

interface Workload {
  /** Distinct client keys. */
  readonly keys: number
  readonly maxKeys: number
  /** Virtual milliseconds per call: 0 keeps every counter live; > 0 lets windows pass. */
  readonly msPerCall: number
  readonly windowMs: number
  readonly timeMs: number
}

const w = JSON.parse(process.argv[2]!) as Workload
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

const policies = Object.freeze([{ name: 'default', max: 1_000_000, windowMs: w.windowMs }])
gc()
const rssStart = process.memoryUsage().rss
const store = new MemoryStore({ maxKeys: w.maxKeys })
let now = 1_800_000_000_000
let calls = 0
// Keys are built per call, never kept in an array: what stays in the heap is
// what the store holds (its counters and their keys).
const hit = (i: number) => {
  store.consumeSync(`client-${i}`, { policies, weight: 1, now })
  now += w.msPerCall
  calls++
}

// Fill: every key once, so the store is as full as this workload makes it.
const f0 = performance.now()
for (let i = 0; i < w.keys; i++) hit(i)
const fillS = (performance.now() - f0) / 1000

// Steady: keys in a fixed pseudo-random order (an LCG over the key range),
// for timeMs; calls/s counted in batches so the clock read costs nothing.
let x = 12345
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const deadline = t0 + w.timeMs
let steady = 0
while (performance.now() < deadline) {
  for (let i = 0; i < 1000; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    hit(x % w.keys)
  }
  steady += 1000
}
const steadyS = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
const cpuS = (cpu.user + cpu.system) / 1e6
gc()
const mem = process.memoryUsage()
const size = store.size
// What the store itself holds: the heap it frees once cleared.
store.clear()
gc()
const heapWithoutStore = process.memoryUsage().heapUsed
process.stdout.write(
  `${JSON.stringify({
    // Per CPU second, not per wall second: on a shared machine the wall
    // clock also counts the time other processes held the core.
    callsPerCpuS: steady / cpuS,
    callsPerS: steady / steadyS,
    fillCallsPerS: w.keys / fillS,
    rssMb: mem.rss / 2 ** 20,
    rssGrowthMb: (mem.rss - rssStart) / 2 ** 20,
    heapMb: mem.heapUsed / 2 ** 20,
    storeHeapMb: (mem.heapUsed - heapWithoutStore) / 2 ** 20,
    size,
    calls,
  })}\n`,
)
