/**
 * npm lockfiles, versions 2 and 3: the `packages` map, keyed by install
 * location (`""` is the root, `node_modules/a/node_modules/b` a nested copy,
 * `packages/x` a workspace folder). Read without npm and without the network.
 *
 * Flags (npm's package-lock.json documentation): `dev` — only in the
 * devDependencies tree; `optional` — only in the optionalDependencies tree;
 * `devOptional` — a dev dependency and an optional dependency of a non-dev
 * one; `inBundle` — shipped inside its parent's tarball; `link` — a symlink
 * whose target is the entry at `resolved`.
 */
import { existsSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import {
  LockfileNotFoundError,
  MalformedLockfileError,
  UnsupportedLockfileError,
} from './errors.js'
import { isJsonObject, readJsonFile } from './json-file.js'

/** npm reads the shrinkwrap first when both exist. */
export const LOCKFILE_NAMES = ['npm-shrinkwrap.json', 'package-lock.json'] as const

/** The fields we read, with the JSON type each must have when present. */
const STRING_FIELDS = ['name', 'version', 'resolved', 'integrity'] as const
const FLAG_FIELDS = [
  'dev',
  'optional',
  'devOptional',
  'peer',
  'inBundle',
  'link',
  'extraneous',
] as const
const MAP_FIELDS = [
  'dependencies',
  'optionalDependencies',
  'peerDependencies',
  'devDependencies',
] as const

interface RawEntry {
  name?: string
  version?: string
  resolved?: string
  integrity?: string
  license?: unknown
  dev?: boolean
  optional?: boolean
  devOptional?: boolean
  inBundle?: boolean
  link?: boolean
  extraneous?: boolean
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, unknown>
}

/**
 * Checks one `packages` entry by hand: a schema library costs more here than
 * the rest of the parse (hundreds of entries per lockfile). Returns the
 * problem as `path: what is wrong`, or undefined.
 */
function checkEntry(location: string, value: unknown): string | undefined {
  const at = (...path: string[]) => describePath(['packages', location, ...path])
  if (!isJsonObject(value)) return `${at()}: expected an object`
  for (const f of STRING_FIELDS) {
    const v = value[f]
    if (v !== undefined && typeof v !== 'string') return `${at(f)}: expected a string`
  }
  if (value.name === '') return `${at('name')}: expected a non-empty string`
  for (const f of FLAG_FIELDS) {
    const v = value[f]
    if (v !== undefined && typeof v !== 'boolean') return `${at(f)}: expected true or false`
  }
  for (const f of MAP_FIELDS) {
    const v = value[f]
    if (v === undefined) continue
    if (!isJsonObject(v)) return `${at(f)}: expected an object of name → version range`
    for (const [dep, range] of Object.entries(v)) {
      if (typeof range !== 'string') return `${at(f, dep)}: expected a version range string`
    }
  }
  const meta = value.peerDependenciesMeta
  if (meta !== undefined && !isJsonObject(meta))
    return `${at('peerDependenciesMeta')}: expected an object`
  return undefined
}

/** One entry of the `packages` map, with the alias and the link resolved. */
export interface LockfileEntry {
  /** Its key in `packages`. */
  readonly location: string
  /** The name it is installed under (the folder name; an `npm:` alias's own name). */
  readonly installName: string
  /** The real package name (`name` for aliases and workspace folders). */
  readonly name: string
  readonly version: string | undefined
  readonly resolved: string | undefined
  readonly integrity: string | undefined
  readonly license: unknown
  readonly dev: boolean
  readonly optional: boolean
  readonly devOptional: boolean
  readonly inBundle: boolean
  readonly link: boolean
  readonly extraneous: boolean
  /** Production, optional and peer dependencies: name → range. */
  readonly dependencies: Readonly<Record<string, string>>
  /** Names among `dependencies` that may be absent (optional, or peers marked optional). */
  readonly mayBeAbsent: ReadonlySet<string>
  /** Only the root and workspace folders record these. */
  readonly devDependencies: Readonly<Record<string, string>>
}

export interface Lockfile {
  /** Absolute path of the lockfile. */
  readonly file: string
  /** The project directory: locations are relative to it. */
  readonly dir: string
  readonly lockfileVersion: 2 | 3
  /** The `""` entry. */
  readonly root: LockfileEntry
  /** Every entry except the root, in file order. */
  readonly entries: ReadonlyMap<string, LockfileEntry>
}

/** The lockfile for `path`: the file itself, or the one npm would use in that directory. */
export function findLockfile(path: string): string {
  const target = resolve(path)
  let isFile: boolean
  try {
    isFile = statSync(target).isFile()
  } catch {
    throw new LockfileNotFoundError(target, 'no such file or directory')
  }
  if (isFile) return target
  for (const name of LOCKFILE_NAMES) {
    const candidate = join(target, name)
    if (existsSync(candidate)) return candidate
  }
  throw new LockfileNotFoundError(target)
}

/** `node_modules/@s/a/node_modules/b` → `b`; `node_modules/@s/a` → `@s/a`; `packages/x` → `x`. */
export function nameFromLocation(location: string): string {
  const at = location.lastIndexOf('node_modules/')
  if (at !== -1) return location.slice(at + 'node_modules/'.length)
  const slash = location.lastIndexOf('/')
  return slash === -1 ? location : location.slice(slash + 1)
}

/** `packages["node_modules/x"].version` */
function describePath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (/^[A-Za-z_$][\w$]*$/.test(String(part)))
      out += out === '' ? String(part) : `.${String(part)}`
    else out += `[${JSON.stringify(String(part))}]`
  }
  return out
}

function toEntry(location: string, raw: RawEntry): LockfileEntry {
  const installName = nameFromLocation(location)
  const mayBeAbsent = new Set<string>(Object.keys(raw.optionalDependencies ?? {}))
  for (const [peer, meta] of Object.entries(raw.peerDependenciesMeta ?? {})) {
    if (isJsonObject(meta) && meta.optional === true) mayBeAbsent.add(peer)
  }
  return {
    location,
    installName,
    name: raw.name ?? installName,
    version: raw.version,
    resolved: raw.resolved,
    integrity: raw.integrity,
    license: raw.license,
    dev: raw.dev === true,
    optional: raw.optional === true,
    devOptional: raw.devOptional === true,
    inBundle: raw.inBundle === true,
    link: raw.link === true,
    extraneous: raw.extraneous === true,
    dependencies: {
      ...raw.peerDependencies,
      ...raw.optionalDependencies,
      ...raw.dependencies,
    },
    mayBeAbsent,
    devDependencies: raw.devDependencies ?? {},
  }
}

/** Parses `file`; every problem is a typed error that names the file. */
export function readLockfile(file: string): Lockfile {
  const read = readJsonFile(file)
  if (!read.ok) {
    if (read.reason === 'missing') throw new LockfileNotFoundError(file)
    throw new MalformedLockfileError(file, read.problem)
  }
  const json = read.value
  if (!isJsonObject(json)) {
    throw new MalformedLockfileError(file, 'is not a JSON object')
  }
  const version = json.lockfileVersion
  if (version !== 2 && version !== 3) throw new UnsupportedLockfileError(file, version)
  const packages = json.packages
  if (!isJsonObject(packages)) {
    throw new MalformedLockfileError(
      file,
      `has no "packages" object (lockfileVersion ${version} files always have one)`,
    )
  }
  const entries = new Map<string, LockfileEntry>()
  let root: LockfileEntry | undefined
  for (const [location, value] of Object.entries(packages)) {
    const problem = checkEntry(location, value)
    if (problem !== undefined) throw new MalformedLockfileError(file, problem)
    const entry = toEntry(location, value as RawEntry)
    if (location === '') root = entry
    else entries.set(location, entry)
  }
  const dir = dirname(file)
  root ??= toEntry('', {
    ...(typeof json.name === 'string' && json.name !== '' ? { name: json.name } : {}),
    ...(typeof json.version === 'string' ? { version: json.version } : {}),
  })
  for (const entry of entries.values()) {
    if (entry.link && entry.resolved === undefined) {
      throw new MalformedLockfileError(
        file,
        `${describePath(['packages', entry.location])}: a link without "resolved" (its target)`,
      )
    }
  }
  return { file, dir, lockfileVersion: version, root, entries }
}

/**
 * Where `name` resolves from the package at `location`, following Node's
 * lookup: `<location>/node_modules/<name>`, then each parent directory's
 * `node_modules`. Returns the location, or undefined when nothing matches.
 */
export function resolveDependency(
  entries: ReadonlyMap<string, unknown>,
  location: string,
  name: string,
): string | undefined {
  let dir = location
  for (;;) {
    const candidate = dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`
    if (entries.has(candidate)) return candidate
    if (dir === '') return undefined
    const parent = dirname(dir)
    dir = parent === '.' || parent === '/' ? '' : parent
  }
}
