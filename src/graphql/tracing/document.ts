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
import { type KeyMatcher, REDACTED } from '../redact.js'
import type { GraphqlRuntime } from '../runtime.js'

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

const printed = new WeakMap<DocumentNode, string>()

/**
 * The document as graphql-js prints it, every string, integer and float
 * literal replaced by `"[REDACTED]"` (the semantic conventions allow a
 * sanitized `graphql.document`; inline arguments are where secrets hide:
 * `login(password: "hunter2")`). Booleans, enums and null stay: the schema
 * fixes their values.
 */
export function redactedDocument(runtime: GraphqlRuntime, document: DocumentNode): string {
  let text = printed.get(document)
  if (text === undefined) {
    const replace = (): StringValueNode => ({ kind: 'StringValue' as never, value: REDACTED })
    const redacted = runtime.visit(document, {
      StringValue: { leave: replace },
      IntValue: { leave: replace },
      FloatValue: { leave: replace },
    }) as DocumentNode
    text = runtime.print(redacted)
    printed.set(document, text)
  }
  return text
}

/** What a document tells about its secrets. */
export interface SensitiveFacts {
  /**
   * Every non-empty string, integer and float literal (the value, as parsed),
   * wherever it stands: the literals {@link redactedDocument} hides, which
   * graphql-js echoes in its own errors (`Int cannot represent non-integer
   * value: "…"`) whatever the argument's name.
   */
  readonly literals: readonly string[]
  /** Variables bound to a sensitive argument or input field: `login(password: $p)` makes `p` sensitive. */
  readonly variables: ReadonlySet<string>
}

const NO_FACTS: SensitiveFacts = { literals: [], variables: new Set() }

/** Adds the variables `value` uses to `variables`. */
function collectVariables(node: ValueNode, variables: Set<string>): void {
  switch (node.kind) {
    case 'Variable':
      variables.add(node.name.value)
      return
    case 'ListValue':
      for (const item of node.values) collectVariables(item, variables)
      return
    case 'ObjectValue':
      for (const field of node.fields) collectVariables(field.value, variables)
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
  runtime.visit(document, {
    enter(node: ASTNode) {
      switch (node.kind) {
        case 'StringValue':
        case 'IntValue':
        case 'FloatValue':
          if (node.value !== '') literals.add(node.value)
          break
        case 'Argument':
        case 'ObjectField':
          if (matcher.isSensitive(node.name.value)) collectVariables(node.value, variables)
          break
        case 'VariableDefinition':
          if (matcher.isSensitive(node.variable.name.value)) variables.add(node.variable.name.value)
          break
      }
      return undefined
    },
  })
  return literals.size === 0 && variables.size === 0
    ? NO_FACTS
    : { literals: [...literals], variables }
}
