import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponseSchema, NotFoundError, ValidationError } from '../errors.js'
import { clientAuth } from '../plugins/client-auth.js'
import type { TaskRow } from '../db/repository.js'
import type { Services } from '../services.js'
import { CreateUpscaleBodySchema, ListQuerySchema, TaskListSchema, TaskParamsSchema, TaskSchema } from '../tasks/schemas.js'
import { decodeCursor, encodeCursor, toTask } from '../tasks/view.js'

const Err = Type.Ref(ErrorResponseSchema)
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Err]))

const upscaleRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { repo, clock, queue } = services
  const view = (row: TaskRow) => toTask(row, services.queueInfo(row))
  app.addHook('onRequest', clientAuth(services.apiKeys))

  app.post('/upscale', {
    bodyLimit: 8 * 1024,
    schema: {
      summary: 'Upscale one image of a finished Midjourney grid',
      body: CreateUpscaleBodySchema,
      response: { 202: TaskSchema, ...errors(400, 401, 402, 413, 415, 422, 502, 503) }
    }
  }, async (request, reply) => {
    const { taskId, imageIndex, waterMark } = request.body
    const now = clock.now()
    // Stored before anything is sent, so no answer from kie.ai can leave it unrecorded.
    const task = repo.createTask(
      {
        id: randomUUID(),
        owner: request.clientId,
        parentTaskId: taskId,
        imageIndex,
        waterMark: waterMark ?? null,
        submitDeadlineAt: now + queue.submitDeadlineMs
      },
      now
    )
    const location = `/upscale/${task.id}`
    // Within the rate budget the task is sent before we answer, so kie.ai's definitive
    // refusals reach the client; otherwise it waits in the queue and the answer says where.
    const outcome = await services.dispatcher.sendNew(task)
    if (outcome.kind === 'failed') {
      const headers: Record<string, string> = { location }
      if (outcome.retryAfterSeconds !== null) headers['retry-after'] = String(outcome.retryAfterSeconds)
      throw Object.assign(outcome.error, { headers })
    }
    if (outcome.kind === 'deferred' || outcome.kind === 'retrying') services.wakeSender()
    const row = outcome.kind === 'deferred' ? (repo.getTask(task.id) as TaskRow) : outcome.task
    return reply.code(202).header('location', location).send(view(row))
  })

  app.get('/upscale/:id', {
    schema: {
      summary: 'One upscale task',
      params: TaskParamsSchema,
      response: { 200: TaskSchema, ...errors(400, 401, 404) }
    }
  }, async (request) => {
    const row = repo.getOwnedTask(request.params.id, request.clientId)
    // Another key's task answers exactly like a missing one.
    if (!row) throw new NotFoundError(`Task ${request.params.id} not found`)
    return view(row)
  })

  app.get('/upscale', {
    schema: {
      summary: "The caller's upscale tasks, newest first",
      querystring: ListQuerySchema,
      response: { 200: TaskListSchema, ...errors(400, 401) }
    }
  }, async (request) => {
    const { status, limit = 20, cursor } = request.query
    const beforeSeq = cursor === undefined ? undefined : decodeCursor(cursor)
    if (beforeSeq === null) throw new ValidationError('querystring.cursor: is not a cursor this API returned')
    const rows = repo.listTasks({ owner: request.clientId, status, beforeSeq, limit: limit + 1 })
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return { items: page.map(view), nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null }
  })
}

export default upscaleRoutes
