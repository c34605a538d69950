/**
 * Summarizes a V8 `.cpuprofile` (from `BENCH_CPU_PROF=<dir> npm run bench`,
 * or `node --cpu-prof`): self time per function and per package, the two views
 * that answer "where does a plugin's per-request time go".
 *
 *   npx tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface SelfTime {
  readonly name: string
  readonly ms: number
  readonly share: number
}

/** Where a script lives, shortened: `fastify/lib/route.js`, `dist/http/...`, `node:internal/...`. */
function place(url: string): string {
  if (url === '') return '(native)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length)
  const dist = url.indexOf('/dist/')
  if (dist !== -1) return `fraiseql-security${url.slice(dist)}`
  return url.replace(/^file:\/\//, '')
}

function packageOf(url: string): string {
  const p = place(url)
  if (p.startsWith('node:') || p === '(native)') return p.split('/')[0]!
  if (p.startsWith('fraiseql-security/')) return 'fraiseql-security'
  const parts = p.split('/')
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
}

export function selfTimes(profile: Profile): { byFunction: SelfTime[]; byPackage: SelfTime[] } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const fn = new Map<string, number>()
  const pkg = new Map<string, number>()
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const node = nodes.get(profile.samples[i]!)
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    if (node === undefined) continue
    total += dt
    const { functionName, url, lineNumber } = node.callFrame
    const key = `${functionName || '(anonymous)'} ${place(url)}${url ? `:${lineNumber + 1}` : ''}`
    fn.set(key, (fn.get(key) ?? 0) + dt)
    const p = url ? packageOf(url) : functionName
    pkg.set(p, (pkg.get(p) ?? 0) + dt)
  }
  const sorted = (m: Map<string, number>) =>
    [...m].map(([name, ms]) => ({ name, ms, share: ms / total })).sort((a, b) => b.ms - a.ms)
  return { byFunction: sorted(fn), byPackage: sorted(pkg) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, topArg] = process.argv.slice(2)
  if (file === undefined) throw new Error('usage: cpuprofile.ts <file.cpuprofile> [top]')
  const top = Number(topArg ?? 25)
  const { byFunction, byPackage } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile)
  const line = (s: SelfTime) =>
    `${(s.share * 100).toFixed(1).padStart(5)}%  ${s.ms.toFixed(0).padStart(6)} ms  ${s.name}`
  console.log('Self time by package')
  for (const s of byPackage.slice(0, top)) console.log(line(s))
  console.log('\nSelf time by function')
  for (const s of byFunction.slice(0, top)) console.log(line(s))
}
