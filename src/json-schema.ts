// TypeBox writes a union of string literals as anyOf [{const}, ...] and a nullable value as
// anyOf [X, {type: null}]. Both mean the same as JSON Schema's own `enum` and a `type` list,
// which are what OpenAPI tools read best and what the response serializer can check without a
// validator (fast-json-stringify validates every anyOf branch with Ajv, per response). This is
// the one rewrite between the schemas the routes declare and what is served or compiled.
import SerializerSelector from '@fastify/fast-json-stringify-compiler'

type Schema = Record<string, unknown>

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v)
const isNull = (s: unknown) => isObject(s) && s.type === 'null' && Object.keys(s).length === 1
// A literal: TypeBox writes { const }, @fastify/swagger's OpenAPI 3.1 output { type, enum: [one] }.
const literalOf = (s: unknown): string | undefined => {
  if (!isObject(s) || Object.keys(s).some((k) => k !== 'const' && k !== 'type' && k !== 'enum')) return undefined
  if (typeof s.const === 'string') return s.const
  return Array.isArray(s.enum) && s.enum.length === 1 && typeof s.enum[0] === 'string' ? s.enum[0] : undefined
}

/** The schema with unions of string literals as `enum` and nullable unions as a `type` list. */
export function plainJsonSchema<T>(schema: T): T {
  return rewrite(schema) as T
}

function rewrite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewrite)
  if (!isObject(value)) return value
  // Own string keys only: TypeBox's symbol keys stay behind.
  const out: Schema = {}
  for (const [k, v] of Object.entries(value)) out[k] = k === 'const' || k === 'enum' || k === 'examples' || k === 'default' ? v : rewrite(v)
  const anyOf = out.anyOf
  if (!Array.isArray(anyOf) || anyOf.length < 2) return out
  const { anyOf: _, ...rest } = out
  const literals = anyOf.map(literalOf)
  if (literals.every((l) => l !== undefined)) return { ...rest, type: 'string', enum: literals }
  const others = anyOf.filter((s) => !isNull(s))
  const [only] = others
  if (others.length !== anyOf.length - 1 || !isObject(only) || typeof only.type !== 'string' || only.$ref !== undefined) return out
  return {
    ...only,
    ...rest,
    type: [only.type, 'null'],
    ...(Array.isArray(only.enum) ? { enum: [...(only.enum as unknown[]), null] } : {})
  }
}

/** Fastify's own serializer compiler, fed the rewritten schemas (Fastify's schemaController). */
export const buildSerializer: SerializerSelector.SerializerFactory = (externalSchemas, serializerOpts) => {
  const compile = SerializerSelector()(plainJsonSchema(externalSchemas), serializerOpts)
  return (route) => compile({ ...route, schema: plainJsonSchema(route.schema) })
}
