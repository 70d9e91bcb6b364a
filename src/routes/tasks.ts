import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Repository, TaskViewRow } from '../db/repository.js'
import { ErrorResponseSchema } from '../errors.js'
import { clientAuth } from '../plugins/client-auth.js'
import { checkGenerate, CreateGenerateBodySchema, CreateVaryBodySchema } from '../tasks/generate-schema.js'
import { TaskSchema, type Task } from '../tasks/schemas.js'
import type { Submit } from '../tasks/submit.js'
import type { Waiters } from '../tasks/waiters.js'
import { registerReads } from './task-reads.js'
import { IdempotencyHeaders } from './upscale.js'

const Err = Type.Ref(ErrorResponseSchema)
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Err]))
const responses = { 202: Type.Ref(TaskSchema), ...errors(400, 401, 402, 413, 415, 422, 429, 502, 503) }

export interface TaskRoutesOptions {
  apiKeys: readonly string[]
  repo: Repository
  waiters: Waiters
  submit: Submit
  view: (row: TaskViewRow) => Task
}

/** Grids (generate, vary) and the reads that serve every kind of task under /tasks. */
const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, { apiKeys, repo, waiters, submit, view }) => {
  app.addHook('onRequest', clientAuth(apiKeys))

  app.post('/generate', {
    bodyLimit: 16 * 1024,
    schema: {
      operationId: 'createGenerate',
      tags: ['tasks'],
      summary: 'Make a 4-image Midjourney grid from a prompt (kie.ai generate)',
      headers: IdempotencyHeaders,
      body: CreateGenerateBodySchema,
      response: responses
    }
  }, async (request, reply) => {
    checkGenerate(request.body)
    const { callbackUrl: webhookUrl, ...params } = request.body
    return submit(request, reply, { type: 'generate', params, waterMark: params.waterMark, webhookUrl })
  })

  app.post('/vary', {
    bodyLimit: 8 * 1024,
    schema: {
      operationId: 'createVary',
      tags: ['tasks'],
      summary: 'Make a new grid from one image of a grid (kie.ai generateVary): a kie.ai grid, or one of your generate or vary tasks',
      headers: IdempotencyHeaders,
      body: CreateVaryBodySchema,
      response: responses
    }
  }, async (request, reply) => {
    const { taskId, parentId, imageIndex, waterMark, callbackUrl: webhookUrl } = request.body
    const params = { ...(taskId ? { taskId } : {}), imageIndex, ...(waterMark === undefined ? {} : { waterMark }) }
    return submit(request, reply, { type: 'vary', taskId, parentId, imageIndex, waterMark, webhookUrl, params })
  })

  registerReads(app, { prefix: '/tasks', type: null, repo, waiters, view })
}

export default taskRoutes
