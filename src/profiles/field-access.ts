/**
 * The `Type.field` coordinates an operation selects, for the audit record
 * of a profile with `auditFieldAccess`: which data a principal asked for,
 * never with what arguments. Walks the selection with the schema's types
 * (fragments expanded once each, inline fragments switching the parent
 * type) through the schema's own methods, so graphql-js is not imported.
 */
import type {
  DocumentNode,
  FragmentDefinitionNode,
  GraphQLSchema,
  OperationDefinitionNode,
  SelectionSetNode,
} from 'graphql'
import { MAX_NESTING } from '../graphql/index.js'

/** The part of a named GraphQL type the walk reads. */
interface NamedType {
  readonly name: string
  getFields?(): Record<string, { readonly type: unknown }>
}

/** The named type under list and non-null wrappers. */
function namedType(type: unknown): NamedType | undefined {
  let t = type as { ofType?: unknown; name?: unknown } | null | undefined
  while (t?.ofType !== undefined && t.ofType !== null) t = t.ofType as typeof t
  return typeof t?.name === 'string' ? (t as unknown as NamedType) : undefined
}

/** Introspection's meta-fields, which no type lists among its fields. */
const META_FIELDS: Readonly<Record<string, string>> = { __schema: '__Schema', __type: '__Type' }

function rootType(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
): NamedType | null | undefined {
  switch (operation.operation) {
    case 'query':
      return schema.getQueryType()
    case 'mutation':
      return schema.getMutationType()
    default:
      return schema.getSubscriptionType()
  }
}

/**
 * The coordinates `operations` select in `document`, in order of first use,
 * each once. `__typename` is left out (it reads no data).
 */
export function selectedFields(
  schema: GraphQLSchema,
  document: DocumentNode,
  operations: readonly OperationDefinitionNode[],
): string[] {
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const d of document.definitions) {
    if (d.kind === 'FragmentDefinition') fragments.set(d.name.value, d)
  }
  const seen = new Set<string>()
  // A fragment has one type condition: once expanded, it adds nothing new.
  const expanded = new Set<string>()

  const walk = (set: SelectionSetNode, parent: NamedType | undefined, level: number): void => {
    // Past what the guards let through anyway; the record stays bounded.
    if (level > MAX_NESTING) return
    for (const s of set.selections) {
      if (s.kind === 'Field') {
        const name = s.name.value
        if (name === '__typename') continue
        let child: NamedType | undefined
        if (parent !== undefined) {
          seen.add(`${parent.name}.${name}`)
          const meta = META_FIELDS[name]
          child =
            meta === undefined
              ? namedType(parent.getFields?.()[name]?.type)
              : ((schema.getType(meta) as NamedType | null | undefined) ?? undefined)
        }
        if (s.selectionSet !== undefined) walk(s.selectionSet, child, level + 1)
      } else if (s.kind === 'InlineFragment') {
        const on = s.typeCondition?.name.value
        const type =
          on === undefined ? parent : ((schema.getType(on) as NamedType | null) ?? undefined)
        walk(s.selectionSet, type, level + 1)
      } else {
        const name = s.name.value
        const fragment = fragments.get(name)
        if (fragment === undefined || expanded.has(name)) continue
        expanded.add(name)
        const type = schema.getType(fragment.typeCondition.name.value) as NamedType | null
        walk(fragment.selectionSet, type ?? undefined, level + 1)
      }
    }
  }

  for (const op of operations) walk(op.selectionSet, rootType(schema, op) ?? undefined, 1)
  return [...seen]
}
