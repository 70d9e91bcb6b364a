import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponseSchema } from '../errors.js'
import { clientAuth } from '../plugins/client-auth.js'
import type { Repository, TaskViewRow } from '../db/repository.js'
import type { Waiters } from '../tasks/waiters.js'
import type { Submit } from '../tasks/submit.js'
import { CreateUpscaleBodySchema, TaskSchema, type Task } from '../tasks/schemas.js'
import { registerReads } from './task-reads.js'

const Err = Type.Ref(ErrorResponseSchema)
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Err]))

export interface UpscaleRoutesOptions {
  apiKeys: readonly string[]
  repo: Repository
  waiters: Waiters
  submit: Submit
  view: (row: TaskViewRow) => Task
}

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ description: 'Makes retries of this request safe: same key and body, same answer, one task (kept 24 h)' }))
})

const upscaleRoutes: FastifyPluginAsyncTypebox<UpscaleRoutesOptions> = async (app, opts) => {
  const { repo, waiters, submit, view } = opts
  app.addHook('onRequest', clientAuth(opts.apiKeys))

  app.post('/upscale', {
    bodyLimit: 8 * 1024,
    schema: {
      operationId: 'createUpscale',
      tags: ['upscale'],
      summary: 'Upscale one image of a finished Midjourney grid (a kie.ai grid, or one of your generate or vary tasks)',
      headers: IdempotencyHeaders,
      body: CreateUpscaleBodySchema,
      response: { 202: Type.Ref(TaskSchema), ...errors(400, 401, 402, 413, 415, 422, 429, 502, 503) }
    }
  }, async (request, reply) => {
    // The public field keeps kie.ai's word; it is the client's webhook URL.
    const { taskId, parentId, imageIndex, waterMark, callbackUrl: webhookUrl } = request.body
    const params = { imageIndex, ...(waterMark === undefined ? {} : { waterMark }) }
    return submit(request, reply, { type: 'upscale', taskId, parentId, imageIndex, waterMark, webhookUrl, params: { ...(taskId ? { taskId } : {}), ...params } })
  })

  registerReads(app, { prefix: '/upscale', type: 'upscale', repo, waiters, view })
}

export default upscaleRoutes
