import { Type, type Static } from '@sinclair/typebox'
import { createUpscaleExample, queuedTaskExample, taskExample } from '../openapi-examples.js'
import { ErrorCodeSchema } from '../errors.js'

export const TaskStatusSchema = Type.Union(
  [Type.Literal('queued'), Type.Literal('submitted'), Type.Literal('succeeded'), Type.Literal('failed')],
  { description: 'queued → submitted → succeeded | failed; never backwards' }
)
export type TaskStatus = Static<typeof TaskStatusSchema>

export const TaskTypeSchema = Type.Union([Type.Literal('generate'), Type.Literal('vary'), Type.Literal('upscale')], {
  description: 'generate: a 4-image grid from a prompt; vary: a new grid from one image of a grid; upscale: one image of a grid'
})
export type TaskType = Static<typeof TaskTypeSchema>

export const ArchiveStatusSchema = Type.Union([Type.Literal('pending'), Type.Literal('stored'), Type.Literal('failed'), Type.Literal('pruned')])
export type ArchiveStatus = Static<typeof ArchiveStatusSchema>

export const KieTaskIdSchema = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$', description: 'The kie.ai id of a finished 4-image Midjourney task (a grid)' })
export const ParentIdSchema = Type.String({ minLength: 1, maxLength: 64, description: 'Instead of taskId: the id of one of your own generate or vary tasks; this task waits until it has succeeded' })
export const CallbackUrlSchema = Type.String({ minLength: 1, maxLength: 2048, description: 'http(s) URL that receives a signed Standard Webhooks event when the task is final' })
export const WaterMarkSchema = Type.String({ maxLength: 100, description: 'Watermark text passed to kie.ai' })

/** Upscale and vary take one image of a grid: by kie.ai id (taskId) or chained to your task (parentId), exactly one. */
export const CreateUpscaleBodySchema = Type.Object(
  {
    taskId: Type.Optional(KieTaskIdSchema),
    parentId: Type.Optional(ParentIdSchema),
    imageIndex: Type.Integer({ minimum: 0, maximum: 3, description: 'Which image of the grid, 0-based' }),
    waterMark: Type.Optional(WaterMarkSchema),
    callbackUrl: Type.Optional(CallbackUrlSchema)
  },
  { additionalProperties: false, $id: 'CreateUpscaleBody', title: 'CreateUpscaleBody', examples: [createUpscaleExample] }
)
export type CreateUpscaleBody = Static<typeof CreateUpscaleBodySchema>

const Iso = Type.String({ format: 'date-time' })

export const TaskSchema = Type.Object(
  {
    id: Type.String({ description: "The gateway's task id" }),
    type: TaskTypeSchema,
    status: TaskStatusSchema,
    parentId: Type.Union([Type.String(), Type.Null()], { description: 'For chained work: the gateway task it waits for or was made from' }),
    taskId: Type.Union([Type.String(), Type.Null()], { description: "The parent grid's kie.ai task id (null for generate, and while a chained task waits)" }),
    imageIndex: Type.Union([Type.Integer({ minimum: 0, maximum: 3 }), Type.Null()]),
    params: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: "kie.ai's parameters as submitted (generate: prompt, taskType, ...)" }),
    waterMark: Type.Union([Type.String(), Type.Null()]),
    kieTaskId: Type.Union([Type.String(), Type.Null()], { description: "kie.ai's id of the upscale task, once known" }),
    callbackUrl: Type.Union([Type.String(), Type.Null()], { description: 'Where the final event is sent, if anywhere' }),
    resultUrls: Type.Union([Type.Array(Type.String()), Type.Null()]),
    error: Type.Union([Type.Object({ code: ErrorCodeSchema, message: Type.String() }), Type.Null()]),
    createdAt: Iso,
    updatedAt: Iso,
    completedAt: Type.Union([Iso, Type.Null()]),
    archive: Type.Union(
      [
        Type.Object({
          status: ArchiveStatusSchema,
          bytes: Type.Union([Type.Integer(), Type.Null()]),
          sha256: Type.Union([Type.String(), Type.Null()]),
          contentType: Type.Union([Type.String(), Type.Null()]),
          url: Type.Union([Type.String(), Type.Null()], { description: 'Where the gateway serves its copy, once stored' }),
          error: Type.Union([Type.String(), Type.Null()]),
          files: Type.Array(
            Type.Object({
              index: Type.Integer(),
              status: ArchiveStatusSchema,
              bytes: Type.Union([Type.Integer(), Type.Null()]),
              sha256: Type.Union([Type.String(), Type.Null()]),
              contentType: Type.Union([Type.String(), Type.Null()]),
              url: Type.Union([Type.String(), Type.Null()])
            })
          )
        }),
        Type.Null()
      ],
      { description: "The gateway's own copy of the result (the first one; all in files); null until the task succeeds" }
    ),
    queue: Type.Union(
      [
        Type.Object({
          position: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: '1 = next to be sent; null while it waits for its parent' }),
          estimatedSendAt: Type.Union([Iso, Type.Null()]),
          waitingFor: Type.Union([Type.String(), Type.Null()], { description: 'The parent task it waits for, before it can be sent' })
        }),
        Type.Null()
      ],
      { description: 'Where a queued task stands; null once it has been sent' }
    )
  },
  { $id: 'Task', title: 'Task', examples: [taskExample, queuedTaskExample] }
)
export type Task = Static<typeof TaskSchema>

export const TaskParamsSchema = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64, description: "The gateway's task id" }) },
  { examples: [{ id: taskExample.id }] }
)

export const TaskQuerySchema = Type.Object(
  {
    wait: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 60, description: 'Seconds to wait for the task to become final before answering (long poll)' })
    )
  },
  { additionalProperties: false, examples: [{ wait: 30 }] }
)

export const ListQuerySchema = Type.Object(
  {
    type: Type.Optional(TaskTypeSchema),
    status: Type.Optional(TaskStatusSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 }))
  },
  { additionalProperties: false, examples: [{ status: 'succeeded', limit: 20 }] }
)

export const TaskListSchema = Type.Object(
  {
    items: Type.Array(Type.Ref(TaskSchema)),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as ?cursor= for the next (older) page; null at the end' })
  },
  { $id: 'TaskList', title: 'TaskList', examples: [{ items: [taskExample], nextCursor: 'czox' }] }
)
