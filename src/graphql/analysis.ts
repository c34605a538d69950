/**
 * The one walk every GraphQL guard shares. A single pass over an
 * operation's selections measures depth, cost, aliases, directives and
 * introspection together; each fragment is walked once per document and its
 * totals reused at every spread, so a fragment spread N times costs one walk,
 * not N, and N nested levels of "spread it twice" stay linear instead of 2^N.
 *
 * No TypeInfo and no graphql-js visitor: a recursive loop over the AST. Types
 * are looked up only when `fieldCosts` needs a parent type name.
 */
import type {
  ArgumentNode,
  DocumentNode,
  FieldNode,
  FragmentDefinitionNode,
  GraphQLSchema,
  OperationDefinitionNode,
  SelectionSetNode,
  ValueNode,
} from 'graphql'
import {
  type ComplexityOptions,
  cachedComplexityOptions,
  type ResolvedComplexityOptions,
} from './options.js'

/**
 * Selection sets and spreads nested deeper than this are not walked, so a
 * hostile document cannot overflow the stack. Such an operation reads
 * `Infinity` for depth and complexity, and every guard refuses it.
 */
export const MAX_NESTING = 1000

const SCHEMA_FIELD = 1
const TYPE_FIELD = 2

/** The cost model, compiled for the walk. */
export class CostModel {
  readonly defaultFieldCost: number
  readonly listArguments: ReadonlySet<string>
  readonly defaultListSize: number
  /** Type → field → cost; `undefined` when empty, and then no type is ever looked up. */
  readonly fieldCosts: ReadonlyMap<string, ReadonlyMap<string, number>> | undefined

  constructor(o: ResolvedComplexityOptions) {
    this.defaultFieldCost = o.defaultFieldCost
    this.listArguments = new Set(o.listArguments)
    this.defaultListSize = o.defaultListSize
    const byType = new Map<string, Map<string, number>>()
    for (const [key, value] of Object.entries(o.fieldCosts)) {
      const dot = key.indexOf('.')
      const type = key.slice(0, dot)
      let fields = byType.get(type)
      if (fields === undefined) {
        fields = new Map()
        byType.set(type, fields)
      }
      fields.set(key.slice(dot + 1), value)
    }
    this.fieldCosts = byType.size === 0 ? undefined : byType
  }
}

// Equal cost models share one instance, so the validation rules and the
// preExecution fallback (built from the same options, parsed twice) hit the
// same per-document cache entry. Bounded: configurations are few.
const models = new Map<string, CostModel>()
const modelOf = new WeakMap<ResolvedComplexityOptions, CostModel>()

export function costModelFor(o: ResolvedComplexityOptions): CostModel {
  const known = modelOf.get(o)
  if (known !== undefined) return known
  const model = internedModel(o)
  modelOf.set(o, model)
  return model
}

function internedModel(o: ResolvedComplexityOptions): CostModel {
  const key = JSON.stringify([
    o.defaultFieldCost,
    o.listArguments,
    o.defaultListSize,
    Object.entries(o.fieldCosts).sort(([a], [b]) => (a < b ? -1 : 1)),
  ])
  let model = models.get(key)
  if (model === undefined) {
    model = new CostModel(o)
    if (models.size < 64) models.set(key, model)
  }
  return model
}

/** What one operation measures. */
export interface OperationMetrics {
  readonly operation: OperationDefinitionNode
  /** Deepest field nesting; `Infinity` past {@link MAX_NESTING}. */
  readonly depth: number
  /** Cost under the model; `Infinity` past {@link MAX_NESTING}. */
  readonly complexity: number
  readonly aliases: number
  readonly directives: number
  /** Bit 1: `__schema`, bit 2: `__type`. */
  readonly introspection: number
  /** The first introspection field met, for the error location. */
  readonly introspectionNode: FieldNode | undefined
  /** A list size came from a variable: the cost may differ once the values are known. */
  readonly costUsesVariables: boolean
}

export interface DocumentMetrics {
  readonly operations: readonly OperationMetrics[]
}

/** A fragment's totals for one use: added at every spread. */
interface FragmentTotals {
  readonly depth: number
  readonly cost: number
  readonly aliases: number
  readonly directives: number
  readonly introspection: number
  readonly introspectionNode: FieldNode | undefined
  readonly costVars: boolean
  readonly truncated: boolean
}

function rootTypeName(
  schema: GraphQLSchema | undefined,
  operation: OperationDefinitionNode,
): string | undefined {
  const kind = operation.operation
  if (schema === undefined) {
    return kind === 'query' ? 'Query' : kind === 'mutation' ? 'Mutation' : 'Subscription'
  }
  const type =
    kind === 'query'
      ? schema.getQueryType()
      : kind === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType()
  return type?.name
}

/**
 * The walk's state. Accumulators are fields, not return values: one walk
 * per operation, no object per node, and the same hidden class throughout.
 */
class Walker {
  aliases = 0
  directives = 0
  introspection = 0
  introspectionNode: FieldNode | undefined = undefined
  costVars = false
  truncated = false
  /** Out-parameter of `selectionSet`: the depth of the set it just walked. */
  depth = 0
  level = 0
  operation: OperationDefinitionNode | undefined = undefined
  /** Totals that read a variable: valid for the current operation only. */
  opMemo: Map<string, FragmentTotals> | undefined = undefined
  // Created on the first spread: most documents have no fragment at all.
  memo: Map<string, FragmentTotals> | undefined = undefined
  open: Set<string> | undefined = undefined
  readonly defaultFieldCost: number
  readonly defaultListSize: number
  readonly listArguments: ReadonlySet<string>
  readonly fieldCosts: ReadonlyMap<string, ReadonlyMap<string, number>> | undefined

  constructor(
    model: CostModel,
    readonly schema: GraphQLSchema | undefined,
    readonly variables: Readonly<Record<string, unknown>> | undefined,
    readonly fragments: ReadonlyMap<string, FragmentDefinitionNode> | undefined,
  ) {
    this.defaultFieldCost = model.defaultFieldCost
    this.defaultListSize = model.defaultListSize
    this.listArguments = model.listArguments
    this.fieldCosts = model.fieldCosts
  }

  measure(op: OperationDefinitionNode): OperationMetrics {
    let directives = op.directives?.length ?? 0
    for (const v of op.variableDefinitions ?? []) directives += v.directives?.length ?? 0
    this.aliases = 0
    this.directives = directives
    this.introspection = 0
    this.introspectionNode = undefined
    this.costVars = false
    this.truncated = false
    this.level = 0
    this.operation = op
    this.opMemo = undefined
    const root = this.fieldCosts === undefined ? undefined : rootTypeName(this.schema, op)
    const cost = this.selectionSet(op.selectionSet, root)
    const truncated = this.truncated
    return {
      operation: op,
      depth: truncated ? Number.POSITIVE_INFINITY : this.depth,
      complexity: truncated ? Number.POSITIVE_INFINITY : cost,
      aliases: this.aliases,
      directives: this.directives,
      introspection: this.introspection,
      introspectionNode: this.introspectionNode,
      costUsesVariables: this.costVars,
    }
  }

  /** Walks a selection set; returns its cost and leaves its depth in `this.depth`. */
  selectionSet(set: SelectionSetNode, parent: string | undefined): number {
    if (this.level >= MAX_NESTING) {
      this.truncated = true
      this.depth = 0
      return 0
    }
    this.level++
    const typed = this.fieldCosts !== undefined
    const selections = set.selections
    let depth = 0
    let cost = 0
    for (let i = 0; i < selections.length; i++) {
      const sel = selections[i]!
      const dirs = sel.directives
      if (dirs !== undefined) this.directives += dirs.length
      if (sel.kind === 'Field') {
        if (sel.alias !== undefined) this.aliases++
        const name = sel.name.value
        // '_' '_': only introspection names start so (the spec reserves them).
        if (name.charCodeAt(0) === 95 && name.charCodeAt(1) === 95) this.introspect(name, sel)
        let own = this.defaultFieldCost
        let child: string | undefined
        if (typed && parent !== undefined) {
          own = this.fieldCost(parent, name)
          child = this.fieldType(parent, name)
        }
        let childCost = 0
        let childDepth = 0
        const sub = sel.selectionSet
        if (sub !== undefined) {
          childCost = this.selectionSet(sub, child)
          childDepth = this.depth
        }
        const args = sel.arguments
        const size = args !== undefined && args.length > 0 ? this.listSize(args) : 1
        cost += size * (own + childCost)
        if (childDepth >= depth) depth = childDepth + 1
      } else if (sel.kind === 'InlineFragment') {
        // No depth of its own: `... on T { a }` is as deep as `a` written inline.
        const cond = sel.typeCondition
        cost += this.selectionSet(
          sel.selectionSet,
          typed && cond !== undefined ? cond.name.value : parent,
        )
        if (this.depth > depth) depth = this.depth
      } else {
        const totals = this.spread(sel.name.value)
        if (totals !== undefined) {
          cost += totals.cost
          if (totals.depth > depth) depth = totals.depth
        }
      }
    }
    this.level--
    this.depth = depth
    return cost
  }

  introspect(name: string, node: FieldNode): void {
    const bit = name === '__schema' ? SCHEMA_FIELD : name === '__type' ? TYPE_FIELD : 0
    if (bit === 0) return
    this.introspection |= bit
    if (this.introspectionNode === undefined) this.introspectionNode = node
  }

  /** A fragment's totals, walked on first use and added at every use. */
  spread(name: string): FragmentTotals | undefined {
    let totals = this.memo?.get(name) ?? this.opMemo?.get(name)
    if (totals === undefined) {
      const def = this.fragments?.get(name)
      // An unknown fragment or a cycle adds nothing here: graphql-js's
      // KnownFragmentNames and NoFragmentCycles rules refuse the document.
      if (def === undefined || this.open?.has(name) === true) return undefined
      totals = this.walkFragment(name, def)
    }
    this.aliases += totals.aliases
    this.directives += totals.directives
    if (totals.introspection !== 0) {
      this.introspection |= totals.introspection
      if (this.introspectionNode === undefined) this.introspectionNode = totals.introspectionNode
    }
    if (totals.costVars) this.costVars = true
    if (totals.truncated) this.truncated = true
    return totals
  }

  walkFragment(name: string, def: FragmentDefinitionNode): FragmentTotals {
    const { aliases, directives, introspection, introspectionNode, costVars, truncated } = this
    this.aliases = 0
    this.directives = def.directives?.length ?? 0
    this.introspection = 0
    this.introspectionNode = undefined
    this.costVars = false
    this.truncated = false
    if (this.open === undefined) this.open = new Set()
    this.open.add(name)
    const type = this.fieldCosts === undefined ? undefined : def.typeCondition.name.value
    const cost = this.selectionSet(def.selectionSet, type)
    this.open.delete(name)
    const totals: FragmentTotals = {
      depth: this.depth,
      cost,
      aliases: this.aliases,
      directives: this.directives,
      introspection: this.introspection,
      introspectionNode: this.introspectionNode,
      costVars: this.costVars,
      truncated: this.truncated,
    }
    this.aliases = aliases
    this.directives = directives
    this.introspection = introspection
    this.introspectionNode = introspectionNode
    this.costVars = costVars
    this.truncated = truncated
    if (totals.costVars) {
      if (this.opMemo === undefined) this.opMemo = new Map()
      this.opMemo.set(name, totals)
    } else {
      if (this.memo === undefined) this.memo = new Map()
      this.memo.set(name, totals)
    }
    return totals
  }

  fieldCost(parent: string, field: string): number {
    const cost = this.fieldCosts?.get(parent)?.get(field)
    return cost === undefined ? this.defaultFieldCost : cost
  }

  /** The named type of `parent.field`, when the schema knows it. */
  fieldType(parent: string, field: string): string | undefined {
    const type = this.schema?.getType(parent)
    if (type === undefined || type === null || !('getFields' in type)) return undefined
    const fields = type.getFields()
    if (!Object.hasOwn(fields, field)) return undefined
    let t: unknown = fields[field]!.type
    while (typeof t === 'object' && t !== null && 'ofType' in t) t = t.ofType
    return (t as { name?: string }).name
  }

  /** The list size a field's arguments ask for; 1 when it has no list argument. */
  listSize(args: readonly ArgumentNode[]): number {
    let size = -1
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!
      if (!this.listArguments.has(arg.name.value)) continue
      const n = this.sizeOf(arg.value)
      if (n > size) size = n
    }
    return size < 0 ? 1 : size
  }

  sizeOf(value: ValueNode): number {
    if (value.kind === 'IntValue') return this.size(Number(value.value))
    if (value.kind !== 'Variable') return this.defaultListSize
    this.costVars = true
    const name = value.name.value
    const vars = this.variables
    if (vars !== undefined && Object.hasOwn(vars, name)) {
      const v = vars[name]
      return typeof v === 'number' ? this.size(v) : this.defaultListSize
    }
    for (const def of this.operation?.variableDefinitions ?? []) {
      if (def.variable.name.value === name) {
        const dflt = def.defaultValue
        return dflt?.kind === 'IntValue' ? this.size(Number(dflt.value)) : this.defaultListSize
      }
    }
    return this.defaultListSize
  }

  /**
   * A non-negative integer is the size (0 counts as 1: the field is still
   * resolved). Anything else (negative, fractional) gets the default: a
   * resolver may read it as "no limit", so it must not come out cheaper.
   */
  size(n: number): number {
    return Number.isInteger(n) && n >= 0 ? (n === 0 ? 1 : n) : this.defaultListSize
  }
}

function walk(
  document: DocumentNode,
  model: CostModel,
  schema: GraphQLSchema | undefined,
  variables: Readonly<Record<string, unknown>> | undefined,
  only: OperationDefinitionNode | undefined,
): DocumentMetrics {
  let fragments: Map<string, FragmentDefinitionNode> | undefined
  const operations: OperationDefinitionNode[] = []
  for (const def of document.definitions) {
    // The last definition of a name wins, as in graphql-js's execution.
    if (def.kind === 'FragmentDefinition') {
      if (fragments === undefined) fragments = new Map()
      fragments.set(def.name.value, def)
    } else if (def.kind === 'OperationDefinition') {
      operations.push(def)
    }
  }
  const walker = new Walker(model, schema, variables, fragments)
  const targets = only === undefined ? operations : [only]
  return { operations: targets.map((op) => walker.measure(op)) }
}

interface CacheEntry {
  readonly document: DocumentNode
  readonly model: CostModel
  readonly schema: GraphQLSchema | undefined
  readonly metrics: DocumentMetrics
}

// Measurements per document, shared by every guard of the process: mercurius
// keeps the DocumentNode of a cached query, so the preExecution fallback
// finds on every later request what was measured once. Documents are
// treated as immutable.
const cache = new WeakMap<DocumentNode, CacheEntry>()

// The validation rules' last measurement. A WeakMap write costs about as much
// as the walk itself (and more in the collector), and most validations are
// never looked up again (graphql-js without the plugin; mercurius asks for
// the document only in preExecution, right after validating it). So the
// rules keep one entry here, strongly held, and `cachedMetrics` moves it into
// the WeakMap when the same document comes back.
let last: CacheEntry | undefined

function matches(
  entry: CacheEntry | undefined,
  document: DocumentNode,
  model: CostModel,
  schema: GraphQLSchema | undefined,
): entry is CacheEntry {
  return (
    entry !== undefined &&
    entry.document === document &&
    entry.model === model &&
    entry.schema === schema
  )
}

/** Without field costs the schema changes nothing: do not key on it. */
const keyOf = (model: CostModel, schema: GraphQLSchema | undefined) =>
  model.fieldCosts === undefined ? undefined : schema

/**
 * Every operation's metrics, measured once per document, model and schema.
 * `keep` puts them in the per-document cache (the plugin, per-request entry
 * points); without it (validation rules) they go to the one-entry slot.
 */
function metricsFor(
  document: DocumentNode,
  model: CostModel,
  schema: GraphQLSchema | undefined,
  keep: boolean,
): DocumentMetrics {
  const keySchema = keyOf(model, schema)
  const hit = cache.get(document)
  if (matches(hit, document, model, keySchema)) return hit.metrics
  let entry = last
  if (!matches(entry, document, model, keySchema)) {
    const metrics = walk(document, model, keySchema, undefined, undefined)
    entry = { document, model, schema: keySchema, metrics }
    if (!keep) last = entry
  }
  if (keep) cache.set(document, entry)
  return entry.metrics
}

/** For a validation rule: measured, or found in either cache; kept in the slot. */
export const documentMetrics = (
  document: DocumentNode,
  model: CostModel,
  schema: GraphQLSchema | undefined,
): DocumentMetrics => metricsFor(document, model, schema, false)

/** For later requests: kept per document. */
export const cachedMetrics = (
  document: DocumentNode,
  model: CostModel,
  schema: GraphQLSchema | undefined,
): DocumentMetrics => metricsFor(document, model, schema, true)

/** One operation measured again with the request's variables (never cached). */
export function withVariables(
  document: DocumentNode,
  metrics: OperationMetrics,
  model: CostModel,
  schema: GraphQLSchema | undefined,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): OperationMetrics {
  if (!metrics.costUsesVariables || variables === undefined || variables === null) return metrics
  return walk(document, model, keyOf(model, schema), variables, metrics.operation).operations[0]!
}

/** The operations `operationName` selects: that one, or every one when absent. */
export function selectOperations(
  metrics: DocumentMetrics,
  operationName: string | null | undefined,
): readonly OperationMetrics[] {
  if (operationName === undefined || operationName === null) return metrics.operations
  return metrics.operations.filter((m) => m.operation.name?.value === operationName)
}

/** What {@link analyzeDocument} reports. */
export interface DocumentAnalysis {
  /** Deepest field nesting, fragments expanded: `{ a { b } }` is 2. */
  readonly depth: number
  /** Cost under the model (see `ComplexityOptions`). */
  readonly complexity: number
  /** Aliases, each fragment counted once per spread. */
  readonly aliases: number
  /** Directive uses, each fragment counted once per spread. */
  readonly directives: number
  /** `__schema` and/or `__type` when the document introspects (`__typename` is never listed). */
  readonly introspectionFields: readonly string[]
}

export interface AnalyzeOptions {
  /** Needed for `fieldCosts` below the root types. */
  readonly schema?: GraphQLSchema | undefined
  /** The operation to measure; every operation when absent (each figure is then the largest). */
  readonly operationName?: string | null | undefined
  /** The cost model. */
  readonly complexity?: ComplexityOptions | undefined
  /** The request's variables: list sizes given by a variable then use its value. */
  readonly variables?: Readonly<Record<string, unknown>> | null | undefined
}

function combine(operations: readonly OperationMetrics[]): DocumentAnalysis {
  let depth = 0
  let complexity = 0
  let aliases = 0
  let directives = 0
  let introspection = 0
  for (const m of operations) {
    if (m.depth > depth) depth = m.depth
    if (m.complexity > complexity) complexity = m.complexity
    if (m.aliases > aliases) aliases = m.aliases
    if (m.directives > directives) directives = m.directives
    introspection |= m.introspection
  }
  const introspectionFields: string[] = []
  if (introspection & SCHEMA_FIELD) introspectionFields.push('__schema')
  if (introspection & TYPE_FIELD) introspectionFields.push('__type')
  return { depth, complexity, aliases, directives, introspectionFields }
}

/**
 * Measures a parsed document in one walk: depth, cost, aliases, directives
 * and introspection. Framework-free: use it to charge a request's cost to a
 * rate limiter. Results are cached per document (treated as immutable), and
 * `options.complexity` is read once per object.
 *
 * @example
 * ```ts
 * import { parse } from 'graphql'
 * import { analyzeDocument } from 'fraiseql-security/graphql'
 * const a = analyzeDocument(parse('{ users(first: 10) { id name } }'))
 * // { depth: 2, complexity: 30, aliases: 0, directives: 0, introspectionFields: [] }
 * ```
 */
export function analyzeDocument(
  document: DocumentNode,
  options: AnalyzeOptions = {},
): DocumentAnalysis {
  const model = costModelFor(cachedComplexityOptions('analyzeDocument', options.complexity))
  const metrics = cachedMetrics(document, model, options.schema)
  let operations = selectOperations(metrics, options.operationName)
  const variables = options.variables
  if (variables !== undefined && variables !== null) {
    operations = operations.map((m) => withVariables(document, m, model, options.schema, variables))
  }
  return combine(operations)
}

/**
 * The cost of a document (of `operationName`, else its costliest
 * operation): what `maxComplexity` compares and `chargeCost` receives.
 *
 * @example
 * ```ts
 * const cost = computeComplexity(document, { operationName, variables, complexity: { fieldCosts: { 'Query.search': 10 } } })
 * await limiter.consume(key, limiter.globalPolicies, cost)
 * ```
 */
export function computeComplexity(document: DocumentNode, options: AnalyzeOptions = {}): number {
  return analyzeDocument(document, options).complexity
}
