import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, ValueErrorType, type ValueError } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'
import type { FastifySchemaCompiler } from 'fastify'

// A canonical decimal integer: no fraction, exponent, hex, sign of zero, spaces or leading zeros.
const DECIMAL_INTEGER = /^(0|-?[1-9][0-9]{0,15})$/

type Schema = TSchema & { type?: unknown; properties?: Record<string, Schema>; anyOf?: Schema[]; const?: unknown }

/** The names of a query string's (or path's) integer fields. */
const integerFields = (schema: Schema) =>
  Object.entries(schema.properties ?? {}).filter(([, s]) => s.type === 'integer').map(([name]) => name)

/** TypeBox's words, except where a client needs more: the allowed values of an enum. */
function messageOf(e: ValueError): string {
  const { anyOf } = e.schema as Schema
  if (e.type === ValueErrorType.Union && anyOf && anyOf.length > 0 && anyOf.every((s) => typeof s.const === 'string')) return `must be one of ${anyOf.map((s) => s.const).join(', ')}`
  return e.message
}

/**
 * TypeBox checks every part of a request. Bodies are checked as sent (no coercion); query
 * strings and path parameters are text by nature and converted, strictly: an integer must be
 * written as decimal digits (1.5, 1e1, 0x5 and " 1" are refused, not rounded or parsed).
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema)
  const text = httpPart !== 'body'
  const integers = text ? integerFields(schema as Schema) : []
  return (value: unknown) => {
    for (const name of integers) {
      const given = (value as Record<string, unknown> | null)?.[name]
      if (typeof given === 'string' && !DECIMAL_INTEGER.test(given)) {
        return { error: [{ message: 'must be a whole number written in decimal digits', instancePath: `/${name}` }] as never }
      }
    }
    const converted = text ? Value.Convert(schema, value) : value
    if (check.Check(converted)) return { value: converted }
    return { error: [...check.Errors(converted)].map((e) => ({ message: messageOf(e), instancePath: e.path })) as never }
  }
}
