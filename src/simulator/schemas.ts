import { Type, type Static, type TSchema } from '@sinclair/typebox'

// Any object: generate-rules.ts checks it field by field, with a msg that names the field. Extra
// fields are allowed and kept: kie.ai echoes the submitted parameters in promptJson.
export const GenerateBodySchema = Type.Object({}, { additionalProperties: true })

export const UpscaleBodySchema = Type.Object({
  taskId: Type.String({ minLength: 1 }),
  // 0-based, whatever some kie.ai pages say
  imageIndex: Type.Integer({ minimum: 0, maximum: 3 }),
  waterMark: Type.Optional(Type.String()),
  callBackUrl: Type.Optional(Type.String())
}, { additionalProperties: true })
export type UpscaleBody = Static<typeof UpscaleBodySchema>

// generateVary takes the same fields: a finished grid and one of its four images
export const VaryBodySchema = UpscaleBodySchema
export type VaryBody = UpscaleBody

export const RecordInfoQuerySchema = Type.Object({
  taskId: Type.String({ minLength: 1 })
})

export const FileParamsSchema = Type.Object({ name: Type.String() })
// ms since the epoch, as download-url writes it; checked by the route, not here, so a bad one is a 403
export const DirectQuerySchema = Type.Object({ expires: Type.Optional(Type.String()) }, { additionalProperties: true })
// Buffers bypass response serialisation; this only documents the body.
export const PngSchema = Type.Unsafe<Buffer>({ type: 'string', format: 'binary', contentMediaType: 'image/png' })

export const Envelope = <T extends TSchema>(data: T) => Type.Object({
  code: Type.Integer(),
  msg: Type.String(),
  data
})

export const ErrorEnvelopeSchema = Envelope(Type.Null())
export type ErrorEnvelope = Static<typeof ErrorEnvelopeSchema>

export const TaskIdEnvelopeSchema = Envelope(Type.Union([
  Type.Object({ taskId: Type.String() }),
  Type.Null()
]))

export const CreditEnvelopeSchema = Envelope(Type.Union([Type.Integer(), Type.Null()]))

const ResultInfoSchema = Type.Object({ resultUrls: Type.Array(Type.Object({ resultUrl: Type.String() })) })
// Every form the variants can send (kie-api.md: clients meet all of them), so the schema never reshapes one.
const TimeSchema = Type.Union([Type.String(), Type.Number()])

export const RecordInfoSchema = Type.Object({
  taskId: Type.String(),
  taskType: Type.String(),
  paramJson: Type.String(),
  resultInfoJson: Type.Union([ResultInfoSchema, Type.String(), Type.Null()]),
  successFlag: Type.Union([Type.Integer(), Type.String()]),
  errorCode: Type.Union([Type.Integer(), Type.Null()]),
  errorMessage: Type.Union([Type.String(), Type.Null()]),
  createTime: Type.Union([TimeSchema, Type.Null()]),
  completeTime: Type.Union([TimeSchema, Type.Null()])
})
export type RecordInfo = Static<typeof RecordInfoSchema>
export const RecordInfoEnvelopeSchema = Envelope(Type.Union([RecordInfoSchema, Type.Null()]))
