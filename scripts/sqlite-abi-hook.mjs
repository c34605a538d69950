/**
 * Loaded with `--import` (through NODE_OPTIONS, so vitest's workers and the
 * processes tests spawn get it too) by scripts/repeat-under-load.ts when the
 * chosen Node.js has another V8 ABI than the better-sqlite3 build in
 * node_modules: every module resolved inside that package is served from the
 * per-ABI copy in FSL_BETTER_SQLITE3_DIR instead. node_modules is shared with
 * runs on the machine's own Node.js, so its binary is never swapped, even for
 * a moment.
 *
 * module.registerHooks (synchronous, Node.js >= 22.15) covers `require` as
 * well as `import`, which better-sqlite3 (CommonJS) needs.
 */
import { realpathSync } from 'node:fs'
import { registerHooks } from 'node:module'
import { join, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const copy = process.env.FSL_BETTER_SQLITE3_DIR
const original = process.env.FSL_BETTER_SQLITE3_ORIGINAL
if (copy === undefined || original === undefined) {
  throw new Error(
    'sqlite-abi-hook: FSL_BETTER_SQLITE3_DIR and FSL_BETTER_SQLITE3_ORIGINAL must be set',
  )
}
if (typeof registerHooks !== 'function') {
  throw new Error(
    `sqlite-abi-hook: Node.js ${process.version} has no module.registerHooks (22.15 or later)`,
  )
}
// The package is reached through the worktree's node_modules symlink or its target.
const roots = [...new Set([original, realpathSync(original)])].map((r) => r + sep)

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context)
    if (!resolved.url.startsWith('file:')) return resolved
    const path = fileURLToPath(resolved.url)
    const root = roots.find((r) => path.startsWith(r))
    if (root === undefined) return resolved
    return { ...resolved, url: pathToFileURL(join(copy, path.slice(root.length))).href }
  },
})
