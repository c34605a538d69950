/**
 * What the tracer reads from a document: which operation runs, the document
 * printed with its literals replaced, and what error messages must be
 * scrubbed of (every literal the printed document hides, and which
 * variables a sensitive argument binds). Each is computed only when a
 * recording span needs it, and kept per `DocumentNode`: servers (mercurius
 * among them) reuse the node of a cached query.
 */
import type {
  ASTNode,
  DocumentNode,
  OperationDefinitionNode,
  StringValueNode,
  ValueNode,
} from 'graphql'
import type { GraphqlRuntime } from '../../internal/graphql-runtime.js'
import { type KeyMatcher, REDACTED } from '../redact.js'

/**
 * The operation that runs: the one `operationName` names, else the only
 * one; `undefined` when that cannot be told (graphql-js then refuses to run
 * the document anyway).
 */
export function selectOperation(
  document: DocumentNode,
  operationName: string | null | undefined,
): OperationDefinitionNode | undefined {
  let found: OperationDefinitionNode | undefined
  for (const def of document.definitions) {
    if (def.kind !== 'OperationDefinition') continue
    if (operationName !== undefined && operationName !== null) {
      if (def.name?.value === operationName) return def
    } else {
      if (found !== undefined) return undefined
      found = def
    }
  }
  return found
}

/** Printed documents with no bare value to hide: their text depends on nothing else. */
const printed = new WeakMap<DocumentNode, string>()
/** Printed documents that hide bare values: per facts, since a tracer's patterns found them. */
const printedWithBare = new WeakMap<SensitiveFacts, string>()

/**
 * The document as graphql-js prints it, every string, integer and float
 * literal replaced by `"[REDACTED]"` (the semantic conventions allow a
 * sanitized `graphql.document`; inline arguments are where secrets hide:
 * `login(password: "hunter2")`), and so is each bare value in `facts.bare`
 * (`login(password: hunter2)`). Other booleans, enums and null stay: the
 * schema fixes their values.
 */
export function redactedDocument(
  runtime: GraphqlRuntime,
  document: DocumentNode,
  facts: SensitiveFacts,
): string {
  const bare = facts.bare
  let text = bare.size === 0 ? printed.get(document) : printedWithBare.get(facts)
  if (text === undefined) {
    const replace = (): StringValueNode => ({ kind: 'StringValue' as never, value: REDACTED })
    const redacted = runtime.visit(document, {
      StringValue: { leave: replace },
      IntValue: { leave: replace },
      FloatValue: { leave: replace },
      EnumValue: { leave: (node: ValueNode) => (bare.has(node) ? replace() : undefined) },
    }) as DocumentNode
    text = runtime.print(redacted)
    if (bare.size === 0) printed.set(document, text)
    else printedWithBare.set(facts, text)
  }
  return text
}

/** What a document tells about its secrets. */
export interface SensitiveFacts {
  /**
   * Every non-empty string, integer and float literal (the value, as parsed,
   * and a block string as graphql-js prints it), wherever it stands, and
   * each bare value of {@link bare}: the literals {@link redactedDocument}
   * hides, which graphql-js echoes in its own errors (`Int cannot represent
   * non-integer value: "…"`) whatever the argument's name.
   */
  readonly literals: readonly string[]
  /** Variables bound to a sensitive argument or input field: `login(password: $p)` makes `p` sensitive. */
  readonly variables: ReadonlySet<string>
  /**
   * Enum values (bare words) under a sensitive argument or input field, or
   * in the default of a sensitive variable: where a string was expected,
   * `login(password: hunter2)` is one, and graphql-js echoes it.
   */
  readonly bare: ReadonlySet<ValueNode>
}

const NO_FACTS: SensitiveFacts = { literals: [], variables: new Set(), bare: new Set() }

/** Adds the variables `value` uses to `variables`, and its bare values to `bare`. */
function collectSensitive(node: ValueNode, variables: Set<string>, bare: Set<ValueNode>): void {
  switch (node.kind) {
    case 'Variable':
      variables.add(node.name.value)
      return
    case 'EnumValue':
      bare.add(node)
      return
    case 'ListValue':
      for (const item of node.values) collectSensitive(item, variables, bare)
      return
    case 'ObjectValue':
      for (const field of node.fields) collectSensitive(field.value, variables, bare)
      return
    default:
      return
  }
}

/** The sensitive facts of `document` under `matcher`; the caller caches them. */
export function sensitiveFacts(
  runtime: GraphqlRuntime,
  document: DocumentNode,
  matcher: KeyMatcher,
): SensitiveFacts {
  const literals = new Set<string>()
  const variables = new Set<string>()
  const bare = new Set<ValueNode>()
  runtime.visit(document, {
    enter(node: ASTNode) {
      switch (node.kind) {
        case 'StringValue':
          if (node.value !== '') literals.add(node.value)
          // graphql-js prints a block string as one (`"""…"""`, `\"""` for `"""`).
          if (node.block === true) literals.add(runtime.print(node).slice(3, -3))
          break
        case 'IntValue':
        case 'FloatValue':
          if (node.value !== '') literals.add(node.value)
          break
        case 'Argument':
        case 'ObjectField':
          if (matcher.isSensitive(node.name.value)) collectSensitive(node.value, variables, bare)
          break
        case 'VariableDefinition':
          if (matcher.isSensitive(node.variable.name.value)) variables.add(node.variable.name.value)
          break
      }
      return undefined
    },
  })
  // A sensitive variable's default is as secret as the value it stands for;
  // the variable is known sensitive only once its uses are seen.
  for (const def of document.definitions) {
    if (def.kind !== 'OperationDefinition') continue
    for (const v of def.variableDefinitions ?? []) {
      if (v.defaultValue !== undefined && variables.has(v.variable.name.value)) {
        collectSensitive(v.defaultValue, new Set(), bare)
      }
    }
  }
  for (const node of bare) literals.add((node as { value: string }).value)
  return literals.size === 0 && variables.size === 0 && bare.size === 0
    ? NO_FACTS
    : { literals: [...literals], variables, bare }
}
