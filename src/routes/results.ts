import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponseSchema, NotFoundError } from '../errors.js'
import { sendImmutable, storedFile } from './stored-file.js'
import { clientAuth } from '../plugins/client-auth.js'
import type { Repository } from '../db/repository.js'
import { TaskParamsSchema } from '../tasks/schemas.js'


const ResultQuerySchema = Type.Object(
  { index: Type.Optional(Type.Integer({ minimum: 0, maximum: 15, description: 'Which result, when there are several (default 0)' })) },
  { additionalProperties: false, examples: [{ index: 0 }] }
)
const Err = Type.Ref(ErrorResponseSchema)

/** Serves the gateway's own copy of a result: it outlives kie.ai's links. */
const resultRoutes: FastifyPluginAsyncTypebox<{ apiKeys: readonly string[]; repo: Repository }> = async (app, { apiKeys, repo }) => {
  app.addHook('onRequest', clientAuth(apiKeys))

  // /upscale keeps serving upscale tasks only, as it always did; /tasks serves every kind.
  for (const [prefix, only] of [['/upscale', 'upscale'], ['/tasks', null]] as const) {
  app.get(`${prefix}/:id/result`, {
    schema: {
      operationId: only === 'upscale' ? 'getUpscaleResult' : 'getTaskResult',
      tags: [only ?? 'tasks'],
      summary: "The upscaled image, from the gateway's archive (ETag, If-None-Match → 304)",
      params: TaskParamsSchema,
      querystring: ResultQuerySchema,
      response: {
        200: Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'The image bytes', examples: ['<binary image>'] }),
        304: Type.Null({ description: 'Not modified', examples: [null] }),
        ...Object.fromEntries([401, 404, 409, 410, 429].map((c) => [c, Err]))
      }
    }
  }, async (request, reply) => {
    const { id } = request.params
    const task = repo.getOwnedTask(id, request.clientId)
    if (!task || (only !== null && task.type !== only)) throw new NotFoundError(`Task ${id} not found`)
    request.logRefs.taskId = id
    const file = storedFile(repo, id, request.query.index ?? 0)
    return sendImmutable(request, reply, { path: file.path, etag: `"${file.sha256}"`, contentType: file.content_type ?? 'application/octet-stream', bytes: file.bytes ?? 0 })
  })
  }
}

export default resultRoutes
