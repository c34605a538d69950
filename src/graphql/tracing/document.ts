/**
 * What the tracer reads from a document: which operation runs, the document
 * printed with its literals replaced, and the values a sensitive argument
 * carries (for scrubbing error messages). Each is computed only when a
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

/** What a document tells about its sensitive arguments. */
export interface SensitiveFacts {
  /** Literal values (as written) under sensitive argument, input field or variable names. */
  readonly literals: readonly string[]
  /** Variables bound to a sensitive argument or input field: `login(password: $p)` makes `p` sensitive. */
  readonly variables: ReadonlySet<string>
}

const NO_FACTS: SensitiveFacts = { literals: [], variables: new Set() }

/** Adds the scalar literals of `value` to `literals` and its variables to `variables`. */
function collectValue(node: ValueNode, literals: Set<string>, variables: Set<string>): void {
  switch (node.kind) {
    case 'StringValue':
      if (node.value !== '') literals.add(node.value)
      return
    case 'IntValue':
    case 'FloatValue':
      literals.add(node.value)
      return
    case 'Variable':
      variables.add(node.name.value)
      return
    case 'ListValue':
      for (const item of node.values) collectValue(item, literals, variables)
      return
    case 'ObjectValue':
      for (const field of node.fields) collectValue(field.value, literals, variables)
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
      if (node.kind === 'Argument' || node.kind === 'ObjectField') {
        if (matcher.isSensitive(node.name.value)) collectValue(node.value, literals, variables)
      } else if (node.kind === 'VariableDefinition') {
        const name = node.variable.name.value
        if (matcher.isSensitive(name)) {
          variables.add(name)
          if (node.defaultValue !== undefined) collectValue(node.defaultValue, literals, variables)
        }
      }
      return undefined
    },
  })
  return literals.size === 0 && variables.size === 0
    ? NO_FACTS
    : { literals: [...literals], variables }
}
