// Marks the references to optional peer dependencies in the emitted
// declarations (dist/**/*.d.ts) so that they type-check where the peer is
// not installed, with `skipLibCheck: false`: the `http` and `graphql`
// subpaths serve Node's own server and yoga/Apollo too, without Fastify.
//
// tsc drops `// @ts-ignore` comments from the declarations it emits, so they
// are added here, after the build: before each `import type … from '<peer>'`
// (without the peer, its types are `any`) and each
// `declare module '<peer>'` augmentation (without the peer, nothing to
// augment). Where the peer is installed the comment changes nothing.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const OPTIONAL_PEERS = ['fastify']
const MARK = '// @ts-ignore optional peer dependency: absent, its types are `any`'

const peers = OPTIONAL_PEERS.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')
const reference = new RegExp(
  `^(?:import type [^;]* from '(?:${peers})';|declare module '(?:${peers})' \\{)$`,
)

function* declarations(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* declarations(path)
    else if (entry.name.endsWith('.d.ts')) yield path
  }
}

const root = process.argv[2] ?? 'dist'
let marked = 0
for (const file of declarations(root)) {
  const lines = readFileSync(file, 'utf8').split('\n')
  const out = []
  for (const [i, line] of lines.entries()) {
    if (reference.test(line) && lines[i - 1] !== MARK) {
      out.push(MARK)
      marked++
    }
    out.push(line)
  }
  if (out.length !== lines.length) writeFileSync(file, out.join('\n'))
}
console.log(`optional peers: ${marked} declaration reference(s) marked in ${root}`)
