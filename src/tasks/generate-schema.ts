import { Type, type Static } from '@sinclair/typebox'
import { ValidationError } from '../errors.js'
import { CallbackUrlSchema, KieTaskIdSchema, ParentIdSchema, WaterMarkSchema } from './schemas.js'

const literals = <T extends string>(values: readonly T[], description: string) =>
  Type.Union(values.map((v) => Type.Literal(v)), { description })

const IMAGE_TYPES = ['mj_txt2img', 'mj_img2img', 'mj_style_reference', 'mj_omni_reference'] as const
const VIDEO_TYPES = ['mj_video', 'mj_video_hd'] as const
// The image-based types start from a picture: at least one file URL (kie.ai's Generate page).
const NEEDS_FILES = new Set<string>(['mj_img2img', 'mj_style_reference', 'mj_omni_reference'])

/** POST /generate: kie.ai's Generate Midjourney Image body, each constraint from its page. */
export const CreateGenerateBodySchema = Type.Object(
  {
    taskType: literals([...IMAGE_TYPES, ...VIDEO_TYPES], 'mj_txt2img, mj_img2img, mj_style_reference or mj_omni_reference (the video types are not supported yet)'),
    prompt: Type.String({ minLength: 1, maxLength: 2000 }),
    speed: Type.Optional(literals(['relaxed', 'fast', 'turbo'], 'not for mj_omni_reference')),
    fileUrls: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://\\S+$' }), { minItems: 1, maxItems: 10 })),
    aspectRatio: Type.Optional(literals(['1:2', '9:16', '2:3', '3:4', '5:6', '6:5', '4:3', '3:2', '1:1', '16:9', '2:1'], 'width:height')),
    version: Type.Optional(literals(['7', '6.1', '6', '5.2', '5.1', 'niji6', 'niji7'], 'the Midjourney model version')),
    variety: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, multipleOf: 5 })),
    stylization: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    weirdness: Type.Optional(Type.Integer({ minimum: 0, maximum: 3000 })),
    ow: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'omni weight: mj_omni_reference only' })),
    waterMark: Type.Optional(WaterMarkSchema),
    enableTranslation: Type.Optional(Type.Boolean()),
    callbackUrl: Type.Optional(CallbackUrlSchema)
  },
  {
    additionalProperties: false,
    $id: 'CreateGenerateBody',
    title: 'CreateGenerateBody',
    examples: [{ taskType: 'mj_txt2img', prompt: 'a lighthouse at dawn, watercolor', speed: 'fast', aspectRatio: '16:9', version: '7' }]
  }
)
export type CreateGenerateBody = Static<typeof CreateGenerateBodySchema>

/** What the schema cannot say: rules that tie one field to another. */
export function checkGenerate(body: CreateGenerateBody): void {
  if ((VIDEO_TYPES as readonly string[]).includes(body.taskType)) {
    throw new ValidationError(`body.taskType: ${body.taskType} is not supported yet (video tasks); use one of ${IMAGE_TYPES.join(', ')}`)
  }
  if (NEEDS_FILES.has(body.taskType) && !body.fileUrls?.length) throw new ValidationError(`body.fileUrls: ${body.taskType} needs at least one image URL`)
  if (body.ow !== undefined && body.taskType !== 'mj_omni_reference') throw new ValidationError('body.ow: only with taskType mj_omni_reference')
  if (body.speed !== undefined && body.taskType === 'mj_omni_reference') throw new ValidationError('body.speed: not available with taskType mj_omni_reference')
  for (const text of [body.prompt, body.waterMark, ...(body.fileUrls ?? [])]) {
    // SQLite would store a lone surrogate as invalid UTF-8 and hand back something else.
    if (text !== undefined && !text.isWellFormed()) throw new ValidationError('body: strings must be well-formed Unicode (no lone surrogates)')
  }
}

/** POST /vary: a new grid from one image of a grid, named by kie.ai id or by your own task. */
export const CreateVaryBodySchema = Type.Object(
  {
    taskId: Type.Optional(KieTaskIdSchema),
    parentId: Type.Optional(ParentIdSchema),
    imageIndex: Type.Integer({ minimum: 0, maximum: 3, description: 'Which image of the grid to vary, 0-based' }),
    waterMark: Type.Optional(WaterMarkSchema),
    callbackUrl: Type.Optional(CallbackUrlSchema)
  },
  { additionalProperties: false, $id: 'CreateVaryBody', title: 'CreateVaryBody', examples: [{ parentId: '50df5987-fd9d-4b79-9e6c-8256c1962747', imageIndex: 2 }] }
)
