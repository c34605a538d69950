/**
 * Type-checks every TypeScript snippet in README.md and docs/**.md against
 * the built package, so the docs cannot drift from the API they describe.
 *
 * Each ```ts block becomes its own module in .doc-snippets/ (inside the
 * package, so `import … from 'fraiseql-security/…'` resolves through the
 * package's own exports, as a user's import would). Names a snippet uses
 * without defining (`schema`, `resolvers`, `app`…) are declared once in
 * scripts/doc-snippets.d.ts. A block fenced ```ts nocheck is skipped: use it
 * only for fragments that are not code (an interface excerpt with `…`).
 *
 * Usage: `tsx scripts/check-doc-snippets.ts` (run by `npm test` after the build).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, '.doc-snippets')

interface Snippet {
  /** Markdown file, relative to the root. */
  readonly source: string
  /** 1-based line of the snippet's first code line in the markdown file. */
  readonly line: number
  readonly code: string
  /**
   * ```ts file=<name>: the snippet is a file of a walkthrough, written as
   * <name> beside the other files of its page so they can import each other.
   */
  readonly file?: string
}

function markdownFiles(): string[] {
  const docs = join(root, 'docs')
  const files = [join(root, 'README.md')]
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.md')) files.push(path)
    }
  }
  walk(docs)
  return files.sort()
}

/** The ```ts / ```typescript blocks of one markdown file. */
export function extractSnippets(source: string, text: string): Snippet[] {
  const out: Snippet[] = []
  const lines = text.split('\n')
  let open: { line: number; body: string[]; check: boolean; file?: string } | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const fence = /^\s*```+\s*([\w-]*)\s*(.*)$/.exec(line)
    if (open === undefined) {
      if (fence !== null && fence[1] !== undefined && /^(ts|typescript)$/.test(fence[1])) {
        const file = /\bfile=([\w.-]+\.ts)\b/.exec(fence[2] ?? '')?.[1]
        open = { line: i + 2, body: [], check: !/\bnocheck\b/.test(fence[2] ?? '') }
        if (file !== undefined) open.file = file
      } else if (fence !== null && fence[1] !== '') {
        // Another language's block: skip to its end so its content is never read as a fence.
        for (i++; i < lines.length && !/^\s*```+\s*$/.test(lines[i]!); i++);
      }
      continue
    }
    if (/^\s*```+\s*$/.test(line)) {
      if (open.check) {
        const code = open.body.join('\n')
        out.push(
          open.file === undefined
            ? { source, line: open.line, code }
            : { source, line: open.line, code, file: open.file },
        )
      }
      open = undefined
    } else {
      open.body.push(line)
    }
  }
  return out
}

function main(): number {
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  const files = new Map<string, Snippet>()
  let n = 0
  for (const md of markdownFiles()) {
    const source = relative(root, md)
    for (const snippet of extractSnippets(source, readFileSync(md, 'utf8'))) {
      const page = source.replace(/[\\/]/g, '_')
      const name =
        snippet.file === undefined
          ? join(outDir, `${String(++n).padStart(3, '0')}-${page}.ts`)
          : join(outDir, page.replace(/\.md$/, ''), snippet.file)
      mkdirSync(dirname(name), { recursive: true })
      // `export {}` makes every snippet a module: top-level await, no name clashes.
      writeFileSync(name, `${snippet.code}\nexport {}\n`)
      files.set(name, snippet)
    }
  }
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    // A snippet shows one thing; an unused import or local is not an error there.
    noUnusedLocals: false,
    noUnusedParameters: false,
  }
  const program = ts.createProgram(
    [...files.keys(), join(root, 'scripts', 'doc-snippets.d.ts')],
    options,
  )
  const diagnostics = ts.getPreEmitDiagnostics(program)
  let errors = 0
  for (const d of diagnostics) {
    const file = d.file?.fileName
    const snippet = file === undefined ? undefined : files.get(resolve(file))
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n')
    if (snippet !== undefined && d.file !== undefined && d.start !== undefined) {
      const { line } = d.file.getLineAndCharacterOfPosition(d.start)
      process.stderr.write(`${snippet.source}:${snippet.line + line}: TS${d.code}: ${message}\n`)
    } else {
      process.stderr.write(`${file ?? '(global)'}: TS${d.code}: ${message}\n`)
    }
    errors++
  }
  process.stdout.write(
    `doc snippets: ${files.size} checked in ${markdownFiles().length} files, ${errors} error(s)\n`,
  )
  if (errors === 0) rmSync(outDir, { recursive: true, force: true })
  return errors === 0 ? 0 : 1
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main()
}
