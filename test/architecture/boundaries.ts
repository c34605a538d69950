/**
 * Scans `src/` for imports that cross a capability boundary through a private
 * file. A capability is a folder directly under `src/` other than `internal/`;
 * it may be entered only through its public entries: `<cap>/index.ts` and the
 * subpaths published in package.json `exports` (ARCHITECTURE.md, "Folders and
 * entry points"). `src/internal/` and the root files (`errors.ts`, `index.ts`)
 * are shared by all.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'

export interface BoundaryViolation {
  /** Importing file, relative to the source root, `/`-separated. */
  readonly file: string
  /** The module specifier as written. */
  readonly specifier: string
  /** The file it resolves to, relative to the source root. */
  readonly target: string
}

/** Every module specifier of a file: static imports/exports, `import()`, `import('x').T`. */
export function moduleSpecifiers(fileName: string, source: string): string[] {
  const sourceFile = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true)
  const specifiers: string[] = []
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteralLike(node.moduleSpecifier)
    ) {
      specifiers.push(node.moduleSpecifier.text)
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      specifiers.push(node.arguments[0].text)
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteralLike(node.argument.literal)
    ) {
      specifiers.push(node.argument.literal.text)
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteralLike(node.moduleReference.expression)
    ) {
      specifiers.push(node.moduleReference.expression.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(sourceFile)
  return specifiers
}

/**
 * Source entries published by package.json `exports`, relative to the source
 * root: `./dist/http/testing/index.d.ts` → `http/testing/index.ts`.
 */
export function publishedEntries(exportsField: Record<string, unknown>): Set<string> {
  const entries = new Set<string>()
  for (const target of Object.values(exportsField)) {
    if (target === null || typeof target !== 'object') continue
    const types = (target as Record<string, unknown>).types
    if (typeof types !== 'string') continue
    const match = /^\.\/dist\/(.+)\.d\.ts$/.exec(types)
    if (match?.[1] !== undefined) entries.add(`${match[1]}.ts`)
  }
  return entries
}

/** The capability a source-root-relative path belongs to, or `undefined` for shared code. */
export function capabilityOf(path: string): string | undefined {
  const slash = path.indexOf('/')
  if (slash === -1) return undefined
  const top = path.slice(0, slash)
  return top === 'internal' ? undefined : top
}

/**
 * Checks one import. `from` and `to` are source-root-relative, `/`-separated
 * paths of `.ts` files.
 */
export function isBoundaryViolation(from: string, to: string, entries: Set<string>): boolean {
  const fromCapability = capabilityOf(from)
  const toCapability = capabilityOf(to)
  if (toCapability === undefined || fromCapability === toCapability) return false
  return !(to === `${toCapability}/index.ts` || entries.has(to))
}

/**
 * The file a relative specifier names, relative to the source root: `.js`
 * (NodeNext's spelling) is the `.ts` beside it; other extensions (`.json`)
 * stay. `undefined` for a package specifier or a file outside the root.
 */
export function resolveSpecifier(
  root: string,
  fromFile: string,
  specifier: string,
): string | undefined {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined
  const absolute = resolve(dirname(join(root, fromFile)), specifier)
  const source = absolute.replace(/\.([mc]?)js$/, '.$1ts')
  const target = relative(root, source).split(sep).join('/')
  return target.startsWith('../') ? undefined : target
}

function listTypeScript(root: string, dir = ''): string[] {
  const files: string[] = []
  const entries = readdirSync(join(root, dir), { withFileTypes: true })
  entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
  for (const entry of entries) {
    const path = dir === '' ? entry.name : `${dir}/${entry.name}`
    if (entry.isDirectory()) files.push(...listTypeScript(root, path))
    else if (entry.isFile() && entry.name.endsWith('.ts')) files.push(path)
  }
  return files
}

/** Every cross-capability import of a private file under `root`. */
export function findBoundaryViolations(root: string, entries: Set<string>): BoundaryViolation[] {
  const violations: BoundaryViolation[] = []
  for (const file of listTypeScript(root)) {
    const source = readFileSync(join(root, file), 'utf8')
    for (const specifier of moduleSpecifiers(file, source)) {
      const target = resolveSpecifier(root, file, specifier)
      if (target !== undefined && isBoundaryViolation(file, target, entries)) {
        violations.push({ file, specifier, target })
      }
    }
  }
  return violations
}
